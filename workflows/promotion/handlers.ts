/**
 * The promotion's signals, updates and query (declared in workflows/api.ts). Approvals follow the
 * same rules by signal (the UI) and by update (the CLI, which learns the verdict at once); an
 * invalid signal is recorded with its reason and ignored. Requests land in the carried state.
 */
import { ApplicationFailure, log, setHandler } from '@temporalio/workflow';
import {
  approveSignal,
  approveUpdate,
  handlerDescriptions,
  pauseSignal,
  pauseUpdate,
  promoteFullSignal,
  promoteFullUpdate,
  rejectSignal,
  rejectUpdate,
  resumeSignal,
  resumeUpdate,
  rollbackSignal,
  rollbackUpdate,
  statusQuery,
  type ApprovalInput,
  type ApprovalVerdict,
  type ByInput,
  type Control,
  type ControlVerdict,
  type PromotionStatus,
  type RejectInput,
  type RollbackInput,
} from '../api';
import { quick, run } from '../activity-calls';
import { allowedApprovers, authorize, deciders } from './authority';
import { trafficSteps } from '../../specs/strategy';
import type { Promotion } from './context';
import {
  approvalWindow,
  decisionContext,
  selfApproval,
  signedDecisions,
  verifySigned,
  type SignedCheck,
} from './signed';
import { pause, resume } from './state';

type Check = { ok: boolean; reason: string };

/** Distinct approvers so far (a second approval by the same person counts once). */
export const approvers = (p: Promotion): string[] => [...new Set(p.state.approvals.map((a) => a.approver))];

export function installHandlers(p: Promotion): void {
  const { spec, model, version, state, controls, input } = p;
  // approval.identity: signed. Decided once, at start, so the patch marker leads the history.
  const signed = signedDecisions(p);

  const checkApproval = (a: ApprovalInput | undefined): Check => {
    if (!a || typeof a.approver !== 'string' || a.approver.trim() === '') {
      return { ok: false, reason: 'payload must be {"approver": "<name>", "comment": "..."}' };
    }
    const approver = a.approver.trim();
    if (state.stage !== 'approve') {
      return { ok: false, reason: `not waiting for approval (stage ${state.stage})` };
    }
    const allowed = allowedApprovers(p);
    if (allowed.length > 0 && !allowed.includes(approver)) {
      return {
        ok: false,
        reason: `${approver} is not an approver for ${model} (allowed: ${allowed.join(', ')})`,
      };
    }
    // Signed: the rule compares keys once the signature is verified (signedApproval).
    if (!signed && !spec.approval.allowSelfApproval && approver === input.triggeredBy) {
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
  const recordApproval = (a: ApprovalInput, via: 'signal' | 'update', key?: string): ApprovalVerdict => {
    const approver = a.approver.trim();
    if (key && state.approvals.some((x) => x.key === key))
      return approvalVerdict(true, `key ${key} had already approved; counted once`);
    if (approvers(p).includes(approver))
      return approvalVerdict(true, `${approver} had already approved; counted once`);
    state.approvals.push({
      approver,
      comment: a.comment,
      at: new Date().toISOString(),
      via,
      ...(key ? { key } : {}),
    });
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

  /** A signed approval: the rules, then the signature, then the rules that need the key. */
  const signedApproval = async (a: ApprovalInput): Promise<Check & { key?: string }> => {
    const check = checkApproval(a);
    if (!check.ok) return check;
    const v: SignedCheck = await verifySigned(p, 'approve', a.approver, a.comment, a, approvalWindow(p));
    if (!v.ok) return v;
    const self = selfApproval(p, v);
    if (self) return { ok: false, reason: self };
    // The stage may have moved on while the activity ran.
    const again = checkApproval(a);
    if (!again.ok) return again;
    return { ok: true, reason: 'ok', key: v.key };
  };
  /** A refused update is recorded in the history (UpdateCompleted with this failure). */
  const refuse = (reason: string): never => {
    throw ApplicationFailure.nonRetryable(reason, 'DecisionRefused');
  };
  const shaped = (a: { approver?: unknown } | undefined): void => {
    if (!a || typeof a.approver !== 'string' || a.approver.trim() === '')
      throw new Error('payload must be {"approver": "<name>", ...}');
  };

  if (signed) {
    setHandler(
      approveUpdate,
      async (a) => {
        const c = await signedApproval(a);
        return c.ok ? recordApproval(a, 'update', c.key) : refuse(c.reason);
      },
      { validator: shaped, description: handlerDescriptions.approve },
    );
    setHandler(
      approveSignal,
      async (a) => {
        const c = await signedApproval(a);
        if (c.ok) recordApproval(a, 'signal', c.key);
        else await ignore('approval', c.reason, a);
      },
      { description: handlerDescriptions.approve },
    );
  } else {
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
  }

  const checkReject = (r: Partial<RejectInput> | undefined): Check => {
    if (!r || typeof r.approver !== 'string' || !r.approver.trim()) {
      return { ok: false, reason: 'payload must be {"approver": "<name>", "reason": "..."}' };
    }
    if (state.stage !== 'approve' && state.stage !== 'evaluate') {
      return { ok: false, reason: `not waiting for approval (stage ${state.stage}); use rollback instead` };
    }
    const allowed = allowedApprovers(p);
    if (allowed.length > 0 && !allowed.includes(r.approver.trim())) {
      return { ok: false, reason: `${r.approver} is not an approver for ${model}` };
    }
    return { ok: true, reason: 'ok' };
  };
  const recordRejection = (r: RejectInput) =>
    (controls.rejected = { by: r.approver.trim(), reason: r.reason || 'no reason given' });
  const signedReject = async (r: RejectInput): Promise<Check> => {
    const check = checkReject(r);
    if (!check.ok) return check;
    const v = await verifySigned(p, 'reject', r.approver, r.reason, r, approvalWindow(p));
    return v.ok ? checkReject(r) : v;
  };
  if (signed) {
    setHandler(
      rejectUpdate,
      async (r) => {
        const c = await signedReject(r);
        if (!c.ok) return refuse(c.reason);
        const rejected = recordRejection(r);
        return approvalVerdict(true, `rejected by ${rejected.by}: ${rejected.reason}`);
      },
      { validator: shaped, description: handlerDescriptions.reject },
    );
    setHandler(
      rejectSignal,
      async (r) => {
        const c = await signedReject(r);
        if (c.ok) recordRejection(r);
        else await ignore('rejection', c.reason, r);
      },
      { description: handlerDescriptions.reject },
    );
  } else {
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
  }

  // Controls: brakes and decisions, checked by authority.ts. Promotions started before the check
  // (patch 'control-authority', see Promotion.authority) take every control as before.
  const applyControl = (c: Control, input: ByInput | RollbackInput | undefined): void => {
    const by = input?.by;
    if (c === 'pause') pause(state, by, input?.reason);
    else if (c === 'resume') {
      resume(state, controls);
      log.info(`resumed by ${by ?? 'unknown'}`);
    } else if (c === 'rollback') {
      controls.rollbackRequest = { by: by ?? 'unknown', reason: input?.reason ?? 'no reason given' };
    } else controls.promoteFull = { by: by ?? 'unknown' };
    p.refreshDetails();
  };
  const takeControl = async (
    c: Control,
    input: ByInput | RollbackInput | undefined,
  ): Promise<ControlVerdict> => {
    const by = input?.by?.trim() || 'unknown';
    let check = p.authority ? authorize(p, c, input?.by) : { ok: true, reason: `${c} by ${by}` };
    // Skipping the analysis is a decision: under `signed` it also needs a verified key of `by`.
    if (check.ok && signed && c === 'promoteFull') {
      const v = await verifySigned(p, 'promote-full', by, input?.reason, input);
      if (!v.ok) check = v;
    }
    if (check.ok) applyControl(c, input);
    else await ignore(c, check.reason, input);
    return { control: c, by, accepted: check.ok, reason: check.reason };
  };
  /** A malformed payload is refused before the update is accepted (and so before the history). */
  const wellFormed = (input: unknown): void => {
    const b = input as Partial<ByInput> | undefined;
    if (typeof b !== 'object' || b === null || (b.by !== undefined && typeof b.by !== 'string'))
      throw new Error('payload must be {"by": "<name>", "reason": "..."}');
  };
  const controlHandlers = [
    [pauseSignal, pauseUpdate, 'pause'],
    [resumeSignal, resumeUpdate, 'resume'],
    [rollbackSignal, rollbackUpdate, 'rollback'],
    [promoteFullSignal, promoteFullUpdate, 'promoteFull'],
  ] as const;
  for (const [signal, update, c] of controlHandlers) {
    const description = handlerDescriptions[c];
    // A refused signal is recorded (ignore) and changes nothing.
    setHandler(signal, async (input?: ByInput | RollbackInput) => void (await takeControl(c, input)), {
      description,
    });
    // A refused update is recorded the same way and fails, so the caller learns why at once.
    setHandler(
      update,
      async (input: ByInput | RollbackInput) => {
        const verdict = await takeControl(c, input);
        if (!verdict.accepted)
          throw ApplicationFailure.nonRetryable(verdict.reason, 'ControlRefused', verdict);
        return verdict;
      },
      { validator: wellFormed, description },
    );
  }

  setHandler(statusQuery, (): PromotionStatus => status(p), { description: handlerDescriptions.status });
}

function status(p: Promotion): PromotionStatus {
  const { state, spec } = p;
  const step = trafficSteps(spec)[state.stepIndex];
  const stepping = ['canary', 'linear', 'preview', 'switch'].includes(state.stage);
  return {
    model: p.model,
    version: p.version,
    strategy: p.strategy,
    baselineVersion: state.baselineVersion,
    stage: state.stage,
    stagesEntered: [...p.stagesEntered],
    step:
      stepping && step
        ? { index: state.stepIndex, weight: step.weight, heldMs: state.heldMs, pauseMs: step.pause }
        : undefined,
    weights: state.weights,
    mirror: state.mirror,
    ...(state.preview ? { preview: { variant: p.candidate, ...state.preview } } : {}),
    paused: state.paused,
    pauseReason: state.pauseReason,
    pendingAction: state.pendingAction,
    approvals: state.approvals,
    approvalsRequired: spec.approval.required,
    lastVerdicts: state.lastVerdicts,
    // A query reads state and records nothing: replay is unaffected.
    recentTraffic: state.trafficChanges.slice(-12),
    evaluation: state.evaluation,
    outcome: p.outcome?.outcome,
    outcomeReason: p.outcome?.reason,
    triggeredBy: p.input.triggeredBy,
    ...(p.authority
      ? {
          authority: {
            deciders: deciders(p),
            brakes: spec.approval.brakes === 'operators' ? deciders(p) : [],
            promoteFull: state.policy?.rules.allowPromoteFull !== false,
          },
        }
      : {}),
    ...(state.policy ? { policy: state.policy } : {}),
    identity: spec.approval.identity ?? 'payload',
    ...(spec.approval.identity === 'signed'
      ? { decisionContext: decisionContext(p), approvalWindow: approvalWindow(p) }
      : {}),
  };
}
