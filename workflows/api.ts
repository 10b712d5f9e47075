/**
 * The promotion's public surface: signals, updates and queries that CI, approvers (Temporal UI or
 * `runway approve`), on-call and `runway status` use. Payloads are single JSON objects a person can
 * type into the UI's signal dialog, e.g. {"approver": "alice", "comment": "looks good"}.
 *
 * Deterministic code only: this module is imported by workflows and clients alike.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { PolicyInForce } from '../specs/policy';
import type { ModelSpec } from '../specs/schema';
import type { DecisionContext, SignedDecision } from '../common/signing';
import type { Strategy } from '../specs/strategy';

export { TASK_QUEUE } from './constants';
export const promotionWorkflowId = (model: string): string => `promotion:${model}`;
export const rollbackWorkflowId = (model: string): string => `rollback:${model}`;

export interface RollbackWorkflowInput {
  model: string;
  by: string;
  reason: string;
  /** Version to restore; default: the registry's `previous` alias. */
  toVersion?: string;
  /** Serving settings for a redeploy; the spec's when known. */
  serving?: ModelSpec['serving'];
  unitHeader?: string;
}

export interface RollbackWorkflowResult {
  model: string;
  from?: string;
  to: string;
  redeployed: boolean;
  reason: string;
}

export type Stage =
  | 'evaluate'
  | 'approve'
  | 'stage'
  | 'integration'
  | 'shadow'
  | 'canary'
  /** strategy linear's equal steps */
  | 'linear'
  /** strategy blue-green: preview traffic by header, the candidate otherwise at 0% */
  | 'preview'
  /** strategy blue-green: the candidate at 100%, the baseline kept at full size */
  | 'switch'
  | 'experiment'
  | 'graduate'
  | 'rolling_back'
  | 'done';

export type Outcome = 'promoted' | 'rejected' | 'rolled_back' | 'expired' | 'failed' | 'cancelled';

/** What every check returns: the numbers behind the decision travel with it into the history. */
export interface Verdict {
  check: string;
  result: 'pass' | 'fail' | 'inconclusive';
  reason: string;
  [detail: string]: unknown;
}

/**
 * Under `approval.identity: signed` each decision carries `signed`: the canonical message, its
 * ed25519 signature and the key's fingerprint (common/signing.ts; `runway approve --print`).
 */
export interface ApprovalInput {
  approver: string;
  comment?: string;
  signed?: SignedDecision;
}
export interface RejectInput {
  approver: string;
  reason: string;
  signed?: SignedDecision;
}
export interface RollbackInput {
  by: string;
  reason: string;
  signed?: SignedDecision;
}
export interface ByInput {
  by: string;
  reason?: string;
  signed?: SignedDecision;
}

export interface ApprovalRecord {
  approver: string;
  comment?: string;
  at: string;
  via: 'signal' | 'update';
  /** Fingerprint of the key that signed it (approval.identity: signed). */
  key?: string;
}

export interface ApprovalVerdict {
  accepted: boolean;
  reason: string;
  approvals: string[];
  required: number;
}

/** The controls people take on a running promotion (signals from the UI, updates from the CLI). */
export type Control = 'pause' | 'resume' | 'rollback' | 'promoteFull';

/** What a control update answers: accepted, or refused with the reason (both recorded). */
export interface ControlVerdict {
  control: Control;
  by: string;
  accepted: boolean;
  reason: string;
}

export interface TrafficChange {
  at: string;
  stage: Stage;
  weights: Record<string, number>;
  mirror?: { variant: string; percent: number; tolerance?: number; threshold?: number };
  /** Requests with this header went to the candidate (a blue-green preview). */
  preview?: { header: string; value?: string };
  reason: string;
}

export interface PromotionInput {
  spec: ModelSpec;
  specSha256: string;
  version: string;
  /** Who started it (CLI `--as`, else the OS user); used for the no-self-approval rule. */
  triggeredBy: string;
  /** CI metadata: commit, pipeline URL, ... recorded for the audit. */
  metadata?: Record<string, string>;
  /** Continue-as-new once the history has this many events (default 10 000; the server may ask sooner). */
  historyLimit?: number;
  /** Carried across continue-as-new; absent on a fresh start. */
  resume?: PromotionState;
  /** The starter's signed `promote` decision (approval.identity: signed). */
  signedStart?: SignedDecision;
}

/** What signed decisions need the promotion to remember (approval.identity: signed). */
export interface SignedDecisionState {
  /** Nonces of every decision whose signature verified: each counts once. */
  nonces: string[];
  /** The starter's key and keyring name, verified at start: the no-self-approval rule compares them. */
  starterKey?: string;
  starter?: string;
  /** When the approval stage opened (workflow time): signatures from before do not count. */
  approvalOpenedAt?: string;
}

export interface PromotionState {
  stage: Stage;
  stepIndex: number;
  heldMs: number;
  baselineVersion?: string;
  approvals: ApprovalRecord[];
  paused: boolean;
  pauseReason?: string;
  weights: Record<string, number>;
  mirror?: { variant: string; percent: number; tolerance?: number; threshold?: number };
  /** The route's preview header, while a blue-green preview sends requests to the candidate. */
  preview?: { header: string; value?: string };
  trafficChanges: TrafficChange[];
  lastVerdicts: Verdict[];
  evaluation?: Verdict;
  consecutiveFailures: number;
  inconclusiveStreak: number;
  pendingAction?: string;
  experiment?: {
    start: unknown;
    elapsedMs: number;
    ab?: { pValue: number; ci: [number, number] };
    /** Rewards per arm at the last good look (since the start, carried counts included). */
    rewards?: Record<string, { count: number; sum: number }>;
    /** Rewards counted before the router's counters last reset; `start` is the snapshot after. */
    carry?: Record<string, { count: number; sum: number }>;
  };
  /** Seeds the bandit's Monte Carlo: one per look, so replays and audits reproduce the weights. */
  seed?: number;
  /** Cumulative router counters at the last look: the next window is measured from here. */
  lastSnapshot?: unknown;
  /** The current step's sequential evidence (canary.analysis.method `sequential`), carried look to look. */
  evidence?: unknown;
  /**
   * The error test spans the promotion's steps at one α (decided at its first comparing look), so
   * later looks keep that budget split even when a look brought no evidence back.
   */
  errorsSpanSteps?: boolean;
  /** What signals asked for and the run has not yet acted on; carried so no request is lost. */
  controls?: PromotionControls;
  /** The platform policy in force, as the worker checked it at the start (absent: none recorded). */
  policy?: PolicyInForce;
  /** approval.identity: signed only. */
  signed?: SignedDecisionState;
}

/** Requests from people, set by signal and update handlers, read by the runbook's waits. */
export interface PromotionControls {
  rejected?: { by: string; reason: string };
  rollbackRequest?: { by: string; reason: string };
  promoteFull?: { by: string };
  /** Paused for an inconclusive analysis: a resume then means "proceed on my judgement". */
  awaitingHuman?: boolean;
  /** A human resumed an inconclusive pause; the step ends at its next check. */
  humanProceed?: boolean;
}

export interface PromotionResult {
  model: string;
  version: string;
  outcome: Outcome;
  reason: string;
  baselineVersion?: string;
  verdicts: Verdict[];
  trafficChanges: TrafficChange[];
  approvals: ApprovalRecord[];
}

export interface PromotionStatus {
  model: string;
  version: string;
  /** canary, linear or blue-green (absent from workers before strategies: canary). */
  strategy?: Strategy;
  baselineVersion?: string;
  stage: Stage;
  /** Stages this run has entered, in order, so a poller that blinked still sees every one. */
  stagesEntered?: Stage[];
  step?: { index: number; weight: number; heldMs: number; pauseMs: number };
  weights: Record<string, number>;
  mirror?: { variant: string; percent: number; tolerance?: number; threshold?: number };
  /** A blue-green preview: requests with the header go to `variant`. */
  preview?: { variant: string; header: string; value?: string };
  paused: boolean;
  pauseReason?: string;
  pendingAction?: string;
  approvals: ApprovalRecord[];
  approvalsRequired: number;
  lastVerdicts: Verdict[];
  /** The last traffic changes, oldest first (what `status --watch` draws as the path). */
  recentTraffic?: TrafficChange[];
  evaluation?: Verdict;
  outcome?: Outcome;
  outcomeReason?: string;
  triggeredBy: string;
  /**
   * Who may take which control now (workflows/promotion/authority.ts); empty lists mean anyone.
   * Absent for runs from before the check.
   */
  authority?: { deciders: string[]; brakes: string[]; promoteFull: boolean };
  /** The platform policy in force, as checked at the start. */
  policy?: PolicyInForce;
  /** How decisions prove who made them (the spec's approval.identity; absent in older specs: payload). */
  identity?: 'payload' | 'signed';
  /** What a signed decision must name (approval.identity: signed): the CLI signs these. */
  decisionContext?: DecisionContext;
  /** The approval window a signed approval's time must fall in (ISO). */
  approvalWindow?: { from: string; to: string };
}

// Signals: what the Temporal UI sends most easily. Invalid ones are recorded and ignored.
export const approveSignal = defineSignal<[ApprovalInput]>('approve');
export const rejectSignal = defineSignal<[RejectInput]>('reject');
export const pauseSignal = defineSignal<[ByInput?]>('pause');
export const resumeSignal = defineSignal<[ByInput?]>('resume');
export const rollbackSignal = defineSignal<[RollbackInput]>('rollback');
export const promoteFullSignal = defineSignal<[ByInput]>('promoteFull');

// Updates: what the CLI uses, so the caller learns at once whether its approval counted.
export const approveUpdate = defineUpdate<ApprovalVerdict, [ApprovalInput]>('approve');
export const rejectUpdate = defineUpdate<ApprovalVerdict, [RejectInput]>('reject');
// The controls by update: the caller learns at once whether it was accepted or refused, and why.
export const pauseUpdate = defineUpdate<ControlVerdict, [ByInput]>('pause');
export const resumeUpdate = defineUpdate<ControlVerdict, [ByInput]>('resume');
export const rollbackUpdate = defineUpdate<ControlVerdict, [RollbackInput]>('rollback');
export const promoteFullUpdate = defineUpdate<ControlVerdict, [ByInput]>('promoteFull');

export const statusQuery = defineQuery<PromotionStatus>('status');

/** Descriptions the Temporal UI shows next to each handler. */
export const handlerDescriptions = {
  approve:
    'Approve the candidate. Payload: {"approver": "alice", "comment": "looks good"}; under approval.identity signed, paste the JSON `runway approve MODEL --print` gives',
  reject:
    'Reject the candidate; traffic returns to the baseline. Payload: {"approver": "alice", "reason": "..."}',
  pause: 'Hold the current step (the SLO guard keeps watching). Payload: {"by": "bob"}',
  resume:
    'Continue a paused promotion; past an inconclusive analysis only an approver or operator may. Payload: {"by": "bob"}',
  rollback: 'Roll all traffic back to the baseline now. Payload: {"by": "carol", "reason": "pager alert"}',
  promoteFull:
    'Skip the remaining steps and graduate the candidate: approvers or operators only, after the approvals. Payload: {"by": "dave", "reason": "..."}',
  status: 'Stage, step, weights, last verdicts with their numbers, approvals and the pending action.',
} as const;
