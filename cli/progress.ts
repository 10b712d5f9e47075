/** Human-readable promotion status: one block for `runway status`, one line per change for --wait. */
import type { PromotionStatus, Verdict } from '../workflows/api';
import { formatDuration } from '../specs/duration';

function weightList(weights: Record<string, number>): string {
  return Object.entries(weights)
    .map(([v, p]) => `${v} ${p}%`)
    .join(', ');
}

/**
 * The promotion's traffic. Before its first route change the workflow has no weights of its own:
 * production's route holds, and `routed` (read from the router) says what that is.
 */
export function weightsText(
  s: Pick<PromotionStatus, 'weights' | 'mirror' | 'baselineVersion' | 'preview'>,
  routed?: Record<string, number>,
): string {
  const own = weightList(s.weights);
  const actual = routed && Object.keys(routed).length ? weightList(routed) : '';
  const w =
    own ||
    (actual
      ? `${actual} (production's route, from the router)`
      : s.baselineVersion
        ? `production's route, unchanged (v${s.baselineVersion})`
        : 'no route yet');
  // The router is the truth clients meet: say so when it differs from what the workflow last set.
  const differs = own && actual && actual !== own ? `; the router has ${actual}` : '';
  const preview = s.preview
    ? ` (preview: requests with ${s.preview.header}${s.preview.value ? `: ${s.preview.value}` : ''} → ${s.preview.variant})`
    : '';
  return w + (s.mirror ? ` (mirror ${s.mirror.percent}% → ${s.mirror.variant})` : '') + preview + differs;
}

export function verdictLine(v: Verdict): string {
  const mark = v.result === 'pass' ? 'ok  ' : v.result === 'fail' ? 'FAIL' : '??  ';
  return `${mark} ${v.check}: ${v.reason}`;
}

/** A stage that began and ended between two polls. */
export function passedStageLine(s: Pick<PromotionStatus, 'model' | 'version'>, stage: string): string {
  return `[${s.model} v${s.version}]  ${stage}  (passed)`;
}

/** One line summarising the state; printed by --wait whenever it changes. */
export function progressLine(s: PromotionStatus): string {
  const parts = [`[${s.model} v${s.version}]`, s.stage];
  if (s.step)
    parts.push(
      `step ${s.step.index + 1} ${s.step.weight}% held ${formatDuration(s.step.heldMs)}/${formatDuration(s.step.pauseMs)}`,
    );
  parts.push(`traffic: ${weightsText(s)}`);
  const exp = s.lastVerdicts.find((v) => v.check === 'bandit' || v.check === 'ab');
  if (s.stage === 'experiment' && exp) parts.push(`${exp.check}: ${exp.reason}`);
  if (s.paused) parts.push(`PAUSED (${s.pauseReason ?? ''})`);
  if (s.pendingAction) parts.push(`waiting for ${s.pendingAction}`);
  return parts.join('  ');
}

/** What `runway status` adds from the router: its route, and a hint when no request arrives. */
export interface LiveFacts {
  routed?: Record<string, number>;
  hint?: string;
}

export function statusBlock(s: PromotionStatus, live: LiveFacts = {}): string {
  const lines = [
    `model      ${s.model}`,
    `candidate  v${s.version}${s.baselineVersion ? ` (baseline v${s.baselineVersion})` : ' (first release)'}`,
    `strategy   ${s.strategy ?? 'canary'}`,
    `stage      ${s.stage}${s.step ? ` — step ${s.step.index + 1}: ${s.step.weight}% held ${formatDuration(s.step.heldMs)} of ${formatDuration(s.step.pauseMs)}` : ''}`,
    `traffic    ${weightsText(s, live.routed)}`,
    `approvals  ${s.approvals.map((a) => a.approver).join(', ') || 'none'} (${s.approvals.length}/${s.approvalsRequired} required)`,
    `started by ${s.triggeredBy}`,
  ];
  if (s.authority) {
    const who = (names: string[]) => names.join(', ') || 'anyone';
    const full = s.authority.promoteFull ? '' : ' (promote-full forbidden by the platform policy)';
    lines.push(
      `controls   decisions (promote-full, proceed past inconclusive): ${who(s.authority.deciders)}${full}; brakes: ${who(s.authority.brakes)}`,
    );
  }
  if (s.policy) lines.push(`policy     ${s.policy.matched.join(', ') || 'no entry matched'}`);
  if (s.paused) lines.push(`PAUSED     ${s.pauseReason ?? ''}`);
  if (s.pendingAction) lines.push(`waiting    ${s.pendingAction}`);
  if (s.outcome) lines.push(`outcome    ${s.outcome} — ${s.outcomeReason ?? ''}`);
  if (live.hint) lines.push(`note       ${live.hint}`);
  if (s.lastVerdicts.length) {
    lines.push('last verdicts:');
    for (const v of s.lastVerdicts) lines.push(`  ${verdictLine(v)}`);
  }
  return lines.join('\n');
}
