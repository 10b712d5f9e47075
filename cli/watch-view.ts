/**
 * `runway status MODEL --watch` on a terminal: the weights as bars, the path traffic took, and
 * the last verdicts, redrawn in place and never wider than the terminal (80 columns by default).
 * A pure function of the status, so tests pin its width.
 */
import { formatDuration } from '../specs/duration';
import type { PromotionStatus, Verdict } from '../workflows/api';
import type { LiveFacts } from './progress';

export interface WatchOptions {
  /** Columns to fit (default 80; at least 40). */
  width?: number;
  /** Shown at the top right, e.g. the local time of the look. */
  clock?: string;
}

const MARK = { pass: 'ok ', fail: 'FAIL', inconclusive: '?? ' } as const;

/** Cuts a line to `width`, marking the cut. */
function fit(line: string, width: number): string {
  return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
}

/** Word-wraps `text` into lines of `width` after a first-line prefix; at most `max` lines. */
function wrap(prefix: string, text: string, width: number, max: number): string[] {
  const indent = ' '.repeat(prefix.length);
  const room = width - prefix.length;
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > room) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  const lines = out.slice(0, max).map((l, i) => fit(`${i === 0 ? prefix : indent}${l}`, width));
  if (out.length > max) lines[max - 1] = fit(`${lines[max - 1]!}${' '.repeat(width)}`, width);
  return lines.length ? lines : [prefix.trimEnd()];
}

function bar(weight: number, cells: number): string {
  const full = Math.round((Math.max(0, Math.min(100, weight)) / 100) * cells);
  return '█'.repeat(full) + '·'.repeat(cells - full);
}

/** The weights each traffic change set, oldest first, as "0% → 10% → 25%" for the candidate. */
function path(s: PromotionStatus, candidate: string, width: number): string | undefined {
  const changes = s.recentTraffic ?? [];
  if (changes.length === 0) return undefined;
  const steps = changes.map((c) => {
    const w = `${c.weights[candidate] ?? 0}%`;
    return c.mirror && c.mirror.variant === candidate ? `${w}+mirror` : w;
  });
  let text = steps.join(' → ');
  // Oldest steps give way first: the recent ones matter on a live view.
  while (text.length > width - 7 && steps.length > 1) {
    steps.shift();
    text = `… ${steps.join(' → ')}`;
  }
  return fit(`path   ${text}`, width);
}

export function watchView(s: PromotionStatus, live: LiveFacts = {}, opts: WatchOptions = {}): string {
  const width = Math.max(40, Math.floor(opts.width ?? 80));
  const candidate = `v${s.version}`;
  const lines: string[] = [];
  const title = `${s.model} ${candidate}${s.baselineVersion ? ` vs v${s.baselineVersion}` : ''}`;
  const clock = opts.clock ?? '';
  const head = clock ? fit(title, width - clock.length - 2) : fit(title, width);
  lines.push(clock ? `${head}${' '.repeat(width - head.length - clock.length)}${clock}` : head);
  const step = s.step
    ? ` step ${s.step.index + 1}: ${s.step.weight}% held ${formatDuration(s.step.heldMs)}/${formatDuration(s.step.pauseMs)}`
    : '';
  lines.push(fit(`stage  ${s.stage}${step}${s.paused ? '  PAUSED' : ''}`, width));
  const weights = Object.keys(s.weights).length ? s.weights : (live.routed ?? {});
  const source = Object.keys(s.weights).length ? '' : ' (router)';
  const names = Object.keys(weights).sort((a, b) => (a === candidate ? -1 : b === candidate ? 1 : 0));
  const label = Math.min(12, Math.max(...names.map((n) => n.length), 2));
  // name, a space, the bar, a space, "100%", the source: the bar takes what is left.
  const cells = Math.max(10, width - label - 1 - 1 - 4 - source.length - 2);
  for (const n of names) {
    const w = weights[n] ?? 0;
    lines.push(
      fit(`${n.slice(0, label).padEnd(label)} ${bar(w, cells)} ${`${w}%`.padStart(4)}${source}`, width),
    );
  }
  if (names.length === 0) lines.push('no route yet');
  if (s.mirror)
    lines.push(fit(`mirror ${s.mirror.percent}% of requests copied to ${s.mirror.variant}`, width));
  const p = path(s, candidate, width);
  if (p) lines.push(p);
  if (s.pauseReason) lines.push(...wrap('paused ', s.pauseReason, width, 2));
  if (s.pendingAction) lines.push(...wrap('wait   ', s.pendingAction, width, 2));
  if (s.outcome) lines.push(...wrap(`${s.outcome.toUpperCase()} `, s.outcomeReason ?? '', width, 3));
  if (live.hint) lines.push(...wrap('note   ', live.hint, width, 2));
  const verdicts: Verdict[] = s.lastVerdicts;
  if (verdicts.length) {
    lines.push(`last verdicts ${'─'.repeat(width - 14)}`);
    for (const v of verdicts) {
      const prefix = `${MARK[v.result] ?? '?  '} ${v.check.padEnd(10)} `;
      lines.push(...wrap(prefix, v.reason, width, 3));
    }
  }
  lines.push(
    fit(
      `approvals ${s.approvals.map((a) => a.approver).join(', ') || 'none'} (${s.approvals.length}/${s.approvalsRequired})  started by ${s.triggeredBy}`,
      width,
    ),
  );
  return lines.join('\n');
}
