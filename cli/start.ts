/**
 * Starting a promotion from a client (`runway promote`, the demo): the workflow options, with the
 * Temporal UI's static summary and details written for an approver. Temporal UI opens a workflow
 * on its History tab and shows "Details" from these fields; without them it says "No details
 * available", so everything an approver needs is put here, on one screen, at start.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { formatDuration } from '../specs/duration';
import { stepTexts, strategyOf } from '../specs/strategy';
import { promotionWorkflowId, type PromotionInput } from '../workflows/api';
import { RunwayModel, RunwayStage, RunwayVersion } from '../workflows/search-attributes';

/** The path the spec walks, e.g. `evaluate → approve → … → canary 10% 15s → 25% 15s → 100%`. */
export function stepsText(spec: PromotionInput['spec']): string {
  const steps = ['evaluate'];
  if (spec.approval.required > 0) steps.push('approve');
  steps.push('stage', 'integration test');
  if (spec.shadow.enabled) steps.push(`shadow ${formatDuration(spec.shadow.duration)}`);
  stepTexts(spec).forEach((s, i) =>
    steps.push(`${i === 0 ? `${strategyOf(spec)} ` : ''}${s.replace('/', ' ')}`),
  );
  if (spec.experiment.kind !== 'none')
    steps.push(spec.experiment.kind === 'ab' ? `A/B at ${spec.experiment.split}%` : 'bandit');
  steps.push(strategyOf(spec) === 'blue-green' ? 'graduate' : '100%');
  return steps.join(' → ');
}

export function promotionSummary(input: PromotionInput, production: string | undefined): string {
  const over = production ? ` over v${production}` : ' (first release)';
  return `promote ${input.spec.name} v${input.version}${over} — by ${input.triggeredBy}`;
}

/** Markdown the UI renders in the workflow's Details: who, what, how it goes, how to approve. */
export function promotionDetails(input: PromotionInput, production: string | undefined): string {
  const { spec, metadata } = input;
  const a = spec.approval;
  const meta = Object.entries(metadata ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const lines = [
    `**${spec.name}**: candidate **v${input.version}**, production ${production ? `**v${production}**` : 'none (first release)'}`,
    '',
    `- triggered by **${input.triggeredBy}**${meta ? ` (${meta})` : ''}`,
    `- spec sha256 \`${input.specSha256}\``,
    `- steps: ${stepsText(spec)}`,
    a.required > 0
      ? `- approval: ${a.required} of ${a.approvers.join(', ') || '(anyone)'}${a.allowSelfApproval ? '' : ` (not ${input.triggeredBy}, who started it)`}; deadline ${formatDuration(a.timeout)} after evaluation passes (then it expires)`
      : '- approval: none required',
  ];
  if (a.required > 0 && a.identity === 'signed') {
    lines.push(
      '',
      '**To approve** (or reject) once it waits for approval — decisions must be **signed** (approval.identity: signed) with your key in the platform keyring:',
      `- \`runway approve ${spec.name} --as <you> --comment "…"\` (\`runway reject ${spec.name} --as <you> --reason "…"\`)`,
      `- or here: run \`runway approve ${spec.name} --as <you> --comment "…" --print\`, then More Actions → Send a Signal → \`approve\` with the JSON it prints`,
      '- an unsigned payload here is refused, and the refusal is recorded',
    );
  } else if (a.required > 0) {
    lines.push(
      '',
      '**To approve** (or reject) once it waits for approval:',
      `- here: More Actions → Send a Signal → \`approve\`, payload \`{"approver": "<you>", "comment": "…"}\` (\`reject\`: \`{"approver": "<you>", "reason": "…"}\`)`,
      `- or: \`runway approve ${spec.name} --as <you> --comment "…"\``,
    );
  }
  lines.push(
    '',
    `Live status: \`runway status ${spec.name}\`; stop it: \`runway rollback ${spec.name} --reason "…"\``,
  );
  return lines.join('\n');
}

export function startPromotion(
  client: Client,
  taskQueue: string,
  input: PromotionInput,
  production: string | undefined,
): Promise<WorkflowHandle> {
  return client.workflow.start('promotionWorkflow', {
    taskQueue,
    workflowId: promotionWorkflowId(input.spec.name),
    args: [input],
    typedSearchAttributes: [
      { key: RunwayModel, value: input.spec.name },
      { key: RunwayVersion, value: input.version },
      { key: RunwayStage, value: 'evaluate' },
    ],
    staticSummary: promotionSummary(input, production),
    staticDetails: promotionDetails(input, production),
  });
}
