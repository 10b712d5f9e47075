/**
 * The candidate's training run as prepareCandidate recorded it in the history: read back by the
 * audit and by `runway status`, so neither asks the registry (which may have changed or be gone).
 */
import type { PreparedPromotion } from '../activities/contracts';
import type { Lineage } from '../registry/registry';
import { first, isRecord, type HistoryEvent } from './events';

/** The last prepareCandidate result in a run's events. */
export function preparedFromEvents(events: readonly HistoryEvent[]): PreparedPromotion | undefined {
  const prepares = new Set<number>();
  let found: PreparedPromotion | undefined;
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s?.activityType?.name === 'prepareCandidate') prepares.add(Number(e.eventId ?? 0));
    const done = e.activityTaskCompletedEventAttributes;
    if (done && prepares.has(Number(done.scheduledEventId ?? 0))) {
      const result = first(done.result);
      if (isRecord(result)) found = result as unknown as PreparedPromotion;
    }
  }
  return found;
}

/** Human lines: run, commit, datasets, params, metrics. */
export function lineageLines(l: Lineage): string[] {
  const out = [
    `run ${l.runId}${l.runName ? ` (${l.runName})` : ''}${l.user ? ` by ${l.user}` : ''}${l.runUrl ? ` ${l.runUrl}` : ''}`,
  ];
  if (l.gitCommit) out.push(`commit ${l.gitCommit}${l.sourceName ? ` (${l.sourceName})` : ''}`);
  for (const d of l.datasets)
    out.push(
      `dataset ${d.name} digest ${d.digest}${d.context ? ` [${d.context}]` : ''}${d.source ? ` from ${d.source}` : ''}`,
    );
  const params = Object.entries(l.params);
  if (params.length) out.push(`params ${params.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  const metrics = Object.entries(l.metrics);
  if (metrics.length) out.push(`metrics ${metrics.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  if (l.truncated) out.push('(more params or metrics in the registry than recorded here)');
  return out;
}
