/**
 * Signed decisions (approval.identity: signed): the workflow's side. It cannot verify a signature
 * itself (no crypto in workflow code), so the `verifyDecision` activity does, and its answer is in
 * the history for the audit. What needs this promotion's memory stays here: each nonce counts
 * once, and the starter's key is remembered so that no one approves what they started.
 *
 * Only specs that ask for `signed` reach this module, and all of it sits behind the
 * `signed-decisions` patch: promotions under `payload` run exactly as before.
 */
import { patched, workflowInfo } from '@temporalio/workflow';
import type { Decision, DecisionContext, VerifyResult } from '../../common/signing';
import type { SignedDecisionState } from '../api';
import { quick, run } from '../activity-calls';
import type { Promotion } from './context';
import { Ended } from './state';

export type SignedCheck = { ok: true; key: string; signer: string } | { ok: false; reason: string };

/** True when this promotion's decisions must be signed. Call at start: the patch marker goes first. */
export function signedDecisions(p: Promotion): boolean {
  return p.spec.approval.identity === 'signed' && patched('signed-decisions');
}

function memory(p: Promotion): SignedDecisionState {
  return (p.state.signed ??= { nonces: [] });
}

/** What every decision on this promotion must name. */
export function decisionContext(p: Promotion, forStart = false): DecisionContext {
  const info = workflowInfo();
  return {
    model: p.model,
    version: p.version,
    workflowId: info.workflowId,
    firstRunId: forStart ? null : info.firstExecutionRunId,
    specSha256: p.input.specSha256,
    artifactSha256: p.prepared?.candidate.sha256 ?? '',
  };
}

/** The approval window: from the stage's opening to its deadline. */
export function approvalWindow(p: Promotion): { from: string; to: string } | undefined {
  const from = p.state.signed?.approvalOpenedAt;
  if (!from) return undefined;
  return { from, to: new Date(new Date(from).getTime() + p.spec.approval.timeout).toISOString() };
}

export function openApprovalWindow(p: Promotion): void {
  memory(p).approvalOpenedAt ??= new Date().toISOString();
}

function nonceOf(payload: unknown): unknown {
  const signed = (payload as { signed?: { message?: { nonce?: unknown } } } | undefined)?.signed;
  return signed?.message?.nonce;
}

/**
 * Verifies one decision: unsigned is refused here; the signature, key, binding, comment and
 * time by the activity; the nonce's novelty here, before and after (two copies may race).
 */
export async function verifySigned(
  p: Promotion,
  decision: Decision,
  by: string,
  comment: string | undefined,
  payload: unknown,
  window?: { from?: string; to?: string },
): Promise<SignedCheck> {
  const signed = (payload as { signed?: unknown } | undefined)?.signed;
  if (signed === undefined || signed === null) {
    return {
      ok: false,
      reason: `unsigned: this promotion requires a signed ${decision} (approval.identity: signed)`,
    };
  }
  const mem = memory(p);
  const used = (n: unknown) => typeof n === 'string' && mem.nonces.includes(n);
  if (used(nonceOf(payload))) {
    return {
      ok: false,
      reason: `nonce ${String(nonceOf(payload))} was already used: a signed decision counts once`,
    };
  }
  const result: VerifyResult = await run('verifyDecision', `verify the signed ${decision} of ${by}`, quick, {
    decision,
    by,
    comment,
    signed,
    context: decisionContext(p, decision === 'promote'),
    window,
  });
  if (!result.ok) return { ok: false, reason: result.reason };
  if (used(result.nonce)) {
    return { ok: false, reason: `nonce ${result.nonce} was already used: a signed decision counts once` };
  }
  mem.nonces.push(result.nonce);
  return { ok: true, key: result.fingerprint, signer: result.signer };
}

/** The starter's signed `promote`: verified once (a continued run has it in its state). */
export async function verifyStart(p: Promotion): Promise<void> {
  const mem = memory(p);
  if (mem.starterKey) return;
  const started = workflowInfo().startTime.getTime();
  // Signed just before the start: ten minutes of slack for a slow pipeline, two for clocks.
  const window = {
    from: new Date(started - 10 * 60_000).toISOString(),
    to: new Date(started + 2 * 60_000).toISOString(),
  };
  const check = await verifySigned(
    p,
    'promote',
    p.input.triggeredBy,
    '',
    { signed: p.input.signedStart },
    window,
  );
  if (!check.ok) throw new Ended('rejected', `start not verified: ${check.reason}`);
  mem.starterKey = check.key;
  mem.starter = check.signer;
}

/** The no-self-approval rule on keys: the starter's key, or the starter's name in the keyring. */
export function selfApproval(p: Promotion, check: { key: string; signer: string }): string | undefined {
  if (p.spec.approval.allowSelfApproval) return undefined;
  const mem = memory(p);
  if (check.key === mem.starterKey)
    return `signed with the key that started this promotion (${check.key}) and the spec forbids self-approval`;
  if (check.signer === mem.starter)
    return `${check.signer} started this promotion and the spec forbids self-approval`;
  return undefined;
}
