/**
 * The audit of one promotion, built from its workflow event histories alone (one per run: a
 * promotion continues-as-new in long phases). A pure function over events: no client, no clock,
 * so recorded histories test it and the same history always gives the same report.
 *
 * The JSON shape is a public, versioned contract: docs/audit-schema.md and audit/report.schema.json.
 * Add fields freely; renaming or removing one means schemaVersion 2.
 */
import type { IntervalAnalysis, PreparedPromotion, SetTrafficInput } from '../activities/contracts';
import type { Lineage } from '../registry/registry';
import type { PromotionInput, PromotionResult, Verdict } from '../workflows/api';
import {
  eventId,
  eventTime,
  failureDetails,
  failureMessage,
  first,
  isRecord,
  searchAttributes,
  type HistoryEvent,
} from './events';

export const AUDIT_SCHEMA_VERSION = 1;

export interface RunHistory {
  runId: string;
  events: HistoryEvent[];
}

export interface ReplayCheck {
  /** False when no check was run (e.g. --no-replay); then `ok` says nothing. */
  checked: boolean;
  ok: boolean;
  /** Which workflow code the histories were replayed against. */
  against?: string;
  /** Per run: the nondeterminism or other error, when one failed. */
  errors: { runId: string; error: string }[];
}

export interface AuditRun {
  runId: string;
  startedAt: string;
  closedAt?: string;
  /** How the run closed: completed, failed, cancelled, terminated, timed_out, continued_as_new, or running. */
  closedAs: string;
  events: number;
}

export interface AuditApproval {
  at: string;
  decision: 'approve' | 'reject';
  /** `update` (CLI: the caller got the verdict) or `signal` (Temporal UI, scripts). */
  via: 'update' | 'signal';
  /** The name in the payload. */
  approver: string | null;
  comment?: string;
  reason?: string;
  /** The client identity the server recorded with the request ("alice@host (runway cli)"). */
  identity: string | null;
  accepted: boolean;
  /** The workflow's answer (updates) or why it ignored the signal. */
  verdict?: string;
  payload: unknown;
}

export interface AuditAnalysis {
  at: string;
  phase: string;
  /** The router restarted or a series vanished: this window had missing data. */
  gap: boolean;
  guard?: Verdict;
  comparison?: Verdict;
  experiment?: Verdict;
}

export interface AuditTrafficChange {
  at: string;
  /** Stage the workflow was in (RunwayStage at the time). */
  stage: string | null;
  reason: string;
  weights: Record<string, number>;
  mirror?: { variant: string; percent: number; tolerance?: number };
  /** Whether the router accepted it (the setTraffic activity completed). */
  applied: boolean;
  error?: string;
  /** The analyses since the previous traffic change: the numbers this change was decided on. */
  basedOn: AuditAnalysis[];
}

export interface AuditManualAction {
  at: string;
  action: string;
  by: string | null;
  reason?: string;
  identity: string | null;
  payload: unknown;
}

export interface AuditPause {
  at: string;
  /** `manual` (a pause signal) or `inconclusive` (the workflow waited for a human). */
  kind: 'manual' | 'inconclusive';
  by: string | null;
  reason: string;
  resumedAt?: string;
  resumedBy?: string | null;
}

export interface AuditRollback {
  at: string;
  /** `manual` when a rollback signal asked for it, else `automatic` (SLO guard, failure, rejection cleanup). */
  kind: 'manual' | 'automatic';
  requestedBy?: string | null;
  reason: string;
}

export interface AuditActivityFailure {
  at: string;
  activity: string;
  attempt: number;
  error: string;
}

/** One webhook's answer to a notification, as the notify activity returned it. */
export interface AuditDelivery {
  webhook: string;
  ok: boolean;
  attempts: number;
  status?: number;
  error?: string;
}

export interface PromotionAudit {
  workflowId: string;
  model: string | null;
  version: string | null;
  runs: AuditRun[];
  trigger: {
    at: string;
    /** `triggeredBy` of the input: `--as`, RUNWAY_USER or the OS user of whoever ran `runway promote`. */
    triggeredBy: string | null;
    /** Client identity recorded by the server on WorkflowExecutionStarted. */
    identity: string | null;
    /** CI metadata: commit, pipeline URL, spec file... */
    metadata: Record<string, string>;
    taskQueue: string | null;
  };
  spec: {
    sha256: string | null;
    owner: string | null;
    approvalsRequired: number | null;
    approvers: string[];
  };
  artifacts: {
    candidate?: { version: string; sha256: string };
    baseline?: { version: string; sha256: string };
  };
  /** The candidate's training run (params, metrics, datasets, commit), as recorded at prepare time. */
  lineage?: Lineage;
  /** Why the registry could not give the lineage then. */
  lineageError?: string;
  evaluation?: { at: string; verdict: Verdict };
  integration?: { at: string; verdict: Verdict };
  approvals: AuditApproval[];
  stages: { at: string; stage: string }[];
  trafficChanges: AuditTrafficChange[];
  analyses: AuditAnalysis[];
  pauses: AuditPause[];
  manualActions: AuditManualAction[];
  rollbacks: AuditRollback[];
  /** `deliveries`: what each configured webhook answered (the notify activity's result). */
  notifications: { at: string; event: string; message: string; deliveries?: AuditDelivery[] }[];
  activityFailures: AuditActivityFailure[];
  outcome: {
    /** How the last run closed (see AuditRun.closedAs). */
    status: string;
    at?: string;
    /** The promotion's outcome: promoted, rejected, rolled_back, expired, failed, cancelled. */
    outcome: string | null;
    reason: string | null;
  };
  replay: ReplayCheck;
}

export interface AuditDocument {
  schemaVersion: typeof AUDIT_SCHEMA_VERSION;
  kind: 'runway.audit';
  generatedAt: string;
  model: string;
  promotions: PromotionAudit[];
}

export interface ListEntry {
  /** `rollback`: a `runway rollback` with no promotion in flight (rollbackWorkflow). */
  kind: 'promotion' | 'rollback';
  workflowId: string;
  runId: string;
  version: string | null;
  status: string;
  stage: string | null;
  outcome: string | null;
  startedAt: string | null;
  closedAt: string | null;
}

export interface AuditListDocument {
  schemaVersion: typeof AUDIT_SCHEMA_VERSION;
  kind: 'runway.audit.list';
  generatedAt: string;
  model: string;
  promotions: ListEntry[];
}

const NOT_CHECKED: ReplayCheck = { checked: false, ok: false, errors: [] };

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const asVerdict = (v: unknown): Verdict | undefined =>
  isRecord(v) && typeof v.check === 'string' && typeof v.result === 'string' ? (v as Verdict) : undefined;

/** An approval or rejection as sent (signal or update); whether it counted is filled in later. */
function approvalEntry(
  at: string,
  decision: 'approve' | 'reject',
  via: AuditApproval['via'],
  identity: string | null,
  payload: unknown,
): AuditApproval {
  const p = isRecord(payload) ? payload : {};
  const entry: AuditApproval = {
    at,
    decision,
    via,
    approver: str(p.approver),
    identity,
    accepted: true,
    payload,
  };
  if (typeof p.comment === 'string') entry.comment = p.comment;
  if (typeof p.reason === 'string') entry.reason = p.reason;
  return entry;
}

/** Drops the raw router counters from an analysis: large, and the verdicts carry the numbers. */
function analysisOf(at: string, phase: string, r: unknown): AuditAnalysis {
  const a = (isRecord(r) ? r : {}) as Partial<IntervalAnalysis>;
  const out: AuditAnalysis = { at, phase, gap: a.gap === true };
  const guard = asVerdict(a.guard);
  const comparison = asVerdict(a.comparison);
  const experiment = asVerdict(a.experiment);
  if (guard) out.guard = guard;
  if (comparison) out.comparison = comparison;
  if (experiment) out.experiment = experiment;
  return out;
}

function closedAs(e: HistoryEvent): string | null {
  if (e.workflowExecutionCompletedEventAttributes) return 'completed';
  if (e.workflowExecutionFailedEventAttributes) return 'failed';
  if (e.workflowExecutionCanceledEventAttributes) return 'cancelled';
  if (e.workflowExecutionTerminatedEventAttributes) return 'terminated';
  if (e.workflowExecutionTimedOutEventAttributes) return 'timed_out';
  if (e.workflowExecutionContinuedAsNewEventAttributes) return 'continued_as_new';
  return null;
}

/**
 * Builds the audit of one promotion from its runs, oldest first. `replay` is the result of
 * replaying the same histories (the caller runs it: replay needs a worker runtime).
 */
export function buildPromotionAudit(
  workflowId: string,
  runs: RunHistory[],
  replay: ReplayCheck = NOT_CHECKED,
): PromotionAudit {
  const audit: PromotionAudit = {
    workflowId,
    model: null,
    version: null,
    runs: [],
    trigger: { at: '', triggeredBy: null, identity: null, metadata: {}, taskQueue: null },
    spec: { sha256: null, owner: null, approvalsRequired: null, approvers: [] },
    artifacts: {},
    approvals: [],
    stages: [],
    trafficChanges: [],
    analyses: [],
    pauses: [],
    manualActions: [],
    rollbacks: [],
    notifications: [],
    activityFailures: [],
    outcome: { status: 'running', outcome: null, reason: null },
    replay,
  };
  let stage: string | null = null;
  let analysesSinceChange: AuditAnalysis[] = [];
  let lastRollbackSignal: { by: string | null; at: string } | undefined;

  for (const [runIndex, run] of runs.entries()) {
    const scheduled = new Map<number, { type: string; input: unknown; at: string }>();
    /** A notify activity's scheduled event → its entry in audit.notifications. */
    const notificationAt = new Map<number, number>();
    const updates = new Map<string, AuditApproval>();
    const attempts = new Map<number, number>();
    const auditRun: AuditRun = {
      runId: run.runId,
      startedAt: run.events[0] ? eventTime(run.events[0]) : '',
      closedAs: 'running',
      events: run.events.length,
    };
    audit.runs.push(auditRun);

    for (const e of run.events) {
      const at = eventTime(e);

      const started = e.workflowExecutionStartedEventAttributes;
      if (started) {
        const sa = searchAttributes(started.searchAttributes?.indexedFields);
        if (typeof sa.RunwayStage === 'string') stage = sa.RunwayStage;
        if (runIndex !== 0) continue; // later runs carry the same input (plus resume state)
        const input = (first(started.input) ?? {}) as Partial<PromotionInput>;
        audit.model = str(input.spec?.name) ?? str(sa.RunwayModel);
        audit.version = str(input.version) ?? str(sa.RunwayVersion);
        audit.trigger = {
          at,
          triggeredBy: str(input.triggeredBy),
          identity: started.identity || null,
          metadata: isRecord(input.metadata)
            ? Object.fromEntries(Object.entries(input.metadata).map(([k, v]) => [k, String(v)]))
            : {},
          taskQueue: started.taskQueue?.name ?? null,
        };
        audit.spec = {
          sha256: str(input.specSha256),
          owner: str(input.spec?.owner),
          approvalsRequired:
            typeof input.spec?.approval?.required === 'number' ? input.spec.approval.required : null,
          approvers: Array.isArray(input.spec?.approval?.approvers)
            ? input.spec.approval.approvers.filter((a): a is string => typeof a === 'string')
            : [],
        };
        continue;
      }

      const upsert = e.upsertWorkflowSearchAttributesEventAttributes;
      if (upsert) {
        const sa = searchAttributes(upsert.searchAttributes?.indexedFields);
        if (typeof sa.RunwayStage === 'string' && sa.RunwayStage !== stage) {
          stage = sa.RunwayStage;
          audit.stages.push({ at, stage });
        }
        continue;
      }

      const sched = e.activityTaskScheduledEventAttributes;
      if (sched) {
        const type = sched.activityType?.name ?? '?';
        const input = first(sched.input);
        scheduled.set(eventId(e), { type, input, at });
        if (type === 'notify' && isRecord(input) && typeof input.event === 'string') {
          notificationAt.set(eventId(e), audit.notifications.length);
          audit.notifications.push({ at, event: input.event, message: String(input.message ?? '') });
          const ignored = /^(approval|rejection)_ignored$/.exec(input.event);
          if (ignored) {
            const payload = isRecord(input.details) ? input.details.payload : undefined;
            const p = isRecord(payload) ? payload : {};
            const entry: AuditApproval = {
              at,
              decision: ignored[1] === 'approval' ? 'approve' : 'reject',
              via: 'signal',
              approver: str(p.approver),
              identity: null,
              accepted: false,
              verdict: String(input.message ?? ''),
              payload,
            };
            if (typeof p.comment === 'string') entry.comment = p.comment;
            if (typeof p.reason === 'string') entry.reason = p.reason;
            // The signal it answers was recorded just before with its identity: merge the two.
            const signal = [...audit.approvals]
              .reverse()
              .find(
                (a) =>
                  a.via === 'signal' &&
                  a.accepted &&
                  a.decision === entry.decision &&
                  JSON.stringify(a.payload) === JSON.stringify(payload),
              );
            if (signal) {
              signal.accepted = false;
              signal.verdict = entry.verdict;
            } else audit.approvals.push(entry);
          }
          if (input.event === 'paused_inconclusive') {
            audit.pauses.push({ at, kind: 'inconclusive', by: null, reason: String(input.message ?? '') });
          }
        }
        continue;
      }

      const done = e.activityTaskCompletedEventAttributes;
      if (done) {
        const s = scheduled.get(Number(done.scheduledEventId ?? 0));
        if (!s) continue;
        const result = first(done.result);
        const notified = notificationAt.get(Number(done.scheduledEventId ?? 0));
        if (
          s.type === 'notify' &&
          notified !== undefined &&
          isRecord(result) &&
          Array.isArray(result.deliveries)
        ) {
          audit.notifications[notified]!.deliveries = result.deliveries.filter(isRecord).map((d) => ({
            webhook: String(d.webhook),
            ok: d.ok === true,
            attempts: Number(d.attempts ?? 0),
            ...(typeof d.status === 'number' ? { status: d.status } : {}),
            ...(typeof d.error === 'string' ? { error: d.error } : {}),
          }));
        }
        if (s.type === 'prepareCandidate' && isRecord(result)) {
          const p = result as unknown as PreparedPromotion;
          if (p.candidate)
            audit.artifacts.candidate = { version: p.candidate.version, sha256: p.candidate.sha256 };
          if (p.baseline)
            audit.artifacts.baseline = { version: p.baseline.version, sha256: p.baseline.sha256 };
          if (p.lineage) audit.lineage = p.lineage;
          if (p.lineageError) audit.lineageError = p.lineageError;
        } else if (s.type === 'evaluate') {
          const v = asVerdict(result);
          if (v) audit.evaluation = { at, verdict: v };
        } else if (s.type === 'integrationTest') {
          const v = asVerdict(result);
          if (v) audit.integration = { at, verdict: v };
        } else if (s.type === 'analyzeInterval') {
          const phase =
            isRecord(s.input) && typeof s.input.phase === 'string' ? s.input.phase : (stage ?? '?');
          const a = analysisOf(at, phase, result);
          audit.analyses.push(a);
          analysesSinceChange.push(a);
        } else if (s.type === 'setTraffic') {
          audit.trafficChanges.push(trafficChange(at, stage, s.input, analysesSinceChange));
          analysesSinceChange = [];
        }
        continue;
      }

      const failed = e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
      if (failed) {
        const s = scheduled.get(Number(failed.scheduledEventId ?? 0));
        const error = failureMessage(failed.failure);
        audit.activityFailures.push({
          at,
          activity: s?.type ?? '?',
          attempt: attempts.get(Number(failed.scheduledEventId ?? 0)) ?? 1,
          error,
        });
        if (s?.type === 'setTraffic') {
          const change = trafficChange(at, stage, s.input, analysesSinceChange);
          change.applied = false;
          change.error = error;
          audit.trafficChanges.push(change);
        }
        continue;
      }

      const startedActivity = e.activityTaskStartedEventAttributes;
      if (startedActivity) {
        // Retries are not events: the started event of the last attempt carries the count.
        attempts.set(Number(startedActivity.scheduledEventId ?? 0), Number(startedActivity.attempt ?? 1));
        continue;
      }

      const signal = e.workflowExecutionSignaledEventAttributes;
      if (signal) {
        const name = signal.signalName ?? '?';
        const payload = first(signal.input);
        const p = isRecord(payload) ? payload : {};
        const identity = signal.identity || null;
        if (name === 'approve' || name === 'reject') {
          audit.approvals.push(approvalEntry(at, name, 'signal', identity, payload));
          continue;
        }
        const action: AuditManualAction = { at, action: name, by: str(p.by), identity, payload };
        if (typeof p.reason === 'string') action.reason = p.reason;
        audit.manualActions.push(action);
        if (name === 'pause') {
          audit.pauses.push({
            at,
            kind: 'manual',
            by: action.by,
            reason: action.reason ?? `paused by ${action.by ?? 'unknown'}`,
          });
        } else if (name === 'resume') {
          const open = [...audit.pauses].reverse().find((x) => x.resumedAt === undefined);
          if (open) {
            open.resumedAt = at;
            open.resumedBy = action.by;
          }
        } else if (name === 'rollback') {
          lastRollbackSignal = { by: action.by, at };
        }
        continue;
      }

      const accepted = e.workflowExecutionUpdateAcceptedEventAttributes;
      if (accepted) {
        const req = accepted.acceptedRequest;
        const name = req?.input?.name ?? '?';
        const payload = first(req?.input?.args);
        const p = isRecord(payload) ? payload : {};
        const identity = req?.meta?.identity || null;
        if (name === 'approve' || name === 'reject') {
          const entry = approvalEntry(at, name, 'update', identity, payload);
          audit.approvals.push(entry);
          if (req?.meta?.updateId) updates.set(req.meta.updateId, entry);
        } else {
          audit.manualActions.push({ at, action: name, by: str(p.by), identity, payload });
        }
        continue;
      }

      const completedUpdate = e.workflowExecutionUpdateCompletedEventAttributes;
      if (completedUpdate) {
        const entry = updates.get(completedUpdate.meta?.updateId ?? '');
        if (!entry) continue;
        const o = completedUpdate.outcome;
        if (o?.failure) {
          entry.accepted = false;
          entry.verdict = failureMessage(o.failure);
        } else {
          const verdict = first(o?.success);
          if (isRecord(verdict) && typeof verdict.reason === 'string') entry.verdict = verdict.reason;
        }
        continue;
      }

      const closed = closedAs(e);
      if (closed) {
        auditRun.closedAs = closed;
        auditRun.closedAt = at;
        if (closed === 'continued_as_new') continue;
        audit.outcome = { status: closed, at, outcome: null, reason: null };
        let result: unknown;
        if (e.workflowExecutionCompletedEventAttributes) {
          result = first(e.workflowExecutionCompletedEventAttributes.result);
        } else if (e.workflowExecutionFailedEventAttributes) {
          const f = e.workflowExecutionFailedEventAttributes.failure;
          result = failureDetails(f) ?? { outcome: 'failed', reason: failureMessage(f) };
        } else if (e.workflowExecutionTerminatedEventAttributes) {
          const t = e.workflowExecutionTerminatedEventAttributes;
          result = {
            outcome: 'terminated',
            reason: `terminated${t.identity ? ` by ${t.identity}` : ''}: ${t.reason ?? ''}`,
          };
        } else if (e.workflowExecutionTimedOutEventAttributes) {
          result = { outcome: 'failed', reason: 'the workflow execution timed out' };
        } else {
          result = { outcome: 'cancelled', reason: 'cancelled' };
        }
        const r = (isRecord(result) ? result : {}) as Partial<PromotionResult>;
        audit.outcome.outcome = str(r.outcome);
        audit.outcome.reason = str(r.reason);
      }
    }
  }

  // Rollbacks: every traffic change back to the baseline, and what asked for it.
  for (const c of audit.trafficChanges) {
    if (!/^rollback/.test(c.reason)) continue;
    const manual = !!lastRollbackSignal && /manual rollback by|rollback after graduation by/.test(c.reason);
    audit.rollbacks.push({
      at: c.at,
      kind: manual ? 'manual' : 'automatic',
      ...(manual ? { requestedBy: lastRollbackSignal?.by ?? null } : {}),
      reason: c.reason.replace(/^rollback: /, ''),
    });
  }
  return audit;
}

function trafficChange(
  at: string,
  stage: string | null,
  input: unknown,
  basedOn: AuditAnalysis[],
): AuditTrafficChange {
  const i = (isRecord(input) ? input : {}) as Partial<SetTrafficInput>;
  const change: AuditTrafficChange = {
    at,
    stage,
    reason: typeof i.reason === 'string' ? i.reason : '',
    weights: Object.fromEntries((Array.isArray(i.variants) ? i.variants : []).map((v) => [v.name, v.weight])),
    applied: true,
    basedOn,
  };
  if (i.mirror && i.mirror.percent > 0) change.mirror = i.mirror;
  return change;
}

export function auditDocument(model: string, promotions: PromotionAudit[], generatedAt: Date): AuditDocument {
  return {
    schemaVersion: AUDIT_SCHEMA_VERSION,
    kind: 'runway.audit',
    generatedAt: generatedAt.toISOString(),
    model,
    promotions,
  };
}
