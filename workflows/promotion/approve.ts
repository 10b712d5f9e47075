/**
 * Step 2: wait for `approval.required` distinct approvers (signals or updates, see handlers.ts),
 * a rejection, an abort, or the timeout.
 */
import { condition, patched, workflowInfo } from '@temporalio/workflow';
import { formatDuration } from '../../specs/duration';
import { notifyLater } from '../activity-calls';
import type { Promotion } from './context';
import { allowedApprovers } from './authority';
import { approvers } from './handlers';
import { openApprovalWindow } from './signed';
import { Ended } from './state';

export async function approve(p: Promotion): Promise<void> {
  const { spec, state, controls } = p;
  p.enter('approve');
  // Signed approvals must be signed in the window (state only: no command, nothing to patch).
  if (spec.approval.identity === 'signed') openApprovalWindow(p);
  if (spec.approval.required > 0) {
    state.pendingAction = `${spec.approval.required} approval(s) from ${allowedApprovers(p).join(', ') || 'anyone'}`;
    p.refreshDetails();
    // Approvers hear that they are asked (before this patch only the UI and `status` showed it).
    if (patched('notify-approval-requested')) {
      const deadline = new Date(Date.now() + spec.approval.timeout).toISOString();
      notifyLater('notify: approval requested', {
        model: p.model,
        version: p.version,
        event: 'approval_requested',
        message: `${state.pendingAction}, by ${deadline}: runway approve ${p.model} --as <you> (or the Temporal UI's approve signal)`,
        details: {
          required: spec.approval.required,
          approvers: spec.approval.approvers,
          deadline,
          triggeredBy: p.input.triggeredBy,
          workflowId: workflowInfo().workflowId,
        },
        ...p.notifyRoute,
      });
    }
    const decided = await condition(
      () =>
        approvers(p).length >= spec.approval.required || !!controls.rejected || !!controls.rollbackRequest,
      spec.approval.timeout,
      // The timer's label in the UI's history and timeline.
      { summary: `approval deadline: ${formatDuration(spec.approval.timeout)}` },
    );
    state.pendingAction = undefined;
    const { rejected, rollbackRequest } = controls;
    if (rejected) throw new Ended('rejected', `rejected by ${rejected.by}: ${rejected.reason}`);
    if (rollbackRequest)
      throw new Ended('rejected', `aborted by ${rollbackRequest.by}: ${rollbackRequest.reason}`);
    if (!decided) {
      throw new Ended('expired', `no decision within ${formatDuration(spec.approval.timeout)}`);
    }
  }
  state.stage = 'stage';
}
