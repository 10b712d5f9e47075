/**
 * The promotion's signals, updates and query (declared in workflows/api.ts). Approvals follow the
 * same rules by signal (the UI) and by update (the CLI, which learns the verdict at once); an
 * invalid signal is recorded with its reason and ignored. Requests land in the carried state.
 */
import { log, setHandler } from '@temporalio/workflow';
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
  type PromotionStatus,
  type RejectInput,
} from '../api';
import { quick, run } from '../activity-calls';
import type { Promotion } from './context';
import { pause, resume } from './state';

type Check = { ok: boolean; reason: string };

/** Distinct approvers so far (a second approval by the same person counts once). */
export const approvers = (p: Promotion): string[] => [...new Set(p.state.approvals.map((a) => a.approver))];

export function installHandlers(p: Promotion): void {
  const { spec, model, version, state, controls, input } = p;

  const checkApproval = (a: ApprovalInput | undefined): Check => {
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
  const approvalVerdict = (accepted: boolean, reason: string): ApprovalVerdict => ({
    accepted,
    reason,
    approvals: approvers(p),
    required: spec.approval.required,
  });
  const recordApproval = (a: ApprovalInput, via: 'signal' | 'update'): ApprovalVerdict => {
    const approver = a.approver.trim();
    if (approvers(p).includes(approver))
      return approvalVerdict(true, `${approver} had already approved; counted once`);
    state.approvals.push({ approver, comment: a.comment, at: new Date().toISOString(), via });
    return approvalVerdict(
      true,
      `approved by ${approver} (${approvers(p).length}/${spec.approval.required})`,
    );
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
      ...p.notifyRoute,
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

  const checkReject = (r: Partial<RejectInput> | undefined): Check => {
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
  const recordRejection = (r: RejectInput) =>
    (controls.rejected = { by: r.approver.trim(), reason: r.reason || 'no reason given' });
  setHandler(
    rejectUpdate,
    (r) => {
      const rejected = recordRejection(r);
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
      if (check.ok) recordRejection(r);
      else await ignore('rejection', check.reason, r);
    },
    { description: handlerDescriptions.reject },
  );

  setHandler(
    pauseSignal,
    (b) => {
      pause(state, b?.by, b?.reason);
      p.refreshDetails();
    },
    { description: handlerDescriptions.pause },
  );
  setHandler(
    resumeSignal,
    (b) => {
      resume(state, controls);
      log.info(`resumed by ${b?.by ?? 'unknown'}`);
      p.refreshDetails();
    },
    { description: handlerDescriptions.resume },
  );
  setHandler(
    rollbackSignal,
    (r) => {
      controls.rollbackRequest = { by: r?.by ?? 'unknown', reason: r?.reason ?? 'no reason given' };
    },
    { description: handlerDescriptions.rollback },
  );
  setHandler(
    promoteFullSignal,
    (b) => {
      controls.promoteFull = { by: b?.by ?? 'unknown' };
    },
    { description: handlerDescriptions.promoteFull },
  );

  setHandler(statusQuery, (): PromotionStatus => status(p), { description: handlerDescriptions.status });
}

function status(p: Promotion): PromotionStatus {
  const { state, spec } = p;
  const step = spec.canary.steps[state.stepIndex];
  return {
    model: p.model,
    version: p.version,
    baselineVersion: state.baselineVersion,
    stage: state.stage,
    stagesEntered: [...p.stagesEntered],
    step:
      state.stage === 'canary' && step
        ? { index: state.stepIndex, weight: step.weight, heldMs: state.heldMs, pauseMs: step.pause }
        : undefined,
    weights: state.weights,
    mirror: state.mirror,
    paused: state.paused,
    pauseReason: state.pauseReason,
    pendingAction: state.pendingAction,
    approvals: state.approvals,
    approvalsRequired: spec.approval.required,
    lastVerdicts: state.lastVerdicts,
    evaluation: state.evaluation,
    outcome: p.outcome?.outcome,
    outcomeReason: p.outcome?.reason,
    triggeredBy: p.input.triggeredBy,
  };
}
