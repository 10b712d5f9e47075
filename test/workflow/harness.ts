/**
 * Workflow-branch tests: the real promotion and rollback workflow code on the shared Temporal dev
 * server (test/helpers/temporal.ts), with stub activities that answer at once. Each promotion
 * gets a script (what evaluation, integration and each analysis look return, which activity
 * fails) and a log of every activity call with its time, so a test reads the commands the
 * workflow issued. The paths through the real router and fleet stay in test/integration/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll } from 'vitest';
import type { Activities } from '../../activities';
import type {
  AnalyzeInput,
  IntervalAnalysis,
  PrepareInput,
  SetTrafficInput,
  TrafficVariant,
  VersionRef,
} from '../../activities/contracts';
import { projectRoot } from '../../common/paths';
import type { MetricsSnapshot } from '../../serving/metrics/source';
import { parseSpec } from '../../specs/load';
import { checkSpec, policyFor, type PlatformPolicy } from '../../specs/policy';
import type { ModelSpec, ModelSpecInput } from '../../specs/schema';
import {
  promotionWorkflowId,
  rollbackWorkflowId,
  statusQuery,
  type PromotionInput,
  type PromotionResult,
  type PromotionStatus,
  type RollbackWorkflowInput,
  type RollbackWorkflowResult,
  type Verdict,
} from '../../workflows/api';
import { evaluateBurn, type WindowCounts } from '../../activities/analysis/burn-rate';
import type { WatchLookInput, WatchLookResult } from '../../activities/watch';
import { watchWorkflowId, type WatchInput } from '../../workflows/watch-api';
import { historiesDir, historyToJSON } from '../helpers/histories';
import { merge } from '../helpers/merge';
import { testTemporal, uniqueTaskQueue } from '../helpers/temporal';

const WORKFLOWS = path.join(projectRoot, 'workflows', 'index.ts');

export type ActivityName = keyof Activities;

export interface Call {
  name: ActivityName;
  /** Date.now() when the stub was entered. */
  at: number;
  input: Record<string, unknown>;
  /** Which run of the workflow chain called it (a continue-as-new starts a new one). */
  runId: string;
}

/** A look's answer: guard and comparison verdicts (default pass), an experiment verdict. */
export interface LookAnswer {
  guard?: Partial<Verdict>;
  comparison?: Partial<Verdict>;
  experiment?: IntervalAnalysis['experiment'];
  gap?: boolean;
}

export interface Script {
  /** Version serving production (default '1'); null for a first release. */
  baseline?: string | null;
  evaluation?: 'pass' | 'fail';
  integration?: 'pass' | 'fail';
  /** The answer of the n-th analysis look (1-based, counted across continue-as-new). */
  look?: (n: number, input: AnalyzeInput, p: StubPromotion) => LookAnswer | Promise<LookAnswer>;
  /** Runs inside a stub as it is called, before it answers: to act while the workflow waits on it. */
  during?: (name: ActivityName, input: Record<string, unknown>, p: StubPromotion) => Promise<void> | void;
  /** Throw a non-retryable failure from this call (return a message), or let it pass (undefined). */
  fail?: (name: ActivityName, input: Record<string, unknown>) => string | undefined;
  /** The platform policy prepareCandidate applies on the first run. */
  policy?: PlatformPolicy;
  /** Rollback workflow: the registry's answer to resolveRollbackTarget. */
  rollbackTarget?: { from?: string; to?: string; wasRunning?: boolean };
  /**
   * Watch: what the n-th look reads (requests, errors, slow; the production alias). The alerts
   * are judged by the real pure evaluateBurn, as the real watchLook does.
   */
  watchLook?: (
    n: number,
    input: WatchLookInput,
  ) => { sample?: WatchLookResult['sample']; production?: string };
}

const ref = (model: string, version: string): VersionRef => ({
  version,
  sha256: `sha-${model}-${version}`,
  artifactPath: `/stub/${model}/v${version}.onnx`,
});

const pass = (check: string): Verdict => ({ check, result: 'pass', reason: `${check} ok (stub)` });

/** One promotion (or rollback) under test: its script, its calls, its handle. */
export class StubPromotion {
  readonly calls: Call[] = [];
  looks = 0;
  handle!: WorkflowHandle;
  constructor(
    readonly model: string,
    readonly script: Script,
  ) {}

  named(name: ActivityName): Call[] {
    return this.calls.filter((c) => c.name === name);
  }
  /** Every route the workflow set, as `v1=90 v2=10` strings, in order. */
  routes(): string[] {
    return this.named('setTraffic').map((c) =>
      (c.input as unknown as SetTrafficInput).variants
        .map((v: TrafficVariant) => `${v.name}=${v.weight}`)
        .join(' '),
    );
  }
  runIds(): string[] {
    return [...new Set(this.calls.map((c) => c.runId))];
  }
  async result(): Promise<PromotionResult> {
    return (await this.handle.result()) as PromotionResult;
  }
  async status(): Promise<PromotionStatus> {
    return this.handle.query(statusQuery);
  }
  /**
   * The activities the workflow scheduled before and after it received the first `signal`, read
   * from the histories of every run in the chain: what the workflow decided knowing of the signal,
   * free of the race between sending a signal and the workflow's task in flight.
   */
  async scheduledAround(client: Client, signal: string): Promise<{ before: string[]; after: string[] }> {
    const before: string[] = [];
    const after: string[] = [];
    let seen = false;
    for (const runId of this.runIds()) {
      const history = await client.workflow.getHandle(this.handle.workflowId, runId).fetchHistory();
      for (const event of history.events ?? []) {
        if (event.workflowExecutionSignaledEventAttributes?.signalName === signal) seen = true;
        const type = event.activityTaskScheduledEventAttributes?.activityType?.name;
        if (type) (seen ? after : before).push(type);
      }
    }
    return { before, after };
  }
  /**
   * With RUNWAY_RECORD_HISTORIES=1, saves one run's history (default the last) as
   * test/fixtures/histories/<name>.json for the replay test; a no-op otherwise.
   */
  async record(client: Client, name: string, runId?: string): Promise<void> {
    if (process.env.RUNWAY_RECORD_HISTORIES !== '1') return;
    const history = await client.workflow.getHandle(this.handle.workflowId, runId).fetchHistory();
    fs.writeFileSync(path.join(historiesDir, `${name}.json`), historyToJSON(history) + '\n');
  }
}

export interface WorkflowHarness {
  readonly client: Client;
  readonly taskQueue: string;
  /** Starts a promotion of `version` under `spec` with stub activities following `script`. */
  promote(
    spec: ModelSpec,
    script?: Script,
    extra?: Partial<PromotionInput> & { version?: string },
  ): Promise<StubPromotion>;
  /** Starts the standalone rollback workflow with stub activities. */
  rollback(input: RollbackWorkflowInput, script?: Script): Promise<StubPromotion>;
  /**
   * Starts a watch with stub activities; a rollback workflow it starts runs on `script` too
   * (its calls land in the returned `rollback` stub).
   */
  watch(input: WatchInput, script?: Script): Promise<{ watch: StubPromotion; rollback: StubPromotion }>;
}

/**
 * Per-test limit. A stub promotion takes seconds, but the suite shares two cores with real
 * servers (and, here, with other work): a limit that only catches a hang, never a slow machine.
 */
export const SLOW_MACHINE_MS = 180_000;

let modelCounter = 0;
/** A model name no other test in this process uses. */
export function uniqueModel(prefix = 'wf'): string {
  return `${prefix}-${process.pid}-${++modelCounter}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * A spec whose durations suit stub activities: 1 s interval, two short canary steps, no shadow,
 * no experiment, one approval. Overrides merge in (objects deep, arrays replaced).
 */
export function stubSpec(name: string, overrides: Record<string, unknown> = {}): ModelSpec {
  const base: ModelSpecInput = {
    name,
    owner: 'workflow-tests',
    model: {
      signature: {
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 8] }],
        outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
      },
    },
    slos: { p99LatencyMs: 250, errorRate: 0.02, minRequests: 5 },
    evaluation: { dataset: '/stub/eval.json', min: 0.8 },
    approval: { required: 0, timeout: '1m' },
    shadow: { enabled: false, duration: '2s', mirrorPercent: 50 },
    canary: {
      interval: '1s',
      failureLimit: 2,
      steps: [
        { weight: 10, pause: '2s' },
        { weight: 50, pause: '2s' },
        { weight: 100, pause: '0s' },
      ],
      analysis: { maxInconclusive: 1 },
    },
    rollback: { scaleDownDelay: '1s', onInconclusive: 'pause' },
  };
  // The short steps above are the canary strategy's: linear and blue-green refuse canary.steps.
  if (overrides.strategy && overrides.strategy !== 'canary') delete base.canary?.steps;
  return parseSpec(merge(base, overrides), `stub spec ${name}`);
}

const snapshot = (model: string, n: number): MetricsSnapshot => ({
  model,
  takenAt: new Date(n * 1000).toISOString(),
  epoch: 'stub',
  variants: {},
});

/** Stub activities that route each call to the promotion whose workflow made it. */
function stubActivities(byWorkflowId: Map<string, StubPromotion>): Activities {
  const target = (): { p: StubPromotion; runId: string } => {
    const execution = Context.current().info.workflowExecution;
    if (!execution) throw ApplicationFailure.nonRetryable('stub activity called outside a workflow');
    const { workflowId, runId } = execution;
    const p = byWorkflowId.get(workflowId);
    if (!p) throw ApplicationFailure.nonRetryable(`no stub script for workflow ${workflowId}`);
    return { p, runId };
  };
  const stub =
    <I, O>(name: ActivityName, body: (input: I, p: StubPromotion) => O | Promise<O>) =>
    async (input: I): Promise<O> => {
      const { p, runId } = target();
      const record = (input ?? {}) as Record<string, unknown>;
      p.calls.push({ name, at: Date.now(), input: record, runId });
      await p.script.during?.(name, record, p);
      const failure = p.script.fail?.(name, record);
      if (failure) throw ApplicationFailure.nonRetryable(failure, 'StubFailure');
      return body(input, p);
    };
  const version = (p: StubPromotion, v: string) => ref(p.model, v);
  const activities = {
    prepareCandidate: stub('prepareCandidate', (i: PrepareInput, p) => {
      const baseline = p.script.baseline === undefined ? '1' : p.script.baseline;
      // The policy in force as the real activity settles it (a conforming spec; refusals are the integration tests').
      const policy =
        i.checkPolicy && p.script.policy
          ? checkSpec(i.checkPolicy, policyFor(p.script.policy, i.model)).policy
          : undefined;
      return {
        candidate: version(p, i.version),
        baseline: baseline ? version(p, baseline) : undefined,
        ...(policy ? { policy } : {}),
      };
    }),
    evaluate: stub('evaluate', (_i: unknown, p): Verdict => {
      const ok = (p.script.evaluation ?? 'pass') === 'pass';
      return {
        check: 'evaluation',
        result: ok ? 'pass' : 'fail',
        reason: ok ? 'accuracy 0.95 ≥ 0.8 (stub)' : 'accuracy 0.5 < 0.8 (stub)',
      };
    }),
    deploy: stub('deploy', (i: { model: string; version: string; environment: string }) => ({
      name: `${i.model}-v${i.version}-${i.environment}`,
      endpoints: ['http://127.0.0.1:1'],
    })),
    scale: stub('scale', (i: { name: string }) => ({ name: i.name, endpoints: [] })),
    teardown: stub('teardown', () => undefined),
    integrationTest: stub('integrationTest', (_i: unknown, p): Verdict => {
      const ok = (p.script.integration ?? 'pass') === 'pass';
      return {
        check: 'integration',
        result: ok ? 'pass' : 'fail',
        reason: ok ? 'ok (stub)' : 'golden set off (stub)',
      };
    }),
    updateRegistry: stub('updateRegistry', () => undefined),
    resolveRollbackTarget: stub('resolveRollbackTarget', (i: { model: string }, p) => {
      const t = p.script.rollbackTarget ?? { from: '2', to: '1' };
      return { from: t.from, to: t.to ? version(p, t.to) : undefined, wasRunning: t.wasRunning ?? false };
    }),
    setTraffic: stub('setTraffic', (i: SetTrafficInput) => ({
      model: i.model,
      variants: i.variants,
      mirror: i.mirror,
    })),
    removeRoute: stub('removeRoute', () => undefined),
    snapshotMetrics: stub('snapshotMetrics', (i: { model: string }, p) => snapshot(i.model, p.looks)),
    analyzeInterval: stub('analyzeInterval', async (i: AnalyzeInput, p): Promise<IntervalAnalysis> => {
      const n = ++p.looks;
      const answer = (await p.script.look?.(n, i, p)) ?? {};
      const verdict = (check: string, v: Partial<Verdict> | undefined): Verdict => ({ ...pass(check), ...v });
      return {
        snapshot: snapshot(i.model, n),
        gap: answer.gap ?? false,
        guard: verdict('slo', answer.guard),
        comparison: i.baseline ? verdict('comparison', answer.comparison) : undefined,
        experiment: answer.experiment,
      };
    }),
    notify: stub('notify', () => undefined),
    watchLook: stub('watchLook', (i: WatchLookInput, p): WatchLookResult => {
      const n = ++p.looks;
      const answer = p.script.watchLook?.(n, i) ?? {};
      const sample = answer.sample ?? { requests: 0, errors: 0, slow: 0 };
      const gap = !i.previous;
      const add = (c: WindowCounts): WindowCounts => ({
        windowMs: c.windowMs,
        requests: c.requests + (gap ? 0 : sample.requests),
        errors: c.errors + (gap ? 0 : sample.errors),
        slow: c.slow + (gap ? 0 : sample.slow),
      });
      const total = add(i.burn.total);
      return {
        snapshot: snapshot(i.model, n),
        gap,
        sample: gap ? { requests: 0, errors: 0, slow: 0 } : sample,
        burn: evaluateBurn(i.burn.windows.map(add), i.burn.settings, total),
        production: answer.production ?? i.version,
      };
    }),
    retrainWebhook: stub('retrainWebhook', () => ({ status: 202 })),
  };
  // The stubs answer with the shapes the workflow reads; the real return types carry more.
  return activities as unknown as Activities;
}

/** Registers hooks running one worker with stub activities for the file's promotions. */
export function useWorkflowHarness(): WorkflowHarness {
  const taskQueue = uniqueTaskQueue('wf');
  const byWorkflowId = new Map<string, StubPromotion>();
  let ctx:
    | { client: Client; connection: Connection; native: NativeConnection; worker: Worker; run: Promise<void> }
    | undefined;

  beforeAll(async () => {
    const endpoint = await testTemporal();
    const connection = await Connection.connect(endpoint.connectionOptions);
    const client = new Client({ connection, namespace: endpoint.namespace, identity: 'workflow-tests' });
    const native = await NativeConnection.connect(endpoint.connectionOptions);
    const worker = await Worker.create({
      connection: native,
      namespace: endpoint.namespace,
      taskQueue,
      activities: stubActivities(byWorkflowId),
      workflowsPath: WORKFLOWS,
    });
    ctx = { client, connection, native, worker, run: worker.run() };
  }, 180_000);

  afterAll(async () => {
    if (!ctx) return;
    if (ctx.worker.getState() === 'RUNNING') ctx.worker.shutdown();
    await ctx.run.catch(() => undefined);
    await ctx.native.close();
    await ctx.connection.close();
  }, 60_000);

  const get = () => {
    if (!ctx) throw new Error('useWorkflowHarness(): ready only inside tests');
    return ctx;
  };

  return {
    get client() {
      return get().client;
    },
    taskQueue,
    async promote(spec, script = {}, extra = {}) {
      const { version = '2', ...rest } = extra;
      const p = new StubPromotion(spec.name, script);
      const workflowId = promotionWorkflowId(spec.name);
      byWorkflowId.set(workflowId, p);
      const input: PromotionInput = { spec, specSha256: 'stub', version, triggeredBy: 'ci-bot', ...rest };
      p.handle = await get().client.workflow.start('promotionWorkflow', {
        taskQueue,
        workflowId,
        args: [input],
        workflowExecutionTimeout: '5m',
      });
      return p;
    },
    async watch(input, script = {}) {
      const model = input.spec.name;
      const watch = new StubPromotion(model, script);
      const rollback = new StubPromotion(model, script);
      byWorkflowId.set(watchWorkflowId(model), watch);
      byWorkflowId.set(rollbackWorkflowId(model), rollback);
      watch.handle = await get().client.workflow.start('watchWorkflow', {
        taskQueue,
        workflowId: watchWorkflowId(model),
        args: [input],
        workflowExecutionTimeout: '5m',
      });
      return { watch, rollback };
    },
    async rollback(input, script = {}) {
      const p = new StubPromotion(input.model, script);
      const workflowId = rollbackWorkflowId(input.model);
      byWorkflowId.set(workflowId, p);
      p.handle = await get().client.workflow.start('rollbackWorkflow', {
        taskQueue,
        workflowId,
        args: [input],
        workflowExecutionTimeout: '2m',
      });
      return p;
    },
  };
}

/** Polls `probe` (false or a throw: not yet) every 50 ms until it holds; fails after timeoutMs. */
export async function until(probe: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (
      await Promise.resolve()
        .then(probe)
        .catch(() => false)
    )
      return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export type { RollbackWorkflowResult };
