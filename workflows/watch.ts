/**
 * watchWorkflow (`watch:<model>`): after graduation, the new production version is watched for
 * `watch.duration` under multi-window multi-burn-rate SLO alerts and for input and prediction
 * drift against the evaluation data, acting by the spec.
 *
 * Its own workflow, not a phase of the promotion: the promotion's result (and CI's exit code) is
 * known at graduation, and the next promotion of the model need not wait a day for the watch to
 * end. It is started by the promotion as an abandoned child; while the promotion still holds the
 * previous version (rollback.scaleDownDelay), a page signals the promotion to swap back at once;
 * afterwards `watch.onPage` says whether to roll back (the rollback workflow redeploys the
 * previous version) or only notify. It ends when the registry names another production version
 * (a rollback or the next graduation), and continues as new before its history grows large.
 *
 * Deterministic: the burn-rate arithmetic is pure (activities/analysis/burn-rate.ts); every
 * count it reads is an activity result in the history, every alert a notify call with its numbers.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  executeChild,
  getExternalWorkflowHandle,
  log,
  ParentClosePolicy,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { MetricsSnapshot } from '../serving/metrics/source';
import type { DriftCounts, DriftVerdict } from '../activities/analysis/drift';
import type { BurnSettings, WindowCounts } from '../activities/analysis/burn-rate';
import type { WatchLookResult } from '../activities/watch';
import { formatDuration } from '../specs/duration';
import { quick, run } from './activity-calls';
import {
  pauseSignal,
  promotionWorkflowId,
  resumeSignal,
  rollbackSignal,
  rollbackWorkflowId,
  type RollbackWorkflowInput,
} from './api';
import { variantName } from './deployments';
import { rollbackWorkflow } from './rollback';
import {
  WATCH_ACTOR,
  watchStatusQuery,
  type WatchAlert,
  type WatchInput,
  type WatchOutcome,
  type WatchResult,
  type WatchState,
  type WatchStatus,
} from './watch-api';

/** Alerts kept in the state (and shown); older ones stay in the history. */
const KEPT_ALERTS = 50;

class WatchEnded extends Error {
  constructor(
    readonly outcome: WatchOutcome,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export async function watchWorkflow(input: WatchInput): Promise<WatchResult> {
  const { spec, version } = input;
  const model = spec.name;
  const w = spec.watch;
  const state: WatchState = input.resume ?? {
    startedAt: Date.now(),
    samples: [],
    total: { requests: 0, errors: 0, slow: 0 },
    active: [],
    alerts: [],
    paused: false,
    looks: 0,
    driftWindows: 0,
  };
  const endsAt = state.startedAt + w.duration;
  const settings: BurnSettings = {
    errorBudget: spec.slos.errorRate,
    latencyBudget: 1 - w.latencyTarget,
    page: w.page,
    ticket: w.ticket,
    minRequests: spec.slos.minRequests,
  };
  const windowLengths = [...new Set([...w.page, ...w.ticket].flatMap((a) => [a.long, a.short]))].sort(
    (a, b) => a - b,
  );
  const longest = windowLengths[windowLengths.length - 1] ?? 0;
  let outcome: { outcome: WatchOutcome; reason: string } | undefined;

  const details = (extra?: string): void => {
    const left = state.budgetLeft;
    setCurrentDetails(
      [
        `**${model}** v${version} — watch until ${new Date(endsAt).toISOString()}${state.paused ? ' (PAUSED: alerts notify only)' : ''}`,
        left
          ? `budget left: errors ${Math.round(left.errors * 100)}%, latency ${Math.round(left.latency * 100)}%`
          : '',
        state.drift?.last ? `drift: ${state.drift.last.reason}` : '',
        ...state.alerts.slice(-3).map((a) => `${a.kind}: ${a.reason}`),
        extra ?? '',
      ]
        .filter(Boolean)
        .join('\n\n'),
    );
  };

  setHandler(pauseSignal, (b) => {
    state.paused = true;
    state.pauseReason = `paused by ${b?.by ?? 'unknown'}${b?.reason ? `: ${b.reason}` : ''}: alerts notify, nothing acts`;
    details();
  });
  setHandler(resumeSignal, () => {
    state.paused = false;
    state.pauseReason = undefined;
    details();
  });
  setHandler(rollbackSignal, (r) => {
    state.rollbackRequest = { by: r?.by ?? 'unknown', reason: r?.reason ?? 'no reason given' };
  });
  setHandler(watchStatusQuery, (): WatchStatus => ({
    model,
    version,
    previousVersion: input.previousVersion,
    startedAt: new Date(state.startedAt).toISOString(),
    endsAt: new Date(endsAt).toISOString(),
    ...(input.holdUntil ? { holdUntil: new Date(input.holdUntil).toISOString() } : {}),
    paused: state.paused,
    pauseReason: state.pauseReason,
    looks: state.looks,
    driftWindows: state.driftWindows,
    total: state.total,
    budgetLeft: state.budgetLeft,
    windows: state.windows,
    drift: state.drift ? { last: state.drift.last, unavailable: state.drift.unavailable } : undefined,
    alerts: state.alerts,
    outcome: outcome?.outcome,
    outcomeReason: outcome?.reason,
  }));

  const notify = (event: string, message: string, detailsOut: Record<string, unknown>) =>
    run('notify', `${event}: ${message.slice(0, 120)}`, quick, {
      model,
      version,
      event,
      message,
      details: detailsOut,
    });

  const raise = async (alert: WatchAlert, event: 'watch_alert' | 'drift'): Promise<void> => {
    state.alerts.push(alert);
    if (state.alerts.length > KEPT_ALERTS) state.alerts.splice(0, state.alerts.length - KEPT_ALERTS);
    log.warn(`watch ${alert.kind}: ${alert.reason}`);
    await notify(event, alert.reason, {
      kind: alert.kind,
      ...(alert.burn ? { burn: alert.burn } : {}),
      ...(alert.drift ? { drift: alert.drift } : {}),
      action: alert.action,
    });
    details();
  };

  /** Back to the previous version: at once while it still runs, else by the rollback workflow. */
  const rollBack = async (reason: string): Promise<never> => {
    const prev = input.previousVersion;
    if (!prev) throw new WatchEnded('stopped', `${reason}; no previous version to roll back to`);
    if (input.holdUntil !== undefined && Date.now() < input.holdUntil) {
      try {
        await getExternalWorkflowHandle(promotionWorkflowId(model)).signal(rollbackSignal, {
          by: WATCH_ACTOR,
          reason,
        });
        throw new WatchEnded(
          'rolled_back',
          `${reason}; previous v${prev} still ran: the promotion swapped back`,
        );
      } catch (err) {
        if (err instanceof WatchEnded) throw err;
        log.warn('the promotion could not take the rollback; redeploying the previous version', {
          error: String(err),
        });
      }
    }
    const rollback: RollbackWorkflowInput = {
      model,
      by: WATCH_ACTOR,
      reason,
      toVersion: prev,
      serving: spec.serving,
      unitHeader: spec.experiment.unitHeader,
    };
    await executeChild(rollbackWorkflow, {
      workflowId: rollbackWorkflowId(model),
      args: [rollback],
      parentClosePolicy: ParentClosePolicy.TERMINATE,
    });
    throw new WatchEnded('rolled_back', `${reason}; v${prev} redeployed and serving`);
  };

  const driftOn = w.drift.enabled;
  const thresholds = {
    notice: w.drift.notice,
    act: w.drift.act,
    ksAlpha: w.drift.ksAlpha,
    minSamples: w.drift.minSamples,
  };

  const onDrift = async (verdict: DriftVerdict): Promise<void> => {
    state.drift!.last = verdict;
    if (verdict.level === 'stable') return;
    const acting = verdict.level === 'act';
    // Paused: every alert is notified, nothing acts. A retrain is asked for once per watch.
    const action = !acting
      ? 'notify'
      : state.paused
        ? 'notify (paused)'
        : w.drift.action === 'retrain' && state.retrainRequested
          ? `notify (retrain requested at ${state.retrainRequested})`
          : w.drift.action;
    await raise(
      {
        at: new Date().toISOString(),
        kind: acting ? 'drift' : 'drift_notice',
        reason: verdict.reason,
        drift: verdict,
        action,
      },
      'drift',
    );
    if (action === 'retrain' && w.drift.webhook) {
      await run('retrainWebhook', `retrain request: ${verdict.features[0]?.feature ?? ''}`, quick, {
        url: w.drift.webhook,
        model,
        version,
        verdict,
      });
      state.retrainRequested = new Date().toISOString();
    } else if (action === 'rollback') {
      await rollBack(`automatic rollback after graduation: ${verdict.reason}`);
    }
  };

  const look = async (): Promise<void> => {
    const now = Date.now();
    const d = state.drift;
    const judge = driftOn && !!d?.since && now - d.windowStart >= w.drift.window;
    // This look's counts join every window in the activity, which judges the alerts.
    const windows: WindowCounts[] = windowLengths.map((ms) => {
      const c: WindowCounts = { windowMs: ms, requests: 0, errors: 0, slow: 0 };
      for (const [at, n, e, sl] of state.samples)
        if (at > now - ms) {
          c.requests += n;
          c.errors += e;
          c.slow += sl;
        }
      return c;
    });
    const r: WatchLookResult = await run('watchLook', `watch v${version}: look ${state.looks + 1}`, quick, {
      model,
      version,
      variant: variantName(version),
      previous: state.lastSnapshot as MetricsSnapshot | undefined,
      p99LatencyMs: spec.slos.p99LatencyMs,
      burn: { windows, total: { windowMs: 0, ...state.total }, settings },
      ...(driftOn ? { drift: { since: d?.since as DriftCounts | undefined, judge, thresholds } } : {}),
    });
    state.looks++;
    state.lastSnapshot = r.snapshot;
    if (r.production !== undefined && r.production !== version)
      throw new WatchEnded('superseded', `v${r.production} is production now; the watch of v${version} ends`);
    if (!r.gap) {
      state.samples.push([now, r.sample.requests, r.sample.errors, r.sample.slow]);
      state.total.requests += r.sample.requests;
      state.total.errors += r.sample.errors;
      state.total.slow += r.sample.slow;
    }
    const burn = r.burn;
    state.samples = state.samples.filter(([at]) => at > now - longest);
    state.windows = burn.windows;
    state.budgetLeft = burn.budgetLeft;
    const firing = new Set<string>();
    for (const a of burn.firing) {
      const key = `${a.severity}:${a.sli}:${a.factor}:${a.long.windowMs}:${a.short.windowMs}`;
      firing.add(key);
      if (state.active.includes(key)) continue;
      const action =
        a.severity === 'ticket'
          ? 'notify'
          : state.paused
            ? 'notify (paused)'
            : input.holdUntil !== undefined && now < input.holdUntil
              ? 'rollback (previous still runs)'
              : w.onPage;
      await raise(
        { at: new Date(now).toISOString(), kind: a.severity, reason: a.reason, burn: a, action },
        'watch_alert',
      );
    }
    state.active = [...firing];
    const page = burn.firing.find((a) => a.severity === 'page');
    const inHold = input.holdUntil !== undefined && now < input.holdUntil;
    if (page && !state.paused && (inHold || w.onPage === 'rollback')) {
      await rollBack(`automatic rollback after graduation: ${page.reason}`);
    }
    if (driftOn && r.drift) {
      if (r.drift.unavailable)
        state.drift = { ...(d ?? { windowStart: now }), unavailable: r.drift.unavailable };
      else if (!d?.since || r.drift.reset)
        state.drift = { since: r.drift.counts, windowStart: now, last: d?.last };
      else if (r.drift.verdict) {
        state.drift = { ...d, unavailable: undefined };
        // Too few rows: the window stays open until it has enough.
        if (r.drift.verdict.result !== 'inconclusive') {
          state.drift = { since: r.drift.counts, windowStart: now, last: r.drift.verdict };
          state.driftWindows++;
          await onDrift(r.drift.verdict);
        } else state.drift.last = r.drift.verdict;
      }
    }
    details();
  };

  log.info(
    `watching v${version} for ${formatDuration(w.duration)}: pages at ${w.page.map((a) => `${a.factor}× over ${formatDuration(a.long)}/${formatDuration(a.short)}`).join(', ')}`,
  );
  details();
  try {
    for (;;) {
      const request = state.rollbackRequest;
      if (request) await rollBack(`rollback during the watch by ${request.by}: ${request.reason}`);
      const left = endsAt - Date.now();
      if (left <= 0) break;
      await condition(() => !!state.rollbackRequest, Math.min(w.interval, left));
      if (state.rollbackRequest) continue;
      await look();
      const info = workflowInfo();
      if (info.continueAsNewSuggested || info.historyLength > (input.historyLimit ?? 3000)) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof watchWorkflow>({ ...input, resume: state });
      }
    }
    const pages = state.alerts.filter((a) => a.kind === 'page').length;
    outcome = {
      outcome: 'completed',
      reason: `watched v${version} for ${formatDuration(w.duration)}: ${state.alerts.length} alerts (${pages} pages), ${state.total.requests} requests, budget left errors ${Math.round((state.budgetLeft?.errors ?? 1) * 100)}%`,
    };
  } catch (err) {
    if (!(err instanceof WatchEnded)) throw err;
    outcome = { outcome: err.outcome, reason: err.reason };
  }
  details(`outcome: ${outcome.outcome} — ${outcome.reason}`);
  if (outcome.outcome !== 'superseded')
    await notify(`watch_${outcome.outcome}`, outcome.reason, { alerts: state.alerts.length });
  return {
    model,
    version,
    outcome: outcome.outcome,
    reason: outcome.reason,
    alerts: state.alerts,
    looks: state.looks,
    driftWindows: state.driftWindows,
  };
}
