/**
 * The promotion's carried state and the transitions people cause. Everything a run must hand to
 * the next at continue-as-new lives in PromotionState (workflows/api.ts), requests from signals
 * included: a rollback handled in a run's last look must reach the next run.
 */
import { ActivityFailure } from '@temporalio/workflow';
import type { Outcome, PromotionControls, PromotionState } from '../api';

export function initialState(): PromotionState {
  return {
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
}

/** Ends the promotion with an outcome; the path's catch runs the cleanup saga. */
export class Ended extends Error {
  constructor(
    readonly outcome: Outcome,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Throws the manual rollback if one was asked for. */
export function throwIfRollbackRequested(controls: PromotionControls): void {
  const r = controls.rollbackRequest;
  if (r) throw new Ended('rolled_back', `manual rollback by ${r.by}: ${r.reason}`);
}

export function pause(state: PromotionState, by: string | undefined, reason: string | undefined): void {
  state.paused = true;
  state.pauseReason = `paused by ${by ?? 'unknown'}${reason ? `: ${reason}` : ''}`;
  state.pendingAction = 'resume to continue, rollback to abort';
}

/** Resuming an inconclusive pause means "proceed on my judgement". */
export function resume(state: PromotionState, controls: PromotionControls): void {
  state.paused = false;
  state.pauseReason = undefined;
  state.pendingAction = undefined;
  state.inconclusiveStreak = 0;
  if (controls.awaitingHuman) controls.humanProceed = true;
  controls.awaitingHuman = false;
}

/** The analysis could not decide: hold for a human, whose resume then means proceed. */
export function pauseForHuman(state: PromotionState, controls: PromotionControls, why: string): void {
  controls.awaitingHuman = true;
  state.paused = true;
  state.pauseReason = `analysis inconclusive after ${state.inconclusiveStreak} extra intervals: ${why}`;
  state.pendingAction = 'a human decision: resume to proceed, rollback to abort';
}

/** The root cause, named by the activity that failed: "prepareCandidate: sha256 mismatch ...". */
export function failureReason(err: unknown): string {
  let e: unknown = err;
  let message = err instanceof Error ? err.message : String(err);
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) {
    e = (e as { cause: Error }).cause;
    message = (e as Error).message;
  }
  return err instanceof ActivityFailure && err.activityType ? `${err.activityType}: ${message}` : message;
}
