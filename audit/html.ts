/**
 * The audit as one self-contained HTML page (`runway audit MODEL --format html`): a timeline of
 * the stages and the candidate's traffic weight, a marker per look (numbers on hover) and per
 * rollback, approval and manual action, candidate against baseline on error rate and p99 per
 * look, and tables with every number. Built from the same report object as the JSON form.
 *
 * Hand-written SVG, no charting library: the page must open from a mail attachment or a change
 * record with no network (a Content-Security-Policy forbids every fetch), the charts are two step
 * lines and a few markers, and a library would add tens of kilobytes of script to each page for
 * that. Hover text is SVG <title>, which every browser shows without script.
 */
import { money } from '../common/cost';
import type { Verdict } from '../workflows/api';
import { lookNumbers, variantsOf, type LookNumbers } from './looks';
import type { AuditDocument, PromotionAudit } from './report';

const esc = (s: unknown): string =>
  String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');

const pct = (x: number | null): string => (x === null ? '—' : `${Math.round(x * 10000) / 100}%`);
const ms = (x: number | null): string => (x === null ? '—' : `${Math.round(x * 100) / 100} ms`);
const fixed = (x: number): string => String(Math.round(x * 10) / 10);

const COLORS = {
  pass: '#2e7d32',
  fail: '#c62828',
  inconclusive: '#f9a825',
  candidate: '#e65100',
  baseline: '#1565c0',
  stage: ['#e3f2fd', '#f3e5f5', '#e8f5e9', '#fff3e0', '#fce4ec', '#e0f7fa', '#f1f8e9', '#ede7f6'],
} as const;

/** Time → x on a chart spanning [t0, t1]. */
function scale(t0: number, t1: number, x0: number, x1: number): (iso: string) => number {
  const span = Math.max(1, t1 - t0);
  return (iso) => x0 + ((Math.min(t1, Math.max(t0, Date.parse(iso))) - t0) / span) * (x1 - x0);
}

function span(a: PromotionAudit): { t0: number; t1: number } {
  const times = [
    a.trigger.at,
    a.outcome.at,
    ...a.stages.map((s) => s.at),
    ...a.trafficChanges.map((c) => c.at),
    ...a.analyses.map((x) => x.at),
  ]
    .filter((t): t is string => !!t)
    .map((t) => Date.parse(t))
    .filter((t) => Number.isFinite(t));
  const t0 = times.length ? Math.min(...times) : 0;
  return { t0, t1: times.length ? Math.max(...times, t0 + 1000) : 1000 };
}

function elapsed(msSpan: number): string {
  const s = Math.round(msSpan / 1000);
  if (s < 120) return `+${s}s`;
  const m = Math.round(s / 60);
  return m < 120 ? `+${m}m` : `+${Math.round(m / 60)}h`;
}

function verdictTitle(v: Verdict): string {
  return `${v.check}: ${v.result} — ${v.reason}`;
}

function lookTitle(l: LookNumbers, names: { candidate: string; baseline?: string }): string {
  const lines = [`${l.at} ${l.phase} look: ${l.result}`];
  lines.push(
    `${names.candidate}: error rate ${pct(l.candidate.errorRate)}, p99 ${ms(l.candidate.p99Ms)}${l.candidate.requests !== null ? `, ${l.candidate.requests} requests` : ''}`,
  );
  if (names.baseline)
    lines.push(
      `${names.baseline}: error rate ${pct(l.baseline.errorRate)}, p99 ${ms(l.baseline.p99Ms)}${l.baseline.requests !== null ? `, ${l.baseline.requests} requests` : ''}`,
    );
  for (const v of l.verdicts) lines.push(verdictTitle(v));
  return lines.join('\n');
}

/** The timeline: stage bands, the candidate's weight (and mirror) over time, and markers. */
function timeline(a: PromotionAudit, looks: LookNumbers[]): string {
  const W = 960;
  const H = 300;
  const left = 48;
  const right = W - 16;
  const { t0, t1 } = span(a);
  const x = scale(t0, t1, left, right);
  const { candidate } = variantsOf(a);
  const parts: string[] = [];
  // Stage bands.
  const stages = a.stages.filter((s) => s.stage !== 'done');
  for (const [i, s] of stages.entries()) {
    const from = x(s.at);
    const to = stages[i + 1] ? x(stages[i + 1]!.at) : x(a.outcome.at ?? new Date(t1).toISOString());
    const fill = COLORS.stage[i % COLORS.stage.length];
    // A band too narrow for its name keeps it on hover only.
    const fits = to - from >= s.stage.length * 6.5 + 6;
    parts.push(
      `<g class="stage" data-stage="${esc(s.stage)}"><title>${esc(`${s.stage} from ${s.at}`)}</title>` +
        `<rect x="${fixed(from)}" y="8" width="${fixed(Math.max(1, to - from))}" height="226" fill="${fill}"/>` +
        (fits ? `<text x="${fixed(from + 3)}" y="22" font-size="11">${esc(s.stage)}</text>` : '') +
        '</g>',
    );
  }
  // Weight axis (0–100% on y 40..210).
  const y = (w: number): number => 210 - (w / 100) * 170;
  for (const w of [0, 25, 50, 75, 100]) {
    parts.push(
      `<line x1="${left}" x2="${right}" y1="${fixed(y(w))}" y2="${fixed(y(w))}" stroke="#ccc" stroke-dasharray="2 3"/>` +
        `<text x="${left - 4}" y="${fixed(y(w) + 4)}" font-size="10" text-anchor="end">${w}%</text>`,
    );
  }
  // The candidate's weight as a step line; the mirror percent dashed.
  const weightPts: string[] = [];
  const mirrorPts: string[] = [];
  let w = 0;
  let m = 0;
  let px = left;
  for (const c of a.trafficChanges.filter((t) => t.applied)) {
    const cx = x(c.at);
    weightPts.push(`${fixed(px)},${fixed(y(w))}`, `${fixed(cx)},${fixed(y(w))}`);
    mirrorPts.push(`${fixed(px)},${fixed(y(m))}`, `${fixed(cx)},${fixed(y(m))}`);
    w = c.weights[candidate] ?? 0;
    m = c.mirror && c.mirror.variant === candidate ? c.mirror.percent : 0;
    px = cx;
    parts.push(
      `<circle class="traffic-change" cx="${fixed(cx)}" cy="${fixed(y(w))}" r="3" fill="${COLORS.candidate}"><title>${esc(
        `${c.at} ${c.reason}: ${Object.entries(c.weights)
          .map(([v, p]) => `${v} ${p}%`)
          .join(', ')}${c.mirror ? `, mirror ${c.mirror.percent}% → ${c.mirror.variant}` : ''}`,
      )}</title></circle>`,
    );
  }
  weightPts.push(`${fixed(px)},${fixed(y(w))}`, `${fixed(right)},${fixed(y(w))}`);
  mirrorPts.push(`${fixed(px)},${fixed(y(m))}`, `${fixed(right)},${fixed(y(m))}`);
  parts.push(
    `<polyline class="mirror-line" points="${mirrorPts.join(' ')}" fill="none" stroke="${COLORS.candidate}" stroke-width="1.5" stroke-dasharray="5 4" opacity="0.6"/>`,
    `<polyline class="weight-line" points="${weightPts.join(' ')}" fill="none" stroke="${COLORS.candidate}" stroke-width="2.5"/>`,
  );
  // Looks: one marker each, coloured by the worst verdict, numbers on hover.
  const names = variantsOf(a);
  for (const l of looks) {
    parts.push(
      `<circle class="verdict-marker" data-result="${l.result}" cx="${fixed(x(l.at))}" cy="226" r="5" fill="${COLORS[l.result]}" stroke="#fff"><title>${esc(lookTitle(l, names))}</title></circle>`,
    );
  }
  // People: approvals (triangles) and manual actions (diamonds) on their own lane.
  for (const p of a.approvals) {
    const cx = x(p.at);
    const colour = p.decision === 'approve' && p.accepted ? COLORS.pass : COLORS.fail;
    parts.push(
      `<path class="approval-marker" d="M${fixed(cx)},244 l6,10 h-12 z" fill="${colour}"><title>${esc(
        `${p.at} ${p.decision} by ${p.approver ?? '?'} via ${p.via}${p.accepted ? '' : ' (not counted)'}: ${p.verdict ?? p.comment ?? p.reason ?? ''}`,
      )}</title></path>`,
    );
  }
  for (const mAction of a.manualActions) {
    const cx = x(mAction.at);
    parts.push(
      `<path class="manual-marker" d="M${fixed(cx)},243 l6,6 l-6,6 l-6,-6 z" fill="#6a1b9a"><title>${esc(
        `${mAction.at} ${mAction.action} by ${mAction.by ?? '?'}${mAction.reason ? `: ${mAction.reason}` : ''}`,
      )}</title></path>`,
    );
  }
  // Rollbacks: a red line across the chart at the moment traffic went back, with its reason.
  for (const r of a.rollbacks) {
    const cx = x(r.at);
    const label = Math.min(right - 31, Math.max(left + 31, cx));
    parts.push(
      `<g class="rollback-marker" data-kind="${r.kind}"><title>${esc(`${r.at} ${r.kind} rollback: ${r.reason}`)}</title>` +
        `<line x1="${fixed(cx)}" x2="${fixed(cx)}" y1="8" y2="256" stroke="${COLORS.fail}" stroke-width="2.5"/>` +
        `<rect x="${fixed(label - 30)}" y="30" width="60" height="16" rx="3" fill="${COLORS.fail}"/>` +
        `<text x="${fixed(label)}" y="42" font-size="11" fill="#fff" text-anchor="middle">rollback</text></g>`,
    );
  }
  // Time axis: elapsed since the start.
  for (let i = 0; i <= 6; i++) {
    const t = t0 + ((t1 - t0) * i) / 6;
    const tx = left + ((right - left) * i) / 6;
    parts.push(
      `<text x="${fixed(tx)}" y="${H - 14}" font-size="10" text-anchor="middle">${elapsed(t - t0)}</text>`,
    );
  }
  parts.push(
    `<text x="${left}" y="${H - 2}" font-size="10">time since ${esc(new Date(t0).toISOString())}; lanes: stages, ${esc(candidate)}'s weight (mirror dashed), looks, people</text>`,
  );
  return `<svg class="timeline" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="timeline of stages, traffic weights and verdicts" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>`;
}

/** Candidate against baseline on one number per look (error rate or p99). */
function metricChart(
  a: PromotionAudit,
  looks: LookNumbers[],
  pick: (l: LookNumbers, side: 'candidate' | 'baseline') => number | null,
  label: string,
  format: (x: number | null) => string,
  cls: string,
  /** The axis' top when every value is 0 (a flat line at the bottom, not at 100%). */
  floor: number,
): string {
  const W = 470;
  const H = 200;
  const left = 56;
  const right = W - 10;
  const top = 24;
  const bottom = H - 30;
  const names = variantsOf(a);
  const values = looks.flatMap((l) => [pick(l, 'candidate'), pick(l, 'baseline')]).filter((v) => v !== null);
  const max = Math.max(...values, 0) || floor;
  const { t0, t1 } = span(a);
  const x = scale(t0, t1, left, right);
  const y = (v: number): number => bottom - (v / max) * (bottom - top);
  const parts = [
    `<text x="${left}" y="14" font-size="12" font-weight="bold">${esc(label)}</text>`,
    `<line x1="${left}" x2="${right}" y1="${bottom}" y2="${bottom}" stroke="#999"/>`,
    `<text x="${left - 4}" y="${top + 4}" font-size="10" text-anchor="end">${esc(format(max))}</text>`,
    `<text x="${left - 4}" y="${bottom + 4}" font-size="10" text-anchor="end">0</text>`,
  ];
  for (const side of ['baseline', 'candidate'] as const) {
    const name = side === 'candidate' ? names.candidate : names.baseline;
    if (!name) continue;
    const pts = looks
      .map((l) => ({ l, v: pick(l, side) }))
      .filter((p): p is { l: LookNumbers; v: number } => p.v !== null);
    if (pts.length > 1)
      parts.push(
        `<polyline points="${pts.map((p) => `${fixed(x(p.l.at))},${fixed(y(p.v))}`).join(' ')}" fill="none" stroke="${COLORS[side]}" stroke-width="2"/>`,
      );
    for (const p of pts)
      parts.push(
        `<circle class="${cls}-point" data-side="${side}" cx="${fixed(x(p.l.at))}" cy="${fixed(y(p.v))}" r="3.5" fill="${COLORS[side]}"><title>${esc(`${p.l.at} ${p.l.phase}: ${name} ${label} ${format(p.v)}`)}</title></circle>`,
      );
  }
  for (const r of a.rollbacks)
    parts.push(
      `<line x1="${fixed(x(r.at))}" x2="${fixed(x(r.at))}" y1="${top}" y2="${bottom}" stroke="${COLORS.fail}" stroke-width="1.5" stroke-dasharray="4 3"/>`,
    );
  parts.push(
    `<text x="${left}" y="${H - 8}" font-size="10" fill="${COLORS.candidate}">● candidate ${esc(names.candidate)}</text>`,
  );
  if (names.baseline)
    parts.push(
      `<text x="${left + 150}" y="${H - 8}" font-size="10" fill="${COLORS.baseline}">● baseline ${esc(names.baseline)}</text>`,
    );
  if (values.length === 0)
    parts.push(
      `<text x="${(left + right) / 2}" y="${(top + bottom) / 2}" font-size="11" text-anchor="middle" fill="#777">no numbers recorded</text>`,
    );
  return `<svg class="${cls}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(label)} per look" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>`;
}

function table(cls: string, head: string[], rows: string[][]): string {
  return (
    `<table class="${cls}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

const td = (s: unknown, cls = ''): string => `<td${cls ? ` class="${cls}"` : ''}>${esc(s)}</td>`;
const badge = (v: Verdict | undefined): string =>
  v
    ? `<td class="r-${esc(v.result)}" title="${esc(v.reason)}">${esc(v.result)}</td>`
    : '<td class="r-none">—</td>';

function costSection(a: PromotionAudit, looks: LookNumbers[]): string {
  const c = a.cost;
  const cur = c.currency ?? c.price?.currency ?? 'USD';
  const rows = c.phases.map((p) => [
    td(p.phase),
    td(p.replicaHours.toFixed(4)),
    td(p.cost === undefined ? '—' : money(p.cost, cur)),
  ]);
  rows.push([
    '<td><strong>total</strong></td>',
    td(c.replicaHours.toFixed(4)),
    td(c.cost === undefined ? 'no price' : money(c.cost, cur)),
  ]);
  const price = c.price
    ? `<p class="price">Replica price ${esc(money(c.price.perHour, c.price.currency))}/h (${esc(c.price.basis)}), ${c.price.source === 'history' ? 'as the looks recorded it' : "from today's platform config"}.</p>`
    : '<p class="price">No price: set <code>cost</code> in the platform config to price replica-hours.</p>';
  const lastCost = [...looks].reverse().find((l) => l.verdicts.some((v) => v.check === 'cost'));
  const per1k = lastCost
    ? `<p class="per1k">Last look: ${esc(lastCost.verdicts.find((v) => v.check === 'cost')?.reason)}</p>`
    : '';
  return `<h3>Cost of the promotion</h3>${table('cost', ['phase', 'replica-hours', 'cost'], rows)}${price}${per1k}`;
}

function promotionSection(a: PromotionAudit, index: number): string {
  const names = variantsOf(a);
  const looks = a.analyses.map((x) => lookNumbers(x, names));
  const outcome = a.outcome.outcome ?? a.outcome.status;
  const summary = [
    ['workflow', `${a.workflowId} (${a.runs.map((r) => `${r.runId}: ${r.closedAs}`).join(' → ')})`],
    ['started', `${a.trigger.at} by ${a.trigger.triggeredBy ?? '?'} (${a.trigger.identity ?? '?'})`],
    [
      'candidate',
      `${names.candidate}${a.artifacts.candidate ? ` sha256 ${a.artifacts.candidate.sha256.slice(0, 12)}…` : ''}`,
    ],
    [
      'baseline',
      names.baseline
        ? `${names.baseline}${a.artifacts.baseline ? ` sha256 ${a.artifacts.baseline.sha256.slice(0, 12)}…` : ''}`
        : 'none (first release)',
    ],
    ['outcome', `${outcome} at ${a.outcome.at ?? '—'}`],
    ['reason', a.outcome.reason ?? '—'],
    [
      'cost',
      `${a.cost.replicaHours.toFixed(4)} replica-hours${a.cost.cost !== undefined ? ` = ${money(a.cost.cost, a.cost.currency ?? 'USD')}` : ''}`,
    ],
  ];
  const verdictRows = looks.map((l, i) => {
    const src = a.analyses[i]!;
    return [
      td(l.at),
      td(l.phase),
      badge(src.guard),
      badge(src.comparison ?? src.experiment),
      badge(src.cost),
      td(pct(l.candidate.errorRate)),
      td(pct(l.baseline.errorRate)),
      td(ms(l.candidate.p99Ms)),
      td(ms(l.baseline.p99Ms)),
      td(l.verdicts.map((v) => `${v.check}: ${v.reason}`).join(' | '), 'reason'),
    ];
  });
  const approvals = a.approvals.map((p) => [
    td(p.at),
    td(p.decision),
    td(p.via),
    td(p.approver ?? '—'),
    td(p.identity ?? '—'),
    td(p.accepted ? 'yes' : 'no'),
    td(p.verdict ?? p.comment ?? p.reason ?? ''),
  ]);
  const actions = [
    ...a.manualActions.map((m) => [
      td(m.at),
      td(m.action),
      td(m.by ?? '—'),
      td(m.identity ?? '—'),
      td(m.reason ?? ''),
    ]),
    ...a.pauses
      .filter((p) => p.kind === 'inconclusive')
      .map((p) => [td(p.at), td('paused (inconclusive)'), td('workflow'), td('—'), td(p.reason)]),
  ];
  const changes = a.trafficChanges.map((c) => [
    td(c.at),
    td(c.stage ?? '—'),
    td(
      Object.entries(c.weights)
        .map(([v, p]) => `${v} ${p}%`)
        .join(', '),
    ),
    td(c.mirror ? `${c.mirror.percent}% → ${c.mirror.variant}` : '—'),
    td(c.reason),
    td(c.applied ? 'yes' : `no: ${c.error ?? ''}`),
  ]);
  const rollbacks = a.rollbacks.map((r) => [td(r.at), td(r.kind), td(r.requestedBy ?? '—'), td(r.reason)]);
  return `<section class="promotion" id="promotion-${index}" data-outcome="${esc(outcome)}">
<h2>${esc(a.model ?? '?')} ${esc(names.candidate)} — <span class="outcome o-${esc(outcome)}">${esc(outcome)}</span></h2>
<dl class="summary">${summary.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>
<figure>${timeline(a, looks)}<figcaption>Stages, ${esc(names.candidate)}'s share of traffic, one dot per look (green pass, amber inconclusive, red fail; hover for the numbers), ▲ approvals, ◆ manual actions, red line: rollback.</figcaption></figure>
<figure class="pair">${metricChart(a, looks, (l, s) => l[s].errorRate, 'error rate', pct, 'error-chart', 0.01)}${metricChart(a, looks, (l, s) => l[s].p99Ms, 'p99 latency', ms, 'p99-chart', 1)}</figure>
${a.rollbacks.length ? `<h3>Rollbacks</h3>${table('rollbacks', ['time', 'kind', 'requested by', 'reason'], rollbacks)}` : ''}
<h3>Verdicts (${looks.length} looks)</h3>
${table('verdicts', ['time', 'phase', 'guard', 'comparison', 'cost', `${names.candidate} errors`, `${names.baseline ?? 'baseline'} errors`, `${names.candidate} p99`, `${names.baseline ?? 'baseline'} p99`, 'reasons'], verdictRows)}
${a.evaluation ? `<p><strong>Evaluation</strong> (${esc(a.evaluation.at)}): ${esc(verdictTitle(a.evaluation.verdict))}</p>` : ''}
${a.integration ? `<p><strong>Integration</strong> (${esc(a.integration.at)}): ${esc(verdictTitle(a.integration.verdict))}</p>` : ''}
<h3>Approvals</h3>
${approvals.length ? table('approvals', ['time', 'decision', 'via', 'approver', 'identity', 'counted', 'verdict'], approvals) : '<p>None.</p>'}
<h3>Manual actions</h3>
${actions.length ? table('actions', ['time', 'action', 'by', 'identity', 'reason'], actions) : '<p>None.</p>'}
<h3>Traffic changes</h3>
${table('traffic', ['time', 'stage', 'weights', 'mirror', 'reason', 'applied'], changes)}
${costSection(a, looks)}
</section>`;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-top:1px solid #ddd;padding-top:16px}
h3{font-size:15px;margin:18px 0 6px}.meta{color:#666;margin:0}
dl.summary{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dt{color:#666}dd{margin:0}figure{margin:10px 0}figure.pair{display:flex;gap:12px;flex-wrap:wrap}
figcaption{color:#666;font-size:12px}svg{background:#fff;border:1px solid #eee;max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:12px;margin:4px 0}
th,td{border:1px solid #e0e0e0;padding:3px 6px;text-align:left;vertical-align:top}th{background:#fafafa}
td.reason{max-width:420px}.r-pass{color:#2e7d32}.r-fail{color:#c62828;font-weight:bold}.r-inconclusive{color:#b07b00}
.outcome{padding:1px 8px;border-radius:10px;color:#fff;background:#555}.o-promoted{background:#2e7d32}
.o-rolled_back,.o-failed{background:#c62828}.o-rejected,.o-expired,.o-cancelled{background:#b07b00}
`;

export function auditHtml(doc: AuditDocument): string {
  const body = doc.promotions.length
    ? doc.promotions.map((p, i) => promotionSection(p, i)).join('\n')
    : '<p>No promotions found.</p>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>runway audit — ${esc(doc.model)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Audit of ${esc(doc.model)}</h1>
<p class="meta">Generated ${esc(doc.generatedAt)} from the workflow event histories (schema v${doc.schemaVersion}); the JSON form (<code>--format json</code>) holds every number.</p>
${body}
</body>
</html>
`;
}
