/**
 * A real platform for promotion tests: the shared Temporal dev server, a `runway router` child
 * process, the local fleet running real `runway serve` processes on demo models, the file
 * registry, and an in-process worker on a task queue of the file's own. Each scenario uses its
 * own model name, so scenarios run side by side without touching each other.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll } from 'vitest';
import YAML from 'yaml';
import { createActivities, type ActivityDeps } from '../../activities';
import { createLogger } from '../../common/log';
import { createWorkerMetrics } from '../../activities/metrics';
import { createNotifier } from '../../notifications/notifier';
import { projectRoot } from '../../common/paths';
import { sigkillAndWait } from '../../common/process';
import { startTraffic, type TrafficHandle } from '../../demo/traffic';
import { FileRegistry } from '../../registry/file';
import { LocalFleet } from '../../serving/fleet/local';
import type { FleetDriver } from '../../serving/fleet/driver';
import type { ModelRegistry } from '../../registry/registry';
import { ScrapeMetricsSource } from '../../serving/metrics/scrape';
import { BuiltinTrafficRouter } from '../../serving/traffic/builtin';
import type { TrafficRouter } from '../../serving/traffic/router';
import { parseSpec } from '../../specs/load';
import type { ModelSpec, ModelSpecInput } from '../../specs/schema';
import { loadPlatformConfig, type PlatformConfig } from '../../workers/config';
import type { TemporalEndpoint } from '../../workers/temporal-server';
import { keyringSource } from '../../workers/keyring';
import { ensureRouter, serveAtFull, type RouterEndpoint } from '../../workers/platform';
import {
  approveUpdate,
  promotionWorkflowId,
  type PromotionInput,
  type PromotionResult,
  statusQuery,
  type PromotionStatus,
} from '../../workflows/api';
import { RunwayModel, RunwayStage, RunwayVersion } from '../../workflows/search-attributes';
import { merge } from './merge';
import { testTemporal, uniqueTaskQueue } from './temporal';

export const MODELS_DIR = path.join(projectRoot, 'demo', 'models');
const WORKFLOWS = path.join(projectRoot, 'workflows', 'index.ts');

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends (infer U)[] ? U[] : T[K] extends object ? DeepPartial<T[K]> : T[K];
};

/** A Thompson-sampling bandit that settles v1 vs v2 within a test's traffic (80 rps). */
export const BANDIT = {
  kind: 'bandit',
  interval: '2s',
  maxDuration: '2m',
  minRewards: 60,
  confidence: 0.99,
  explorationFloor: 5,
} as const;

/** Short durations: a whole promotion takes well under a minute. */
export function testSpec(name: string, overrides: DeepPartial<ModelSpecInput> = {}): ModelSpec {
  const base: ModelSpecInput = {
    name,
    owner: 'tests',
    model: {
      signature: {
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 8] }],
        outputs: [{ name: 'score', datatype: 'FP32', shape: [-1, 1] }],
      },
    },
    serving: { replicas: 1, batching: { maxBatchSize: 16, preferredBatchSizes: [8], maxQueueDelayMs: 2 } },
    slos: { p99LatencyMs: 250, errorRate: 0.02, minRequests: 5 },
    evaluation: { dataset: path.join(MODELS_DIR, 'eval.json'), min: 0.8, maxRegression: 0.01 },
    approval: { required: 1, approvers: ['alice', 'bob'], allowSelfApproval: false, timeout: '10m' },
    integration: {
      goldenSet: path.join(MODELS_DIR, 'golden-v{version}.json'),
      tolerance: 1e-4,
      latencyRequests: 10,
    },
    shadow: { duration: '4s', mirrorPercent: 100, minAgreement: 0, minComparisons: 5 },
    canary: {
      interval: '2s',
      failureLimit: 2,
      steps: [
        { weight: 10, pause: '4s' },
        { weight: 25, pause: '4s' },
        { weight: 50, pause: '4s' },
        { weight: 100, pause: '0s' },
      ],
      analysis: { compare: false },
    },
    rollback: { scaleDownDelay: '1s', onInconclusive: 'proceed' },
  };
  // The short steps above are the canary strategy's: linear and blue-green refuse canary.steps.
  if (overrides.strategy && overrides.strategy !== 'canary') delete base.canary?.steps;
  return parseSpec(merge(base, overrides), `test spec ${name}`);
}

/** No shadow and a 2 s canary at 10%: the shortest path to the experiment stage. */
export function experimentSpec(
  name: string,
  experiment: DeepPartial<ModelSpecInput>['experiment'] = BANDIT,
  overrides: DeepPartial<ModelSpecInput> = {},
): ModelSpec {
  return testSpec(name, {
    shadow: { enabled: false },
    canary: {
      steps: [
        { weight: 10, pause: '2s' },
        { weight: 100, pause: '0s' },
      ],
    },
    experiment,
    ...overrides,
  });
}

export interface PromotionPlatform {
  readonly home: string;
  readonly deps: ActivityDeps;
  readonly router: RouterEndpoint;
  readonly client: Client;
  readonly taskQueue: string;
  /**
   * Pushes demo v1…v5 under `model` (and `versions`: version → ONNX file), serves `production`
   * (default v1) at 100% in production (one replica unless `replicas`).
   */
  bootstrap(
    model: string,
    spec: ModelSpec,
    opts?: { serve?: boolean; replicas?: number; versions?: Record<string, string>; production?: string },
  ): Promise<void>;
  traffic(model: string, rps?: number): TrafficHandle;
  start(
    spec: ModelSpec,
    version: string,
    triggeredBy?: string,
    extra?: Partial<PromotionInput>,
  ): Promise<WorkflowHandle>;
  status(model: string): Promise<PromotionStatus>;
  /**
   * The usual opening: bootstrap `model`, start traffic at `rps`, start the promotion of `version`
   * and approve it as alice once it asks.
   */
  launch(
    spec: ModelSpec,
    version: string,
    opts?: {
      rps?: number;
      triggeredBy?: string;
      extra?: Partial<PromotionInput>;
      versions?: Record<string, string>;
      production?: string;
    },
  ): Promise<{ traffic: TrafficHandle; handle: WorkflowHandle }>;
  /** Waits until the promotion asks for approval, then approves it by update. */
  approveWhenAsked(model: string, approver?: string): Promise<void>;
  /** The model's route as [variant, weight] pairs. */
  routeOf(model: string): Promise<[string, number][] | undefined>;
  result(model: string): Promise<PromotionResult>;
  /** SIGKILLs the router, leaves it down `downMs`, starts it again on the same port and state. */
  restartRouter(downMs: number): Promise<void>;
}

/** Registers hooks that bring the platform up for a test file and tear all of it down after. */
export function usePromotionPlatform(
  opts: {
    worker?: boolean;
    fleet?: (home: string) => FleetDriver;
    /** The TrafficRouter the activities turn (default: the builtin provider on the test's router). */
    router?: () => TrafficRouter;
    /** The registry (default: a file registry in the platform's home). */
    registry?: (home: string) => ModelRegistry;
    /** A Temporal server of the file's own (default: the shared test server). */
    temporal?: () => Promise<TemporalEndpoint>;
    /**
     * Platform config to write to `<home>/platform.yaml` and load, as `runway up` would (e.g.
     * router.feedbackTokenFiles); the test's traffic then sends each model's feedback token.
     */
    platformConfig?: (home: string) => Record<string, unknown>;
    /** Where the worker's log lines go (default stderr), e.g. to look for a secret in them. */
    logSink?: (line: string) => void;
  } = {},
): PromotionPlatform {
  let ctx:
    | {
        home: string;
        config: PlatformConfig;
        deps: ActivityDeps;
        router: RouterEndpoint;
        client: Client;
        connection: Connection;
        worker?: Worker;
        workerRun?: Promise<void>;
        nativeConnection?: NativeConnection;
      }
    | undefined;
  const taskQueue = uniqueTaskQueue('promotion');
  const traffics: TrafficHandle[] = [];

  beforeAll(async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-promo-'));
    process.env.RUNWAY_HOME = home;
    let file: string | null = null;
    if (opts.platformConfig) {
      file = path.join(home, 'platform.yaml');
      fs.writeFileSync(file, YAML.stringify(opts.platformConfig(home)));
    }
    const config = loadPlatformConfig({ file, env: { RUNWAY_HOME: home } });
    const router = await ensureRouter(config, 0, createLogger('test-router'));
    const logger = createLogger('test', opts.logSink);
    const deps: ActivityDeps = {
      registry: opts.registry ? opts.registry(home) : new FileRegistry(path.join(home, 'registry')),
      fleet: opts.fleet ? opts.fleet(home) : new LocalFleet({ dir: path.join(home, 'fleet') }),
      router: opts.router
        ? opts.router()
        : new BuiltinTrafficRouter({ url: router.url, token: router.token }),
      metrics: new ScrapeMetricsSource({ url: router.url }),
      logger,
      feedbackTokens: config.router.feedbackTokens,
      policy: config.policy,
      keyring: keyringSource(config),
      // As platformDeps does: prices (config `cost`) put a cost verdict on every look.
      ...(config.cost ? { prices: config.cost } : {}),
      // The config's webhooks, as platformDeps wires them (notifications.webhooks).
      ...(config.notifications.webhooks.length
        ? { notifier: createNotifier(config.notifications, logger.child('notify')) }
        : {}),
      workerMetrics: createWorkerMetrics(),
    };
    const endpoint = await (opts.temporal ?? testTemporal)();
    const connection = await Connection.connect(endpoint.connectionOptions);
    const client = new Client({ connection, namespace: endpoint.namespace, identity: 'tests' });
    ctx = { home, config, deps, router, client, connection };
    if (opts.worker !== false) {
      const nativeConnection = await NativeConnection.connect(endpoint.connectionOptions);
      const worker = await Worker.create({
        connection: nativeConnection,
        namespace: endpoint.namespace,
        taskQueue,
        activities: createActivities(deps),
        workflowsPath: WORKFLOWS,
      });
      ctx.worker = worker;
      ctx.nativeConnection = nativeConnection;
      ctx.workerRun = worker.run();
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.all(traffics.map((t) => t.stop().catch(() => undefined)));
    if (!ctx) return;
    if (ctx.worker && ctx.worker.getState() === 'RUNNING') ctx.worker.shutdown();
    await ctx.workerRun?.catch(() => undefined);
    await ctx.nativeConnection?.close();
    for (const d of await ctx.deps.fleet.list().catch(() => [])) {
      await ctx.deps.fleet.teardown(d.name).catch(() => undefined);
    }
    await ctx.router.stop();
    await ctx.connection.close();
    if (process.env.RUNWAY_KEEP_TEST_HOME !== '1') fs.rmSync(ctx.home, { recursive: true, force: true });
    else console.info(`kept test platform state in ${ctx.home}`);
  }, 120_000);

  const get = () => {
    if (!ctx) throw new Error('usePromotionPlatform(): ready only inside tests');
    return ctx;
  };

  return {
    get home() {
      return get().home;
    },
    get deps() {
      return get().deps;
    },
    get router() {
      return get().router;
    },
    get client() {
      return get().client;
    },
    taskQueue,
    async bootstrap(model, spec, opts = {}) {
      const { deps } = get();
      const files: [string, string][] = [
        ...['1', '2', '3', '4', '5'].map((v): [string, string] => [
          v,
          path.join(MODELS_DIR, `fraud-v${v}.onnx`),
        ]),
        ...Object.entries(opts.versions ?? {}),
      ];
      for (const [version, file] of files) {
        await deps.registry.push(model, file, { version, source: 'tests' });
      }
      const production = opts.production ?? '1';
      await deps.registry.setAlias(model, 'production', production);
      await deps.registry.setStatus(model, production, 'production', 'test baseline');
      if (opts.serve === false) return;
      await serveAtFull(deps, spec, production, opts.replicas ?? 1);
    },
    traffic(model, rps = 60) {
      const t = startTraffic({
        baseUrl: get().router.url,
        model,
        rps,
        durationMs: 10 * 60_000,
        seed: model.length,
        feedbackToken: get().config.router.feedbackTokens[model],
      });
      traffics.push(t);
      return t;
    },
    async start(spec, version, triggeredBy = 'ci-bot', extra = {}) {
      const input: PromotionInput = {
        spec,
        specSha256: 'test',
        version,
        triggeredBy,
        metadata: { commit: 'abc123' },
        ...extra,
      };
      return get().client.workflow.start('promotionWorkflow', {
        taskQueue,
        workflowId: promotionWorkflowId(spec.name),
        args: [input],
        typedSearchAttributes: [
          { key: RunwayModel, value: spec.name },
          { key: RunwayVersion, value: version },
          { key: RunwayStage, value: 'evaluate' },
        ],
        workflowExecutionTimeout: '10m',
      });
    },
    async launch(spec, version, opts = {}) {
      await this.bootstrap(spec.name, spec, { versions: opts.versions, production: opts.production });
      const traffic = this.traffic(spec.name, opts.rps);
      const handle = await this.start(spec, version, opts.triggeredBy, opts.extra);
      await this.approveWhenAsked(spec.name);
      return { traffic, handle };
    },
    async approveWhenAsked(model, approver = 'alice') {
      await waitForStatus(this, model, (s) => s.stage === 'approve', 90_000);
      await get()
        .client.workflow.getHandle(promotionWorkflowId(model))
        .executeUpdate(approveUpdate, { args: [{ approver, comment: 'lgtm' }] });
    },
    async routeOf(model) {
      return (await get().deps.router.getRoute(model))?.variants.map((v): [string, number] => [
        v.name,
        v.weight,
      ]);
    },
    async status(model) {
      return get().client.workflow.getHandle(promotionWorkflowId(model)).query(statusQuery);
    },
    async result(model) {
      return (await get().client.workflow.getHandle(promotionWorkflowId(model)).result()) as PromotionResult;
    },
    async restartRouter(downMs) {
      const c = get();
      const { pid, url } = c.router;
      if (!pid) throw new Error('restartRouter: the router is not a child of this test');
      await sigkillAndWait(pid);
      await new Promise((r) => setTimeout(r, downMs));
      c.router = await ensureRouter(c.config, Number(new URL(url).port), createLogger('test-router'));
      if (c.router.url !== url) throw new Error(`router came back on ${c.router.url}, not ${url}`);
    },
  };
}

/** The promotion's end as `outcome: reason`, or `failed: cause` when the workflow itself failed. */
export async function settledOutcome(platform: PromotionPlatform, model: string): Promise<string> {
  try {
    const result = await platform.result(model);
    return `${result.outcome}: ${result.reason}`;
  } catch (err) {
    return `failed: ${String((err as { cause?: unknown }).cause ?? err)}`;
  }
}

/** Polls the status until `pred` holds (or throws with the last status). */
export async function waitForStatus(
  platform: PromotionPlatform,
  model: string,
  pred: (s: PromotionStatus) => boolean,
  timeoutMs = 60_000,
): Promise<PromotionStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: PromotionStatus | undefined;
  for (;;) {
    try {
      last = await platform.status(model);
      if (pred(last)) return last;
    } catch {
      // not started yet
    }
    if (Date.now() > deadline)
      throw new Error(`status condition not met in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
