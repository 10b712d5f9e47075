/**
 * promotionWorkflow: carries one model version from evaluation to 100% of production traffic,
 * or back out again. It reads like the runbook a careful platform team follows by hand:
 *
 *   evaluate → approve → stage → integration → shadow → canary steps → experiment → graduate
 *
 * From shadow on an SLO guard looks every interval; `failureLimit` consecutive failures roll
 * back. Any failure, rejection or cancellation runs the same non-cancellable cleanup, so traffic
 * never stays on a broken version. Every decision's numbers are activity results in the history.
 *
 * Deterministic: no Node built-ins, no clocks but the SDK's. Changes that in-flight promotions
 * would replay go behind patched().
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  ContinueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  allHandlersFinished,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/common';
import type { Activities } from '../activities';
import type {
  IntervalAnalysis,
  PreparedPromotion,
  TrafficVariant,
  VersionRef,
} from '../activities/contracts';
import type { MetricsSnapshot } from '../serving/metrics/source';
import { formatDuration } from '../specs/duration';
import { RunwayOutcome, RunwayStage } from './search-attributes';
import {
  approveSignal,
  approveUpdate,
  handlerDescriptions,
  pauseSignal,
  promoteFullSignal,
  rejectSignal,
  rejectUpdate,
  resumeSignal,
  rollbackSignal,
  statusQuery,
  type ApprovalInput,
  type ApprovalVerdict,
  type Outcome,
  type PromotionInput,
  type PromotionResult,
  type PromotionState,
  type PromotionStatus,
  type Stage,
  type Verdict,
} from './api';

const quick: ActivityOptions = {
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 10 },
};
const slow: ActivityOptions = {
  startToCloseTimeout: '10m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '2s', maximumInterval: '30s', maximumAttempts: 5 },
};

const acts = proxyActivities<Activities>(quick);

/** Runs an activity with a one-line summary the Temporal UI shows beside it. */
function run<K extends keyof Activities>(
  name: K,
  summary: string,
  options: ActivityOptions,
  ...args: Parameters<Activities[K]>
): Promise<Awaited<ReturnType<Activities[K]>>> {
  // The proxy's mapped type loses executeWithOptions on a generic key; the call itself is typed above.
  const fn = acts[name] as unknown as {
    executeWithOptions(o: ActivityOptions, a: unknown[]): Promise<unknown>;
  };
  return fn.executeWithOptions({ ...options, summary }, args) as Promise<Awaited<ReturnType<Activities[K]>>>;
}

const variantName = (version: string): string => `v${version}`;
const deploymentName = (model: string, version: string, env: 'staging' | 'production'): string =>
  `${model}-v${version}-${env}`;

/** The root cause, named by the activity that failed: "prepareCandidate: sha256 mismatch ...". */
function failureReason(err: unknown): string {
  let e: unknown = err;
  let message = err instanceof Error ? err.message : String(err);
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) {
    e = (e as { cause: Error }).cause;
    message = (e as Error).message;
  }
  return err instanceof ActivityFailure && err.activityType ? `${err.activityType}: ${message}` : message;
}

class Ended extends Error {
  constructor(
    readonly outcome: Outcome,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export async function promotionWorkflow(input: PromotionInput): Promise<PromotionResult> {
  const { spec, version } = input;
  const model = spec.name;
  const state: PromotionState = input.resume ?? {
    stage: 'evaluate',
    stepIndex: 0,
    heldMs: 0,
    approvals: [],
    paused: false,
    weights: {},
    trafficChanges: [],
    lastVerdicts: [],
    consecutiveFailures: 0,
    inconclusiveStreak: 0,
  };
  let rejected: { by: string; reason: string } | undefined;
  let rollbackRequest: { by: string; reason: string } | undefined;
  let promoteFull: { by: string } | undefined;
  let outcome: { outcome: Outcome; reason: string } | undefined;
  let mirror = state.mirror;
  const verdicts: Verdict[] = [];
  // A human resuming an inconclusive pause means: proceed on my judgement.
  let awaitingHuman = false;
  let humanProceed = false;
  const candidateVariant = variantName(version);

  // ---- approvals: the same rules for the UI's signals and the CLI's updates ----
  const checkApproval = (a: ApprovalInput | undefined): { ok: boolean; reason: string } => {
    if (!a || typeof a.approver !== 'string' || a.approver.trim() === '') {
      return { ok: false, reason: 'payload must be {"approver": "<name>", "comment": "..."}' };
    }
    const approver = a.approver.trim();
    if (state.stage !== 'approve') {
      return { ok: false, reason: `not waiting for approval (stage ${state.stage})` };
    }
    const allowed = spec.approval.approvers;
    if (allowed.length > 0 && !allowed.includes(approver)) {
      return {
        ok: false,
        reason: `${approver} is not an approver for ${model} (allowed: ${allowed.join(', ')})`,
      };
    }
    if (!spec.approval.allowSelfApproval && approver === input.triggeredBy) {
      return { ok: false, reason: `${approver} started this promotion and the spec forbids self-approval` };
    }
    return { ok: true, reason: 'ok' };
  };
  const approvers = (): string[] => [...new Set(state.approvals.map((a) => a.approver))];
  const approvalVerdict = (accepted: boolean, reason: string): ApprovalVerdict => ({
    accepted,
    reason,
    approvals: approvers(),
    required: spec.approval.required,
  });
  const recordApproval = (a: ApprovalInput, via: 'signal' | 'update'): ApprovalVerdict => {
    const approver = a.approver.trim();
    if (approvers().includes(approver))
      return approvalVerdict(true, `${approver} had already approved; counted once`);
    state.approvals.push({ approver, comment: a.comment, at: new Date().toISOString(), via });
    return approvalVerdict(true, `approved by ${approver} (${approvers().length}/${spec.approval.required})`);
  };
  const ignore = async (what: string, reason: string, payload: unknown): Promise<void> => {
    log.warn(`ignored ${what}: ${reason}`, { payload });
    // An activity call puts the reason into the history, where the auditor reads it.
    await run('notify', `ignored ${what}: ${reason}`, quick, {
      model,
      version,
      event: `${what}_ignored`,
      message: reason,
      details: { payload },
    });
  };

  setHandler(approveUpdate, (a) => recordApproval(a, 'update'), {
    validator: (a) => {
      const check = checkApproval(a);
      if (!check.ok) throw new Error(check.reason);
    },
    description: handlerDescriptions.approve,
  });
  setHandler(
    approveSignal,
    async (a) => {
      const check = checkApproval(a);
      if (check.ok) recordApproval(a, 'signal');
      else await ignore('approval', check.reason, a);
    },
    { description: handlerDescriptions.approve },
  );
  const checkReject = (
    r: { approver?: string; reason?: string } | undefined,
  ): { ok: boolean; reason: string } => {
    if (!r || typeof r.approver !== 'string' || !r.approver.trim()) {
      return { ok: false, reason: 'payload must be {"approver": "<name>", "reason": "..."}' };
    }
    if (state.stage !== 'approve' && state.stage !== 'evaluate') {
      return { ok: false, reason: `not waiting for approval (stage ${state.stage}); use rollback instead` };
    }
    const allowed = spec.approval.approvers;
    if (allowed.length > 0 && !allowed.includes(r.approver.trim())) {
      return { ok: false, reason: `${r.approver} is not an approver for ${model}` };
    }
    return { ok: true, reason: 'ok' };
  };
  setHandler(
    rejectUpdate,
    (r) => {
      rejected = { by: r.approver.trim(), reason: r.reason || 'no reason given' };
      return approvalVerdict(true, `rejected by ${rejected.by}: ${rejected.reason}`);
    },
    {
      validator: (r) => {
        const check = checkReject(r);
        if (!check.ok) throw new Error(check.reason);
      },
      description: handlerDescriptions.reject,
    },
  );
  setHandler(
    rejectSignal,
    async (r) => {
      const check = checkReject(r);
      if (check.ok) rejected = { by: r.approver.trim(), reason: r.reason || 'no reason given' };
      else await ignore('rejection', check.reason, r);
    },
    { description: handlerDescriptions.reject },
  );
  setHandler(
    pauseSignal,
    (p) => {
      state.paused = true;
      state.pauseReason = `paused by ${p?.by ?? 'unknown'}${p?.reason ? `: ${p.reason}` : ''}`;
      state.pendingAction = 'resume to continue, rollback to abort';
      refreshDetails();
    },
    { description: handlerDescriptions.pause },
  );
  setHandler(
    resumeSignal,
    (p) => {
      state.paused = false;
      state.pauseReason = undefined;
      state.pendingAction = undefined;
      state.inconclusiveStreak = 0;
      if (awaitingHuman) humanProceed = true;
      awaitingHuman = false;
      log.info(`resumed by ${p?.by ?? 'unknown'}`);
      refreshDetails();
    },
    { description: handlerDescriptions.resume },
  );
  setHandler(
    rollbackSignal,
    (r) => {
      rollbackRequest = { by: r?.by ?? 'unknown', reason: r?.reason ?? 'no reason given' };
    },
    { description: handlerDescriptions.rollback },
  );
  setHandler(
    promoteFullSignal,
    (p) => {
      promoteFull = { by: p?.by ?? 'unknown' };
    },
    { description: handlerDescriptions.promoteFull },
  );

  let prepared: PreparedPromotion | undefined;
  // Query-only bookkeeping (no commands), so replay is unaffected.
  const stagesEntered: Stage[] = [];
  const currentStep = (): PromotionStatus['step'] => {
    const step = spec.canary.steps[state.stepIndex];
    return state.stage === 'canary' && step
      ? { index: state.stepIndex, weight: step.weight, heldMs: state.heldMs, pauseMs: step.pause }
      : undefined;
  };
  setHandler(
    statusQuery,
    (): PromotionStatus => ({
      model,
      version,
      baselineVersion: state.baselineVersion,
      stage: state.stage,
      stagesEntered: [...stagesEntered],
      step: currentStep(),
      weights: state.weights,
      mirror,
      paused: state.paused,
      pauseReason: state.pauseReason,
      pendingAction: state.pendingAction,
      approvals: state.approvals,
      approvalsRequired: spec.approval.required,
      lastVerdicts: state.lastVerdicts,
      evaluation: state.evaluation,
      outcome: outcome?.outcome,
      outcomeReason: outcome?.reason,
      triggeredBy: input.triggeredBy,
    }),
    { description: handlerDescriptions.status },
  );

  // ---- UI visibility ----
  function refreshDetails(extra?: string): void {
    const weights = Object.entries(state.weights)
      .map(([v, w]) => `${v} ${w}%`)
      .join(', ');
    const lines = [
      `**${model}** v${version} — stage **${state.stage}**${state.paused ? ' (PAUSED)' : ''}`,
      weights ? `traffic: ${weights}${mirror ? `; mirror ${mirror.percent}% → ${mirror.variant}` : ''}` : '',
      state.pendingAction ? `waiting for: ${state.pendingAction}` : '',
      ...state.lastVerdicts.map((v) => `${v.check}: ${v.result} — ${v.reason}`),
      extra ?? '',
    ].filter(Boolean);
    setCurrentDetails(lines.join('\n\n'));
  }
  function enter(stage: Stage, detail?: string): void {
    state.stage = stage;
    stagesEntered.push(stage);
    upsertSearchAttributes([{ key: RunwayStage, value: stage }]);
    log.info(`stage ${stage}${detail ? `: ${detail}` : ''}`);
    refreshDetails(detail);
  }

  // ---- traffic ----
  /** Routes traffic; `withMirror` is explicit (undefined = no mirror) so no stale shadow lingers. */
  async function setTraffic(
    variants: TrafficVariant[],
    reason: string,
    withMirror: { variant: string; percent: number; tolerance?: number } | undefined,
  ): Promise<void> {
    await run(
      'setTraffic',
      `route ${variants.map((v) => `${v.name}=${v.weight}%`).join(' ')}: ${reason}`,
      quick,
      {
        model,
        variants,
        mirror: withMirror,
        sticky: { header: spec.experiment.unitHeader },
        // Only a field of the activity's input (absent in specs older than reward shapes): no new command.
        reward: spec.experiment.reward,
        reason,
      },
    );
    mirror = withMirror;
    state.mirror = withMirror;
    state.weights = Object.fromEntries(variants.map((v) => [v.name, v.weight]));
    state.trafficChanges.push({
      at: new Date().toISOString(),
      stage: state.stage,
      weights: state.weights,
      mirror: withMirror,
      reason,
    });
    refreshDetails();
  }
  const baselineRef = (): VersionRef | undefined => prepared?.baseline;
  const split = (candidateWeight: number): TrafficVariant[] => {
    const base = baselineRef();
    const variants: TrafficVariant[] = [];
    if (base) {
      variants.push({
        name: variantName(base.version),
        deployment: deploymentName(model, base.version, 'production'),
        weight: 100 - candidateWeight,
      });
    }
    variants.push({
      name: candidateVariant,
      deployment: deploymentName(model, version, 'production'),
      weight: base ? candidateWeight : 100,
    });
    return variants;
  };

  // ---- the SLO guard and analysis, one interval at a time ----
  let lastSnapshot = state.lastSnapshot as MetricsSnapshot | undefined;
  async function look(phase: 'shadow' | 'canary' | 'experiment'): Promise<IntervalAnalysis> {
    const base = baselineRef();
    const result = await run('analyzeInterval', `${phase} analysis of ${candidateVariant}`, quick, {
      model,
      phase,
      candidate: candidateVariant,
      baseline: base ? variantName(base.version) : undefined,
      previous: lastSnapshot,
      slos: spec.slos,
      analysis: spec.canary.analysis,
      shadow: spec.shadow,
      experiment: phase === 'experiment' ? spec.experiment : undefined,
      seed: (state.seed = (state.seed ?? 0) + 1),
      experimentStart:
        phase === 'experiment' ? (state.experiment?.start as MetricsSnapshot | undefined) : undefined,
      abState: phase === 'experiment' ? state.experiment?.ab : undefined,
      ...(phase === 'experiment' && state.experiment?.carry
        ? { experimentCarry: state.experiment.carry }
        : {}),
    });
    lastSnapshot = result.snapshot;
    state.lastSnapshot = result.snapshot;
    const current = [result.guard, result.comparison, result.experiment].filter((v): v is Verdict => !!v);
    state.lastVerdicts = current;
    verdicts.push(...current);
    return result;
  }

  /** Windows start at a traffic change: what the old weights did is not the new step's business. */
  async function freshWindow(): Promise<void> {
    lastSnapshot = await run('snapshotMetrics', 'read router counters at the traffic change', quick, {
      model,
    });
    state.lastSnapshot = lastSnapshot;
  }

  /**
   * Holds the current traffic for `durationMs`, looking every interval. Returns when the hold is
   * over; throws Ended on rollback (manual or automatic). Pausing stops the clock, not the guard.
   */
  async function hold(phase: 'shadow' | 'canary', durationMs: number): Promise<'done' | 'promote_full'> {
    const interval = spec.canary.interval;
    for (;;) {
      if (state.heldMs >= durationMs && !state.paused) {
        // Inconclusive is never a pass: extend up to the bound, then ask a human.
        const unresolved = state.lastVerdicts.some((v) => v.result === 'inconclusive');
        if (!unresolved || durationMs === 0 || humanProceed) {
          humanProceed = false;
          return 'done';
        }
        if (state.inconclusiveStreak >= spec.canary.analysis.maxInconclusive) {
          const why = state.lastVerdicts
            .filter((v) => v.result === 'inconclusive')
            .map((v) => `${v.check}: ${v.reason}`)
            .join('; ');
          if (spec.rollback.onInconclusive === 'rollback')
            throw new Ended('rolled_back', `inconclusive: ${why}`);
          if (spec.rollback.onInconclusive === 'proceed') return 'done';
          awaitingHuman = true;
          state.paused = true;
          state.pauseReason = `analysis inconclusive after ${state.inconclusiveStreak} extra intervals: ${why}`;
          state.pendingAction = 'a human decision: resume to proceed, rollback to abort';
          refreshDetails();
          await run('notify', 'analysis inconclusive: paused for a human', quick, {
            model,
            version,
            event: 'paused_inconclusive',
            message: state.pauseReason,
          });
        }
      }
      await condition(() => !!rollbackRequest || !!promoteFull, interval);
      if (rollbackRequest) {
        throw new Ended('rolled_back', `manual rollback by ${rollbackRequest.by}: ${rollbackRequest.reason}`);
      }
      if (promoteFull) return 'promote_full';
      const result = await look(phase);
      judge(result, phase);
      const inconclusive = [result.guard, result.comparison].some((v) => v?.result === 'inconclusive');
      if (!state.paused) {
        if (state.heldMs >= durationMs && inconclusive) state.inconclusiveStreak++;
        state.heldMs += interval;
      }
      if (!inconclusive) state.inconclusiveStreak = 0;
      refreshDetails();
      if (historyTooLong()) await rollOver();
    }
  }

  const historyTooLong = (): boolean =>
    workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > (input.historyLimit ?? 10_000);

  /** Long phases start a fresh run with the same state before the history grows large. */
  async function rollOver(): Promise<never> {
    await condition(allHandlersFinished);
    state.lastSnapshot = lastSnapshot;
    return continueAsNew<typeof promotionWorkflow>({ ...input, resume: state });
  }

  /** Consecutive guard failures roll back; shared by every phase that watches live traffic. */
  function judge(result: IntervalAnalysis, phase: string): void {
    const failing = [result.guard, result.comparison].filter((v): v is Verdict => v?.result === 'fail');
    if (failing.length === 0) {
      state.consecutiveFailures = 0;
      return;
    }
    state.consecutiveFailures++;
    if (state.consecutiveFailures >= spec.canary.failureLimit) {
      const why = failing.map((v) => `${v.check}: ${v.reason}`).join('; ');
      throw new Ended(
        'rolled_back',
        `automatic rollback at ${phase} after ${state.consecutiveFailures} failed intervals — ${why}`,
      );
    }
  }

  /**
   * The experiment between canary and graduation: a sticky A/B with an always-valid sequential
   * test, or a Thompson-sampling bandit that moves the weights each interval. Rewards are counted
   * from the experiment's start; the SLO guard keeps judging each interval on its own.
   */
  async function experiment(): Promise<'done' | 'promote_full'> {
    const e = spec.experiment;
    enter(
      'experiment',
      e.kind === 'ab' ? `A/B at ${e.split}% by ${e.unitHeader}` : 'bandit (Thompson sampling)',
    );
    if (!state.experiment) {
      await setTraffic(
        split(e.kind === 'ab' ? e.split : 50),
        e.kind === 'ab' ? `A/B: ${e.split}% candidate, sticky by ${e.unitHeader}` : 'bandit: arms start even',
        undefined,
      );
      await freshWindow();
      state.experiment = { start: lastSnapshot, elapsedMs: 0 };
    }
    const exp = state.experiment;
    for (;;) {
      await condition(() => !!rollbackRequest || !!promoteFull, e.interval);
      if (rollbackRequest) {
        throw new Ended('rolled_back', `manual rollback by ${rollbackRequest.by}: ${rollbackRequest.reason}`);
      }
      if (promoteFull) return 'promote_full';
      const result = await look('experiment');
      judge(result, 'experiment');
      const verdict = result.experiment;
      if (!state.paused) exp.elapsedMs += e.interval;
      if (verdict?.rewards) exp.rewards = verdict.rewards;
      // The router's counters reset (it restarted): keep what was counted up to the last good
      // look and count on from this look's snapshot, instead of losing the whole experiment.
      if (verdict?.sinceStartGap && patched('experiment-recounts-after-reset')) {
        exp.carry = exp.rewards ?? exp.carry;
        exp.start = result.snapshot;
      }
      if (verdict && e.kind === 'ab') {
        if (typeof verdict.pValue === 'number' && verdict.ci)
          exp.ab = { pValue: verdict.pValue, ci: verdict.ci };
        if (verdict.decision === 'candidate_wins') return 'done';
        if (verdict.decision === 'baseline_wins')
          throw new Ended('rejected', `the candidate lost the A/B: ${verdict.reason}`);
      }
      if (verdict && e.kind === 'bandit') {
        if (verdict.decision === 'stop') {
          if (verdict.best === candidateVariant) return 'done';
          throw new Ended('rejected', `the bandit chose the baseline: ${verdict.reason}`);
        }
        const w = verdict.weights ?? {};
        const changed = Object.entries(w).some(([v, x]) => state.weights[v] !== x);
        if (changed && !state.paused) {
          await setTraffic(split(w[candidateVariant] ?? 50), `bandit: ${verdict.reason}`, undefined);
        }
      }
      if (exp.elapsedMs >= e.maxDuration) {
        const why = `no decision within ${formatDuration(e.maxDuration)}${verdict ? `: ${verdict.reason}` : ''}`;
        if (e.onTimeout === 'proceed') {
          log.info(`experiment timed out, proceeding as the spec says (${why})`);
          return 'done';
        }
        throw new Ended('rejected', `experiment kept the baseline: ${why}`);
      }
      refreshDetails();
      if (historyTooLong()) await rollOver();
    }
    return 'done';
  }

  // ---- cleanup: the saga, in order, each step on its own so one failure does not stop the rest ----
  async function cleanup(reason: string): Promise<void> {
    // A continued run learns the baseline from prepareCandidate; ending before that (cancelled, or
    // the artifacts fail their check again) it still knows the version serving production from
    // state, and must route back to it rather than remove the model's route.
    const base =
      baselineRef() ??
      (state.baselineVersion && patched('cleanup-baseline-from-state')
        ? { version: state.baselineVersion }
        : undefined);
    const steps: [string, () => Promise<unknown>][] = [];
    if (base && Object.keys(state.weights).length > 0) {
      steps.push([
        'route all traffic to the baseline',
        () =>
          setTraffic(
            [
              {
                name: variantName(base.version),
                deployment: deploymentName(model, base.version, 'production'),
                weight: 100,
              },
            ],
            `rollback: ${reason}`,
            undefined,
          ),
      ]);
    } else if (!base && Object.keys(state.weights).length > 0) {
      steps.push([
        'remove the route',
        () => run('removeRoute', 'remove the candidate route', quick, { model }),
      ]);
    }
    steps.push([
      'scale the candidate down',
      () =>
        run('teardown', `tear down ${candidateVariant} in production`, slow, {
          name: deploymentName(model, version, 'production'),
        }),
    ]);
    steps.push([
      'tear down staging',
      () =>
        run('teardown', `tear down ${candidateVariant} in staging`, slow, {
          name: deploymentName(model, version, 'staging'),
        }),
    ]);
    steps.push([
      'mark the version rejected',
      () =>
        run('updateRegistry', `mark v${version} rejected`, quick, {
          model,
          status: { version, status: 'rejected', reason },
        }),
    ]);
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (err) {
        log.error(`cleanup step failed: ${what}`, { error: String(err) });
      }
    }
  }

  // ---- the path ----
  try {
    await CancellationScope.cancellable(async () => {
      const prep = await run('prepareCandidate', `verify artifacts of v${version} and production`, quick, {
        model,
        version,
      });
      prepared = prep;
      if (prep.baseline?.version === version) {
        throw new Ended('rejected', `v${version} is already the production version`);
      }
      state.baselineVersion = prep.baseline?.version;

      if (state.stage === 'evaluate') {
        enter('evaluate', 'offline evaluation against production');
        const verdict = await run('evaluate', `evaluate v${version} on ${spec.evaluation.metric}`, slow, {
          model,
          candidate: prep.candidate,
          baseline: prep.baseline,
          evaluation: spec.evaluation,
        });
        state.evaluation = verdict;
        state.lastVerdicts = [verdict];
        verdicts.push(verdict);
        if (verdict.result !== 'pass') throw new Ended('rejected', `evaluation failed: ${verdict.reason}`);
        state.stage = 'approve';
      }

      if (state.stage === 'approve') {
        enter('approve');
        if (spec.approval.required > 0) {
          state.pendingAction = `${spec.approval.required} approval(s) from ${spec.approval.approvers.join(', ') || 'anyone'}`;
          refreshDetails();
          const decided = await condition(
            () => approvers().length >= spec.approval.required || !!rejected || !!rollbackRequest,
            spec.approval.timeout,
          );
          state.pendingAction = undefined;
          if (rejected) throw new Ended('rejected', `rejected by ${rejected.by}: ${rejected.reason}`);
          if (rollbackRequest)
            throw new Ended('rejected', `aborted by ${rollbackRequest.by}: ${rollbackRequest.reason}`);
          if (!decided) {
            throw new Ended('expired', `no decision within ${formatDuration(spec.approval.timeout)}`);
          }
        }
        state.stage = 'stage';
      }

      if (state.stage === 'stage' || state.stage === 'integration') {
        enter('stage', 'deploy to staging');
        const staging = await run('deploy', `deploy v${version} to staging`, slow, {
          model,
          version,
          environment: 'staging',
          artifactPath: prep.candidate.artifactPath,
          sha256: prep.candidate.sha256,
          replicas: 1,
          serving: spec.serving,
        });
        await run('updateRegistry', `alias staging → v${version}`, quick, {
          model,
          aliases: { staging: version },
        });
        enter('integration', 'golden set, signature and latency against staging');
        try {
          const verdict = await run('integrationTest', `integration tests of v${version} on staging`, slow, {
            model,
            version,
            endpoint: staging.endpoints[0] ?? '',
            signature: spec.model.signature,
            integration: spec.integration,
            p99LatencyMs: spec.integration.maxP99LatencyMs ?? spec.slos.p99LatencyMs,
          });
          state.lastVerdicts = [verdict];
          verdicts.push(verdict);
          if (verdict.result !== 'pass')
            throw new Ended('rejected', `integration tests failed: ${verdict.reason}`);
        } finally {
          await CancellationScope.nonCancellable(() =>
            run('teardown', `tear down staging v${version}`, slow, {
              name: deploymentName(model, version, 'staging'),
            }),
          );
        }
        state.stage = 'shadow';
      }

      if (rollbackRequest)
        throw new Ended('rolled_back', `manual rollback by ${rollbackRequest.by}: ${rollbackRequest.reason}`);

      // Production: the candidate joins beside the baseline (redeployed if it is not running).
      await run('deploy', `deploy v${version} to production`, slow, {
        model,
        version,
        environment: 'production',
        artifactPath: prep.candidate.artifactPath,
        sha256: prep.candidate.sha256,
        replicas: spec.serving.replicas,
        serving: spec.serving,
      });
      const base = prep.baseline;
      if (base) {
        await run('deploy', `ensure baseline v${base.version} runs in production`, slow, {
          model,
          version: base.version,
          environment: 'production',
          artifactPath: base.artifactPath,
          sha256: base.sha256,
          replicas: spec.serving.replicas,
          serving: spec.serving,
          ifMissing: true,
        });
      }

      let skipToGraduate = !base; // a first release has nothing to compare against
      if (!base) log.info('no production version yet: first release goes straight to 100%');

      if (!skipToGraduate && state.stage === 'shadow') {
        if (spec.shadow.enabled) {
          enter('shadow', `mirror ${spec.shadow.mirrorPercent}% for ${formatDuration(spec.shadow.duration)}`);
          // A run continued-as-new mid-shadow keeps its route and clock (before this patch it
          // restarted the shadow, so a short history limit could keep it there forever).
          const resumed = state.mirror?.variant === candidateVariant && patched('shadow-resume-keeps-clock');
          if (!resumed) {
            state.heldMs = 0;
            await setTraffic(split(0), 'shadow: candidate at 0% with mirrored traffic', {
              variant: candidateVariant,
              percent: spec.shadow.mirrorPercent,
              tolerance: spec.shadow.tolerance,
            });
            await freshWindow();
          }
          if ((await hold('shadow', spec.shadow.duration)) === 'promote_full') skipToGraduate = true;
        }
        state.stage = 'canary';
        state.stepIndex = 0;
        state.heldMs = 0;
      }

      if (!skipToGraduate && state.stage === 'canary') {
        enter('canary');
        for (; state.stepIndex < spec.canary.steps.length; state.stepIndex++) {
          const step = spec.canary.steps[state.stepIndex];
          if (!step) break;
          if (step.weight >= 100) break; // 100% is graduation
          if (state.weights[candidateVariant] !== step.weight) {
            await setTraffic(
              split(step.weight),
              `canary step ${state.stepIndex + 1}: ${step.weight}%`,
              undefined,
            );
            state.heldMs = 0;
            state.consecutiveFailures = 0;
            state.inconclusiveStreak = 0;
            await freshWindow();
          }
          refreshDetails(
            `step ${state.stepIndex + 1}/${spec.canary.steps.length}: ${step.weight}% for ${formatDuration(step.pause)}`,
          );
          if ((await hold('canary', step.pause)) === 'promote_full') {
            skipToGraduate = true;
            break;
          }
        }
        state.stage = spec.experiment.kind === 'none' ? 'graduate' : 'experiment';
      }

      if (!skipToGraduate && state.stage === 'experiment') {
        if ((await experiment()) === 'promote_full') skipToGraduate = true;
        state.stage = 'graduate';
      }

      if (promoteFull) log.info(`promoted fully by ${promoteFull.by}`);
      enter('graduate', 'candidate to 100%, aliases moved');
      await setTraffic(
        split(100).filter((v) => v.weight > 0 || !base),
        'graduate: candidate at 100%',
        undefined,
      );
      await run('updateRegistry', `production → v${version}`, quick, {
        model,
        aliases: { production: version, previous: base?.version ?? null, staging: null },
        status: {
          version,
          status: 'production',
          reason: promoteFull ? `promoted fully by ${promoteFull.by}` : 'graduated',
        },
      });
      if (base) {
        await run('updateRegistry', `v${base.version} archived`, quick, {
          model,
          status: { version: base.version, status: 'archived', reason: `replaced by v${version}` },
        });
      }
      outcome = {
        outcome: 'promoted',
        reason: promoteFull ? `promoted fully by ${promoteFull.by}` : 'all steps passed',
      };
    });
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    let ended: { outcome: Outcome; reason: string };
    if (err instanceof Ended) ended = { outcome: err.outcome, reason: err.reason };
    else if (isCancellation(err)) ended = { outcome: 'cancelled', reason: 'cancelled' };
    else ended = { outcome: 'failed', reason: failureReason(err) };
    outcome = ended;
    enter('rolling_back', ended.reason);
    await CancellationScope.nonCancellable(() => cleanup(ended.reason));
  }

  const final: { outcome: Outcome; reason: string } = outcome ?? {
    outcome: 'failed',
    reason: 'ended without an outcome',
  };
  state.stage = 'done';
  stagesEntered.push('done');
  state.pendingAction = undefined;
  upsertSearchAttributes([
    { key: RunwayStage, value: 'done' },
    { key: RunwayOutcome, value: final.outcome },
  ]);
  refreshDetails(`outcome: ${final.outcome} — ${final.reason}`);
  await CancellationScope.nonCancellable(() =>
    run('notify', `outcome ${final.outcome}`, quick, {
      model,
      version,
      event: `promotion_${final.outcome}`,
      message: final.reason,
      details: { weights: state.weights },
    }),
  );

  // The old version keeps running for a while after graduation, ready for a fast rollback:
  // a rollback signal in this window swaps traffic back at once, no redeploy needed.
  const base = prepared?.baseline;
  if (final.outcome === 'promoted' && base) {
    state.pendingAction = `previous v${base.version} scales down in ${formatDuration(spec.rollback.scaleDownDelay)}; rollback restores it at once`;
    refreshDetails();
    const rolledBack = await condition(() => !!rollbackRequest, spec.rollback.scaleDownDelay);
    state.pendingAction = undefined;
    if (rolledBack && rollbackRequest) {
      const reason = `rollback after graduation by ${rollbackRequest.by}: ${rollbackRequest.reason}`;
      await CancellationScope.nonCancellable(async () => {
        state.stage = 'rolling_back';
        await setTraffic(
          [
            {
              name: variantName(base.version),
              deployment: deploymentName(model, base.version, 'production'),
              weight: 100,
            },
          ],
          reason,
          undefined,
        );
        await run('updateRegistry', `production → v${base.version}`, quick, {
          model,
          aliases: { production: base.version, previous: null },
          status: { version: base.version, status: 'production', reason },
        });
        await run('updateRegistry', `v${version} rejected`, quick, {
          model,
          status: { version, status: 'rejected', reason },
        });
        await run('teardown', `tear down v${version}`, slow, {
          name: deploymentName(model, version, 'production'),
        });
      });
      final.outcome = 'rolled_back';
      final.reason = reason;
      state.stage = 'done';
      upsertSearchAttributes([{ key: RunwayOutcome, value: final.outcome }]);
      refreshDetails(`outcome: ${final.outcome} — ${final.reason}`);
    } else {
      await run('teardown', `scale down previous v${base.version}`, slow, {
        name: deploymentName(model, base.version, 'production'),
      });
    }
  }

  const result: PromotionResult = {
    model,
    version,
    outcome: final.outcome,
    reason: final.reason,
    baselineVersion: base?.version,
    verdicts,
    trafficChanges: state.trafficChanges,
    approvals: state.approvals,
  };
  if (final.outcome === 'failed') {
    throw ApplicationFailure.nonRetryable(final.reason, 'PromotionFailed', result);
  }
  return result;
}
