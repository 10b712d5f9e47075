/**
 * How long route changes took, read from a promotion's history (server timestamps): each
 * setTraffic from scheduled to completed (the route is set at the router when it completes), and
 * a rollback's reaction time, from the look that decided it to the route back on the baseline.
 * What the blue-green strategy promises (an instant switch, an instant revert) is measured here.
 */
import { eventId, eventTime, first, isRecord, type HistoryEvent } from './events';

export interface RouteChangeTiming {
  reason: string;
  weights: Record<string, number>;
  scheduledAt: string;
  completedAt: string;
  /** Scheduled to completed: sizing the fleet around the change and setting the route. */
  ms: number;
}

export interface RevertTiming {
  reason: string;
  /** The look (analyzeInterval) whose verdict ended the promotion completed. */
  decidedAt: string;
  /** The route back on the baseline completed. */
  revertedAt: string;
  ms: number;
}

const ms = (iso: string): number => new Date(iso).getTime();

/** Every setTraffic the run completed, in order. */
export function routeChanges(events: HistoryEvent[]): RouteChangeTiming[] {
  const scheduled = new Map<number, { at: string; input: unknown }>();
  const out: RouteChangeTiming[] = [];
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s?.activityType?.name === 'setTraffic')
      scheduled.set(eventId(e), { at: eventTime(e), input: first(s.input) });
    const c = e.activityTaskCompletedEventAttributes;
    const from = c ? scheduled.get(Number(c.scheduledEventId ?? 0)) : undefined;
    if (!from) continue;
    const input = isRecord(from.input) ? from.input : {};
    const variants = Array.isArray(input.variants) ? input.variants : [];
    const completedAt = eventTime(e);
    out.push({
      reason: typeof input.reason === 'string' ? input.reason : '',
      weights: Object.fromEntries(variants.filter(isRecord).map((v) => [String(v.name), Number(v.weight)])),
      scheduledAt: from.at,
      completedAt,
      ms: ms(completedAt) - ms(from.at),
    });
  }
  return out;
}

/**
 * The automatic rollback's reaction: from the last look completed before the rollback route was
 * scheduled to that route's completion. Undefined when the run did not roll back after a look.
 */
export function revertTiming(events: HistoryEvent[]): RevertTiming | undefined {
  const lookTypes = new Set<number>();
  let lastLookAt: string | undefined;
  const scheduled = new Map<number, { at: string; reason: string; decidedAt?: string }>();
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s?.activityType?.name === 'analyzeInterval') lookTypes.add(eventId(e));
    if (s?.activityType?.name === 'setTraffic') {
      const input = first(s.input);
      const reason = isRecord(input) && typeof input.reason === 'string' ? input.reason : '';
      scheduled.set(eventId(e), { at: eventTime(e), reason, decidedAt: lastLookAt });
    }
    const c = e.activityTaskCompletedEventAttributes;
    if (!c) continue;
    const id = Number(c.scheduledEventId ?? 0);
    if (lookTypes.has(id)) lastLookAt = eventTime(e);
    const change = scheduled.get(id);
    if (change && change.reason.startsWith('rollback:') && change.decidedAt) {
      const revertedAt = eventTime(e);
      return {
        reason: change.reason,
        decidedAt: change.decidedAt,
        revertedAt,
        ms: ms(revertedAt) - ms(change.decidedAt),
      };
    }
  }
  return undefined;
}
