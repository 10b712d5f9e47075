/**
 * The audit of one promotion, built from its workflow event histories alone (one per run: a
 * promotion continues-as-new in long phases). A pure function over events: no client, no clock,
 * so recorded histories test it and the same history always gives the same report.
 *
 * The JSON shape is a public, versioned contract: docs/audit-schema.md and audit/report.schema.json.
 * Add fields freely; renaming or removing one means a new schemaVersion. Version 2: every
 * decision (approvals, the start, manual actions) carries `signature`.
 */
import type {
  DeployInput,
  IntervalAnalysis,
  PreparedPromotion,
  SetTrafficInput,
  WindowSummary,
} from '../activities/contracts';
import {
  promotionCost,
  replicaPrice,
  type CostSpan,
  type CostVerdict,
  type Prices,
  type PromotionCost,
  type ReplicaPrice,
} from '../common/cost';
import type { WatchAudit } from './watch';
import type { Lineage } from '../registry/registry';
import type { PolicyInForce, PolicyViolation } from '../specs/policy';
import { stepTexts, strategyOf } from '../specs/strategy';
import type { PromotionInput, PromotionResult, Verdict } from '../workflows/api';
import { verifyDecision, type Decision, type DecisionContext, type Keyring } from '../common/signing';
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

export const AUDIT_SCHEMA_VERSION = 2;

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

/**
 * A decision's signature, verified again by the audit against the keyring it is given.
 * `verified`: the signature holds for this promotion and the workflow counted it; `unsigned`: no
 * signature (approval.identity payload, or a brake sent without a key); `refused`: the workflow
 * refused it or the signature does not hold (the reason says which); `unverifiable`: signed, but
 * the audit was given no keyring.
 */
export interface AuditSignature {
  status: 'verified' | 'unsigned' | 'refused' | 'unverifiable';
  fingerprint?: string;
  /** The keyring name of the key. */
  signer?: string;
  reason?: string;
  /** The key was revoked after the decision (ISO): "signed by a key revoked on …". */
  revokedOn?: string;
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
  signature: AuditSignature;
}

export interface AuditAnalysis {
  at: string;
  phase: string;
  /** The router restarted or a series vanished: this window had missing data. */
  gap: boolean;
  guard?: Verdict;
  comparison?: Verdict;
  experiment?: Verdict;
  /** Cost per 1,000 inferences of each variant at this look (when the platform had prices). */
  cost?: CostVerdict;
  /** Each variant's window in brief (recorded since the visual report; absent before). */
  variants?: Record<string, WindowSummary>;
}

export interface AuditTrafficChange {
  at: string;
  /** Stage the workflow was in (RunwayStage at the time). */
  stage: string | null;
  reason: string;
  weights: Record<string, number>;
  mirror?: { variant: string; percent: number; tolerance?: number };
  /** Requests with this header went to `variant` whatever the weights (a blue-green preview). */
  preview?: { variant: string; header: string; value?: string };
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
  /** `signal` (Temporal UI, scripts) or `update` (the CLI: the caller got the verdict). */
  via: 'signal' | 'update';
  /** False when the workflow refused it (who may not, or not now); then `verdict` says why. */
  accepted: boolean;
  /** The workflow's answer (updates) or why it ignored the signal. */
  verdict?: string;
  signature: AuditSignature;
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
    /** The starter's signed `promote` decision. */
    signature: AuditSignature;
  };
  spec: {
    sha256: string | null;
    owner: string | null;
    approvalsRequired: number | null;
    approvers: string[];
    /** approval.identity: `payload` (names as sent) or `signed`. */
    identity: 'payload' | 'signed';
    /** canary, linear or blue-green (a spec from before strategies: canary). */
    strategy: string;
    /** The traffic steps the strategy walks, as `weight%/pause` (e.g. `20%/5m`), or blue-green's phases. */
    steps: string[];
  };
  artifacts: {
    candidate?: { version: string; sha256: string };
    baseline?: { version: string; sha256: string };
  };
  /**
   * The platform policy in force, as the worker checked it before anything deployed; with the
   * violations when it refused the spec. Absent for promotions started before policies.
   */
  policy?: PolicyInForce & { violations?: PolicyViolation[] };
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
  /**
   * What the promotion itself cost: the candidate's replica-hours on staging, and in production
   * during shadow, canary and experiment, priced by the price its looks recorded (else today's).
   */
  cost: PromotionCost;
  outcome: {
    /** How the last run closed (see AuditRun.closedAs). */
    status: string;
    at?: string;
    /** The promotion's outcome: promoted, rejected, rolled_back, expired, failed, cancelled. */
    outcome: string | null;
    reason: string | null;
  };
  replay: ReplayCheck;
  /** The watch this promotion started at graduation (audit/watch.ts), when it has one. */
  watch?: WatchAudit;
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
const UNSIGNED: AuditSignature = { status: 'unsigned' };

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
    signature: UNSIGNED,
  };
  if (typeof p.comment === 'string') entry.comment = p.comment;
  if (typeof p.reason === 'string') entry.reason = p.reason;
  return entry;
}

/** The strategy and its steps as the recorded spec says (histories hold the parsed spec). */
function strategyOfInput(spec: unknown): { strategy: string; steps: string[] } {
  const named = isRecord(spec) && typeof spec.strategy === 'string' ? spec.strategy : 'canary';
  if (!isRecord(spec) || !isRecord(spec.canary) || !Array.isArray(spec.canary.steps))
    return { strategy: named, steps: [] };
  try {
    const parsed = spec as unknown as Parameters<typeof stepTexts>[0];
    return { strategy: strategyOf(parsed), steps: stepTexts(parsed) };
  } catch {
    return { strategy: named, steps: [] };
  }
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
  if (isRecord(a.cost) && a.cost.check === 'cost') out.cost = a.cost;
  if (isRecord(a.variants)) out.variants = a.variants;
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
  keyring?: Keyring,
  opts: { prices?: Prices } = {},
): PromotionAudit {
  const audit: PromotionAudit = {
    workflowId,
    model: null,
    version: null,
    runs: [],
    trigger: {
      at: '',
      triggeredBy: null,
      identity: null,
      metadata: {},
      taskQueue: null,
      signature: UNSIGNED,
    },
    spec: {
      sha256: null,
      owner: null,
      approvalsRequired: null,
      approvers: [],
      identity: 'payload',
      strategy: 'canary',
      steps: [],
    },
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
    cost: { phases: [], replicaHours: 0 },
    outcome: { status: 'running', outcome: null, reason: null },
    replay,
  };
  // For the promotion's own cost: when the candidate's deployments ran, and with how many replicas.
  const staging: { from?: string; to?: string; replicas: number } = { replicas: 0 };
  const candidateReplicas: { at: string; replicas: number }[] = [];
  let serving: DeployInput['serving'] | undefined;
  let lastAt = '';
  let stage: string | null = null;
  let analysesSinceChange: AuditAnalysis[] = [];
  let lastRollbackSignal: { by: string | null; at: string } | undefined;
  let signedStart: unknown;
  /** What each control changed in the audit, undone when the workflow refused it. */
  const undo = new Map<AuditManualAction, () => void>();

  /** A control as sent (signal or update), with its effect on pauses and rollbacks. */
  const manualAction = (
    at: string,
    name: string,
    via: AuditManualAction['via'],
    identity: string | null,
    payload: unknown,
  ): AuditManualAction => {
    const p = isRecord(payload) ? payload : {};
    const action: AuditManualAction = {
      at,
      action: name,
      by: str(p.by),
      identity,
      payload,
      via,
      accepted: true,
      signature: UNSIGNED,
    };
    if (typeof p.reason === 'string') action.reason = p.reason;
    audit.manualActions.push(action);
    if (name === 'pause') {
      const pause: AuditPause = {
        at,
        kind: 'manual',
        by: action.by,
        reason: action.reason ?? `paused by ${action.by ?? 'unknown'}`,
      };
      audit.pauses.push(pause);
      undo.set(action, () => audit.pauses.splice(audit.pauses.indexOf(pause), 1));
    } else if (name === 'resume') {
      const open = [...audit.pauses].reverse().find((x) => x.resumedAt === undefined);
      if (open) {
        open.resumedAt = at;
        open.resumedBy = action.by;
        undo.set(action, () => {
          delete open.resumedAt;
          delete open.resumedBy;
        });
      }
    } else if (name === 'rollback') {
      const before = lastRollbackSignal;
      lastRollbackSignal = { by: action.by, at };
      undo.set(action, () => (lastRollbackSignal = before));
    }
    return action;
  };
  const refuse = (action: AuditManualAction, verdict: string): void => {
    action.verdict = verdict;
    if (!action.accepted) return;
    action.accepted = false;
    undo.get(action)?.();
  };

  for (const [runIndex, run] of runs.entries()) {
    const scheduled = new Map<number, { type: string; input: unknown; at: string }>();
    /** A notify activity's scheduled event → its entry in audit.notifications. */
    const notificationAt = new Map<number, number>();
    const updates = new Map<string, AuditApproval>();
    const controlUpdates = new Map<string, AuditManualAction>();
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
      if (at) lastAt = at;

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
          signature: UNSIGNED,
        };
        signedStart = input.signedStart;
        audit.spec = {
          sha256: str(input.specSha256),
          owner: str(input.spec?.owner),
          approvalsRequired:
            typeof input.spec?.approval?.required === 'number' ? input.spec.approval.required : null,
          approvers: Array.isArray(input.spec?.approval?.approvers)
            ? input.spec.approval.approvers.filter((a): a is string => typeof a === 'string')
            : [],
          identity: input.spec?.approval?.identity === 'signed' ? 'signed' : 'payload',
          ...strategyOfInput(input.spec),
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
              signature: UNSIGNED,
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
          const control = /^(pause|resume|rollback|promoteFull)_ignored$/.exec(input.event);
          if (control) {
            const payload = isRecord(input.details) ? input.details.payload : undefined;
            const verdict = String(input.message ?? '');
            // The signal or update it answers was recorded just before: mark that one refused.
            const action = [...audit.manualActions]
              .reverse()
              .find(
                (m) =>
                  m.action === control[1] &&
                  m.accepted &&
                  JSON.stringify(m.payload) === JSON.stringify(payload),
              );
            if (action) refuse(action, verdict);
            else {
              const p = isRecord(payload) ? payload : {};
              audit.manualActions.push({
                at,
                action: control[1] as string,
                by: str(p.by),
                identity: null,
                payload,
                via: 'signal',
                accepted: false,
                verdict,
                signature: UNSIGNED,
              });
            }
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
          if (p.policy) audit.policy = p.policy;
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
          if (a.cost) candidateReplicas.push({ at, replicas: a.cost.candidate.replicas });
        } else if (s.type === 'setTraffic') {
          audit.trafficChanges.push(trafficChange(at, stage, s.input, analysesSinceChange));
          analysesSinceChange = [];
        } else if (s.type === 'deploy' && isRecord(s.input)) {
          const d = s.input as Partial<DeployInput>;
          if (d.version === audit.version && typeof d.replicas === 'number') {
            serving ??= d.serving;
            if (d.environment === 'staging') Object.assign(staging, { from: at, replicas: d.replicas });
            else if (d.environment === 'production') candidateReplicas.push({ at, replicas: d.replicas });
          }
        } else if (
          s.type === 'teardown' &&
          isRecord(s.input) &&
          typeof s.input.name === 'string' &&
          s.input.name.endsWith(`-v${audit.version ?? ''}-staging`)
        ) {
          staging.to = at;
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
        // A spec the platform policy refused: the policy and the violations are in the failure.
        const details = failureDetails(failed.failure);
        if (s?.type === 'prepareCandidate' && isRecord(details) && Array.isArray(details.matched)) {
          audit.policy = details as unknown as NonNullable<PromotionAudit['policy']>;
        }
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
        const identity = signal.identity || null;
        if (name === 'approve' || name === 'reject') {
          audit.approvals.push(approvalEntry(at, name, 'signal', identity, payload));
          continue;
        }
        manualAction(at, name, 'signal', identity, payload);
        continue;
      }

      const accepted = e.workflowExecutionUpdateAcceptedEventAttributes;
      if (accepted) {
        const req = accepted.acceptedRequest;
        const name = req?.input?.name ?? '?';
        const payload = first(req?.input?.args);
        const identity = req?.meta?.identity || null;
        if (name === 'approve' || name === 'reject') {
          const entry = approvalEntry(at, name, 'update', identity, payload);
          audit.approvals.push(entry);
          if (req?.meta?.updateId) updates.set(req.meta.updateId, entry);
        } else {
          const action = manualAction(at, name, 'update', identity, payload);
          if (req?.meta?.updateId) controlUpdates.set(req.meta.updateId, action);
        }
        continue;
      }

      const completedUpdate = e.workflowExecutionUpdateCompletedEventAttributes;
      const control = controlUpdates.get(completedUpdate?.meta?.updateId ?? '');
      if (completedUpdate && control) {
        const o = completedUpdate.outcome;
        if (o?.failure) refuse(control, o.failure.message ?? failureMessage(o.failure));
        else {
          const verdict = first(o?.success);
          if (isRecord(verdict) && typeof verdict.reason === 'string') control.verdict = verdict.reason;
        }
        continue;
      }
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

  // Signatures, once every decision's fate is known: verified again against the keyring.
  const context = (start: boolean): DecisionContext => ({
    model: audit.model ?? '',
    version: audit.version ?? '',
    workflowId,
    firstRunId: start ? null : (runs[0]?.runId ?? null),
    specSha256: audit.spec.sha256 ?? '',
    artifactSha256: audit.artifacts.candidate?.sha256 ?? '',
  });
  const startRefused = /^start not verified: /.test(audit.outcome.reason ?? '');
  audit.trigger.signature = auditSignature(
    { signed: signedStart },
    'promote',
    audit.trigger.triggeredBy,
    '',
    context(true),
    audit.trigger.at,
    keyring,
    startRefused ? audit.outcome.reason?.replace(/^start not verified: /, '') : undefined,
  );
  for (const a of audit.approvals) {
    a.signature = auditSignature(
      a.payload,
      a.decision,
      a.approver,
      a.decision === 'approve' ? a.comment : a.reason,
      context(false),
      a.at,
      keyring,
      a.accepted ? undefined : (a.verdict ?? 'refused by the workflow'),
    );
  }
  for (const m of audit.manualActions) {
    const decision: Decision | undefined =
      m.action === 'rollback' ? 'rollback' : m.action === 'promoteFull' ? 'promote-full' : undefined;
    if (decision)
      m.signature = auditSignature(
        m.payload,
        decision,
        m.by,
        m.reason,
        context(false),
        m.at,
        keyring,
        m.accepted === false ? (m.verdict ?? 'refused by the workflow') : undefined,
      );
  }
  audit.cost = ownCost(audit, staging, candidateReplicas, serving, opts.prices, lastAt);

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

/**
 * One decision's signature as the audit finds it: the workflow's refusal wins (it saw the nonce
 * and the window); otherwise the signature is checked again with the keyring as it is now, at
 * the decision's time, so a key revoked since shows as such rather than as a forgery.
 */
function auditSignature(
  payload: unknown,
  decision: Decision,
  by: string | null,
  comment: string | undefined,
  context: DecisionContext,
  at: string,
  keyring: Keyring | undefined,
  refusedBecause?: string,
): AuditSignature {
  const signed = isRecord(payload) ? payload.signed : undefined;
  const key =
    isRecord(signed) && typeof signed.key === 'string'
      ? { fingerprint: signed.key }
      : ({} as { fingerprint?: string });
  if (signed === undefined || signed === null)
    return refusedBecause ? { status: 'refused', reason: refusedBecause } : UNSIGNED;
  if (refusedBecause) return { status: 'refused', ...key, reason: refusedBecause };
  if (!keyring) return { status: 'unverifiable', ...key, reason: 'no keyring given to the audit' };
  const r = verifyDecision(
    { signed, decision, by: by ?? '', comment, context, now: at || new Date(0).toISOString() },
    keyring,
  );
  if (!r.ok) return { status: 'refused', ...key, reason: r.reason };
  return {
    status: 'verified',
    fingerprint: r.fingerprint,
    signer: r.signer,
    ...(r.revoked ? { revokedOn: r.revoked } : {}),
  };
}

/** Phases whose time the candidate's production replicas count toward the promotion's cost. */
const COSTED_STAGES = new Set(['shadow', 'canary', 'experiment']);

function ownCost(
  audit: PromotionAudit,
  staging: { from?: string; to?: string; replicas: number },
  candidateReplicas: { at: string; replicas: number }[],
  serving: DeployInput['serving'] | undefined,
  prices: Prices | undefined,
  lastAt: string,
): PromotionCost {
  const spans: CostSpan[] = [];
  if (staging.from) {
    spans.push({
      phase: 'staging',
      from: staging.from,
      to: staging.to ?? audit.outcome.at ?? lastAt,
      replicas: [{ at: staging.from, replicas: staging.replicas }],
    });
  }
  if (candidateReplicas.length > 0) {
    for (const [i, s] of audit.stages.entries()) {
      if (!COSTED_STAGES.has(s.stage)) continue;
      const to = audit.stages[i + 1]?.at ?? audit.outcome.at ?? lastAt;
      spans.push({ phase: s.stage, from: s.at, to, replicas: candidateReplicas });
    }
  }
  // The price the looks recorded is the one the promotion ran under; today's config otherwise.
  const recorded = [...audit.analyses].reverse().find((a) => a.cost)?.cost?.price;
  let price: (ReplicaPrice & { source: 'history' | 'config' }) | undefined;
  if (recorded) price = { ...recorded, source: 'history' };
  else if (prices && serving?.resources) {
    const p = replicaPrice(prices, serving.resources, serving.device);
    if (p) price = { ...p, source: 'config' };
  }
  return promotionCost(spans, price);
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
  if (i.preview) change.preview = i.preview;
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
