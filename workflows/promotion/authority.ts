/**
 * Who may take which control of a running promotion. Two kinds:
 * - decisions skip or overrule the analysis: promote-full, and the resume that proceeds past an
 *   inconclusive pause. Only the approvers (the policy's list when the platform sets one) or the
 *   spec's `approval.operators` may take them, never while the approvals are still outstanding
 *   (refused, not queued), and promote-full not at all where the platform policy forbids it;
 * - brakes stop or hold traffic: pause, rollback, and the resume of a manual pause. Anyone may
 *   pull them unless the spec says `approval.brakes: operators`.
 * With neither approvers nor operators listed, anyone may take a decision too (as anyone may
 * approve then); the platform policy's approvers close that.
 *
 * Deterministic and pure: the handlers (handlers.ts) call it for signals and updates alike.
 */
import type { Control, Stage } from '../api';
import type { Promotion } from './context';

export interface Authority {
  ok: boolean;
  reason: string;
}

/** Stages at which the approvals are not yet in: a decision then would be queued past them. */
const BEFORE_APPROVAL: Stage[] = ['evaluate', 'approve'];
/** Stages with nothing left to decide. */
const OVER: Stage[] = ['graduate', 'rolling_back', 'done'];

/** Who may approve: the policy's list recorded at the start, else the spec's (empty: anyone). */
export function allowedApprovers(p: Promotion): string[] {
  const policy = p.state.policy;
  return policy && policy.approvers.length > 0 ? policy.approvers : p.spec.approval.approvers;
}

/** Who may take decisions: approvers and operators; empty means anyone. */
export function deciders(p: Promotion): string[] {
  // Specs recorded before `operators` existed have none.
  return [...new Set([...allowedApprovers(p), ...(p.spec.approval.operators ?? [])])];
}

/** Whether a resume now would be a decision (proceed past an inconclusive pause). */
export const resumeDecides = (p: Promotion): boolean => !!p.controls.awaitingHuman;

const label: Record<Control, string> = {
  pause: 'pause',
  resume: 'resume',
  rollback: 'rollback',
  promoteFull: 'promote-full',
};

export function authorize(p: Promotion, control: Control, by: string | undefined): Authority {
  const { state, model } = p;
  const who = by?.trim();
  const what =
    control === 'resume' && resumeDecides(p) ? 'resume past an inconclusive pause' : label[control];
  const decision = control === 'promoteFull' || (control === 'resume' && resumeDecides(p));
  const allowed = decision || p.spec.approval.brakes === 'operators' ? deciders(p) : [];
  if (allowed.length > 0 && !who) {
    return { ok: false, reason: `${what} needs a name: payload {"by": "<name>", "reason": "..."}` };
  }
  if (who && allowed.length > 0 && !allowed.includes(who)) {
    const kind = decision ? 'it skips the analysis' : 'the spec narrows brakes to operators';
    return {
      ok: false,
      reason: `${who} may not ${what} ${model}: ${kind}, so only its approvers or operators may (${allowed.join(', ')})`,
    };
  }
  if (control === 'promoteFull') {
    if (state.policy?.rules.allowPromoteFull === false) {
      return {
        ok: false,
        reason: `the platform policy ('${state.policy.from.allowPromoteFull ?? '?'}': allowPromoteFull) forbids promote-full for ${model}`,
      };
    }
    if (BEFORE_APPROVAL.includes(state.stage)) {
      return {
        ok: false,
        reason: `v${p.version} is still at ${state.stage}: promote-full is refused, not queued, until its approvals are in`,
      };
    }
    if (OVER.includes(state.stage))
      return { ok: false, reason: `nothing left to skip (stage ${state.stage})` };
  }
  if (control === 'resume' && !state.paused) return { ok: false, reason: 'not paused' };
  return { ok: true, reason: `${what} by ${who || 'unknown'}` };
}
