/** The audit as Markdown: what an auditor pastes into a change record. */
import { lineageLines } from './lineage';
import type { Verdict } from '../workflows/api';
import type { AuditAnalysis, AuditDocument, AuditListDocument, PromotionAudit } from './report';

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
    `last: ${[last.guard, last.comparison, last.experiment].filter(Boolean).map(verdict).join('; ')}`,
  ];
  if (analyses.some((a) => a.gap)) parts.push('gap in data');
  return parts.join('; ');
}

export function promotionMarkdown(a: PromotionAudit): string {
  const out: string[] = [];
  out.push(`## ${a.model ?? '?'} v${a.version ?? '?'} — ${a.outcome.outcome ?? a.outcome.status}`);
  out.push('');
  out.push(
    `- workflow: \`${a.workflowId}\`, runs: ${a.runs.map((r) => `\`${r.runId}\` (${r.closedAs})`).join(' → ')}`,
  );
  out.push(
    `- started: ${a.trigger.at} by **${a.trigger.triggeredBy ?? '?'}** (client identity \`${a.trigger.identity ?? '?'}\`)`,
  );
  const meta = Object.entries(a.trigger.metadata);
  if (meta.length) out.push(`- metadata: ${meta.map(([k, v]) => `${k}=\`${v}\``).join(', ')}`);
  out.push(
    `- spec sha256: \`${a.spec.sha256 ?? '?'}\` (owner ${a.spec.owner ?? '?'}; ${a.spec.approvalsRequired ?? '?'} approval(s) from ${a.spec.approvers.join(', ') || 'anyone'})`,
  );
  out.push(
    `- strategy: **${a.spec.strategy}**${a.spec.steps.length ? ` (${a.spec.steps.join(' → ')} → graduate)` : ''}`,
  );
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
      '| time | decision | via | approver | identity | counted | verdict |',
      '| --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const x of a.approvals)
      out.push(
        `| ${cell(x.at)} | ${x.decision} | ${x.via} | ${cell(x.approver)} | ${cell(x.identity)} | ${x.accepted ? 'yes' : 'no'} | ${cell(x.verdict ?? x.comment ?? x.reason)} |`,
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
        `- ${m.at} **${m.action}** by ${m.by ?? '—'} (identity \`${m.identity ?? '?'}\`)${m.reason ? `: ${m.reason}` : ''}`,
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
