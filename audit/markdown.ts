/** The audit as Markdown: what an auditor pastes into a change record. */
import { money, type PromotionCost } from '../common/cost';
import { watchMarkdown } from './watch';
import { lineageLines } from './lineage';
import type { Verdict } from '../workflows/api';
import type {
  AuditAnalysis,
  AuditDocument,
  AuditListDocument,
  AuditSignature,
  PromotionAudit,
} from './report';

const cell = (s: unknown): string =>
  String(s ?? '—')
    .replace(/\|/g, '\\|')
    .replace(/\r?\n/g, ' ');
const weights = (w: Record<string, number>): string =>
  Object.entries(w)
    .map(([v, x]) => `${v} ${x}%`)
    .join(', ') || '—';
const verdict = (v: Verdict | undefined): string => (v ? `${v.check} **${v.result}**: ${v.reason}` : '');

function basis(analyses: AuditAnalysis[]): string {
  if (analyses.length === 0) return '—';
  const last = analyses[analyses.length - 1] as AuditAnalysis;
  const counts = { pass: 0, fail: 0, inconclusive: 0 };
  for (const a of analyses) if (a.guard) counts[a.guard.result]++;
  const parts = [
    `${analyses.length} look(s): guard ${counts.pass} pass / ${counts.fail} fail / ${counts.inconclusive} inconclusive`,
    `last: ${[last.guard, last.comparison, last.experiment, last.cost].filter(Boolean).map(verdict).join('; ')}`,
  ];
  if (analyses.some((a) => a.gap)) parts.push('gap in data');
  return parts.join('; ');
}

/** The policy in force as one line: its entries, each rule with the entry it came from, refusals. */
function policyLine(p: NonNullable<PromotionAudit['policy']>): string {
  if (p.matched.length === 0) return 'none matched this model';
  const rules = Object.entries(p.rules)
    .map(
      ([rule, value]) =>
        `${rule} ${Array.isArray(value) ? value.join(', ') : String(value)} (${p.from[rule as keyof typeof p.from] ?? '?'})`,
    )
    .join('; ');
  const refused = p.violations?.length
    ? ` — **refused**: ${p.violations.map((v) => `${v.field} ${v.message} (${v.rule})`).join('; ')}`
    : '';
  return `entries ${p.matched.map((m) => `\`${m}\``).join(', ')}: ${rules}${refused}`;
}

/** "0.0221 replica-hours (staging 0.0018, shadow 0.0018, canary 0.0185) = 0.000995 $ at 0.045 $/replica-hour (…)". */
export function promotionCostText(c: PromotionCost): string {
  const phases = c.phases.map((p) => `${p.phase} ${p.replicaHours.toFixed(4)}`).join(', ');
  const hours = `${c.replicaHours.toFixed(4)} replica-hours${phases ? ` (${phases})` : ''}`;
  if (c.cost === undefined || !c.price) return `${hours}; no price (platform config \`cost\`)`;
  const source = c.price.source === 'history' ? 'as recorded' : "today's config";
  return `${hours} = ${money(c.cost, c.price.currency)} at ${money(c.price.perHour, c.price.currency)}/replica-hour (${c.price.basis}; ${source})`;
}

export function promotionMarkdown(a: PromotionAudit): string {
  const out: string[] = [];
  out.push(`## ${a.model ?? '?'} v${a.version ?? '?'} — ${a.outcome.outcome ?? a.outcome.status}`);
  out.push('');
  out.push(
    `- workflow: \`${a.workflowId}\`, runs: ${a.runs.map((r) => `\`${r.runId}\` (${r.closedAs})`).join(' → ')}`,
  );
  out.push(
    `- started: ${a.trigger.at} by **${a.trigger.triggeredBy ?? '?'}** (client identity \`${a.trigger.identity ?? '?'}\`)${a.spec.identity === 'signed' ? `; start ${signatureText(a.trigger.signature)}` : ''}`,
  );
  const meta = Object.entries(a.trigger.metadata);
  if (meta.length) out.push(`- metadata: ${meta.map(([k, v]) => `${k}=\`${v}\``).join(', ')}`);
  out.push(
    `- spec sha256: \`${a.spec.sha256 ?? '?'}\` (owner ${a.spec.owner ?? '?'}; ${a.spec.approvalsRequired ?? '?'} approval(s) from ${a.spec.approvers.join(', ') || 'anyone'})`,
  );
  out.push(
    `- strategy: **${a.spec.strategy}**${a.spec.steps.length ? ` (${a.spec.steps.join(' → ')} → graduate)` : ''}`,
  );
  if (a.policy) out.push(`- platform policy: ${policyLine(a.policy)}`);
  if (a.artifacts.candidate)
    out.push(`- candidate v${a.artifacts.candidate.version} sha256 \`${a.artifacts.candidate.sha256}\``);
  if (a.artifacts.baseline)
    out.push(`- baseline v${a.artifacts.baseline.version} sha256 \`${a.artifacts.baseline.sha256}\``);
  if (a.lineage) {
    out.push('- lineage (recorded at prepare time):');
    for (const line of lineageLines(a.lineage)) out.push(`  - ${line}`);
  } else if (a.lineageError) out.push(`- lineage: unavailable at prepare time: ${a.lineageError}`);
  out.push(
    `- outcome: **${a.outcome.outcome ?? a.outcome.status}** at ${a.outcome.at ?? '—'}: ${a.outcome.reason ?? '—'}`,
  );
  out.push(`- cost of the promotion: ${promotionCostText(a.cost)}`);
  const lastCost = [...a.analyses].reverse().find((x) => x.cost)?.cost;
  if (lastCost)
    out.push(`- cost per 1,000 inferences at the last look: ${lastCost.result}: ${lastCost.reason}`);
  const r = a.replay;
  out.push(
    `- replay against current workflow code: ${
      !r.checked
        ? 'not checked'
        : r.ok
          ? `OK (${r.against ?? ''})`
          : `FAILED: ${r.errors.map((e) => `${e.runId}: ${e.error}`).join('; ')}`
    }`,
  );
  out.push('');
  if (a.evaluation) out.push(`**Evaluation** (${a.evaluation.at}): ${verdict(a.evaluation.verdict)}`, '');
  if (a.integration) out.push(`**Integration** (${a.integration.at}): ${verdict(a.integration.verdict)}`, '');
  if (a.approvals.length) {
    out.push(
      '### Approvals',
      '',
      '| time | decision | via | approver | identity | signature | counted | verdict |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const x of a.approvals)
      out.push(
        `| ${cell(x.at)} | ${x.decision} | ${x.via} | ${cell(x.approver)} | ${cell(x.identity)} | ${cell(signatureText(x.signature))} | ${x.accepted ? 'yes' : 'no'} | ${cell(x.verdict ?? x.comment ?? x.reason)} |`,
      );
    out.push('');
  }
  if (a.stages.length) {
    out.push('### Stages', '', ...a.stages.map((s) => `- ${s.at} ${s.stage}`), '');
  }
  if (a.trafficChanges.length) {
    out.push(
      '### Traffic changes',
      '',
      '| time | stage | weights | mirror / preview | reason | applied | based on |',
      '| --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const c of a.trafficChanges)
      out.push(
        `| ${cell(c.at)} | ${cell(c.stage)} | ${cell(weights(c.weights))} | ${c.mirror ? `${c.mirror.percent}% → ${c.mirror.variant}` : c.preview ? `preview: ${cell(c.preview.header)}${c.preview.value ? `=${cell(c.preview.value)}` : ''} → ${c.preview.variant}` : '—'} | ${cell(c.reason)} | ${c.applied ? 'yes' : `no: ${cell(c.error)}`} | ${cell(basis(c.basedOn))} |`,
      );
    out.push('');
  }
  if (a.pauses.length) {
    out.push('### Pauses', '');
    for (const p of a.pauses)
      out.push(
        `- ${p.at} ${p.kind} by ${p.by ?? '—'}: ${p.reason}${p.resumedAt ? `; resumed ${p.resumedAt} by ${p.resumedBy ?? '?'}` : '; not resumed'}`,
      );
    out.push('');
  }
  if (a.manualActions.length) {
    out.push('### Manual actions', '');
    for (const m of a.manualActions)
      out.push(
        `- ${m.at} **${m.action}** by ${m.by ?? '—'} via ${m.via ?? 'signal'} (identity \`${m.identity ?? '?'}\`; ${signatureText(m.signature)})${m.reason ? `: ${m.reason}` : ''}${m.accepted === false ? ` — **refused**: ${m.verdict ?? ''}` : ''}`,
      );
    out.push('');
  }
  if (a.rollbacks.length) {
    out.push('### Rollbacks', '');
    for (const b of a.rollbacks)
      out.push(`- ${b.at} ${b.kind}${b.requestedBy ? ` (requested by ${b.requestedBy})` : ''}: ${b.reason}`);
    out.push('');
  }
  if (a.activityFailures.length) {
    out.push('### Activity failures', '');
    for (const f of a.activityFailures)
      out.push(`- ${f.at} ${f.activity} (attempt ${f.attempt}): ${f.error}`);
    out.push('');
  }
  if (a.watch) out.push(...watchMarkdown(a.watch), '');
  out.push(`Analyses recorded: ${a.analyses.length} (the JSON form lists each with its numbers).`, '');
  return out.join('\n');
}

export function auditMarkdown(doc: AuditDocument): string {
  const head = `# Audit of ${doc.model}\n\nGenerated ${doc.generatedAt} from the workflow event histories (schema v${doc.schemaVersion}).\n`;
  if (doc.promotions.length === 0) return `${head}\nNo promotions found.\n`;
  return [head, ...doc.promotions.map(promotionMarkdown)].join('\n');
}

export function listMarkdown(doc: AuditListDocument): string {
  const lines = [
    `# Promotions of ${doc.model}`,
    '',
    '| started | kind | version | status | stage | outcome | closed | run |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const p of doc.promotions)
    lines.push(
      `| ${cell(p.startedAt)} | ${p.kind} | ${cell(p.version)} | ${p.status} | ${cell(p.stage)} | ${cell(p.outcome)} | ${cell(p.closedAt)} | \`${p.runId}\` |`,
    );
  if (doc.promotions.length === 0) lines.push('', 'No promotions found.');
  return lines.join('\n') + '\n';
}

/** A decision's signature in words: "verified SHA256:… (alice)", "signed by a key revoked on …". */
export function signatureText(s: AuditSignature | undefined): string {
  if (!s || s.status === 'unsigned') return 'unsigned';
  if (s.status === 'verified') {
    const who = `${s.fingerprint ?? '?'} (${s.signer ?? '?'})`;
    return s.revokedOn ? `verified ${who}; signed by a key revoked on ${s.revokedOn}` : `verified ${who}`;
  }
  if (s.status === 'unverifiable')
    return `signed by ${s.fingerprint ?? '?'}, not verified: ${s.reason ?? ''}`;
  return `refused: ${s.reason ?? '?'}`;
}
