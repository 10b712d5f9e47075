/**
 * Verification of signed decisions (approval.identity: signed). The workflow may not import
 * crypto, so it asks this activity, whose result (accepted with the key's fingerprint, or the
 * specific reason for refusing) the history records for the audit. The nonce's novelty is the
 * workflow's to judge: only it remembers which nonces this promotion has seen.
 */
import { verifyDecision, type VerifyResult } from '../common/signing';
import type { VerifyDecisionInput } from './contracts';
import type { ActivityDeps } from './deps';

/** A signer's clock may run a little ahead of the worker's. */
export const CLOCK_SKEW_MS = 2 * 60_000;

export function approvalSignatureActivities({ keyring, logger }: ActivityDeps) {
  const log = logger.child('signature');
  return {
    async verifyDecision(input: VerifyDecisionInput): Promise<VerifyResult> {
      const now = new Date();
      // Nothing signed in the future counts: the window closes at the deadline or now (with skew).
      const latest = new Date(now.getTime() + CLOCK_SKEW_MS).toISOString();
      const to = input.window?.to && input.window.to < latest ? input.window.to : latest;
      const from = input.window?.from
        ? new Date(new Date(input.window.from).getTime() - CLOCK_SKEW_MS).toISOString()
        : undefined;
      // A keyring that cannot be read now fails the activity (retried), never a silent refusal.
      const ring = keyring ? await keyring.load() : undefined;
      const result = verifyDecision(
        {
          signed: input.signed,
          decision: input.decision,
          by: input.by,
          comment: input.comment,
          context: input.context,
          window: { from, to },
          now: now.toISOString(),
        },
        ring,
      );
      log.info(result.ok ? 'decision verified' : 'decision refused', {
        model: input.context.model,
        decision: input.decision,
        by: input.by,
        ...(result.ok ? { fingerprint: result.fingerprint } : { reason: result.reason }),
      });
      return result;
    },
  };
}
