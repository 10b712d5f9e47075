/**
 * Windows over cumulative snapshots: what happened between two reads. A restart of the producer
 * (epoch change) or any counter going backwards is reported as a gap, never as negative traffic.
 */
import type { Histogram, MetricsSnapshot, VariantCounters } from './source';

export interface MetricsWindow {
  model: string;
  from: string;
  to: string;
  /** True when the counters reset in between: the deltas are unknown and `variants` is empty. */
  gap: boolean;
  gapReason?: string;
  variants: Record<string, VariantCounters>;
}

export function emptyHistogram(buckets: readonly number[] = []): Histogram {
  return {
    buckets: [...buckets.map((le) => ({ le, count: 0 })), { le: Infinity, count: 0 }],
    sum: 0,
    count: 0,
  };
}

export function emptyCounters(): VariantCounters {
  return {
    requests: 0,
    errors: 0,
    clientErrors: 0,
    latency: emptyHistogram(),
    mirrored: 0,
    mirrorDropped: 0,
    shadow: {
      agree: 0,
      disagree: 0,
      error: 0,
      latency: emptyHistogram(),
      moves: { up: 0, down: 0, same: 0 },
      decisions: { agree: 0, flipUp: 0, flipDown: 0 },
    },
    rewards: { count: 0, sum: 0 },
  };
}

class Reset extends Error {}

function diff(next: number, prev: number, what: string): number {
  const d = next - prev;
  // Float sums may wobble by rounding; anything beyond that is a real reset.
  if (d < -1e-9 * Math.max(1, Math.abs(prev))) throw new Reset(`${what} went from ${prev} to ${next}`);
  return Math.max(0, d);
}

function diffHistogram(next: Histogram, prev: Histogram, what: string): Histogram {
  const prevBy = new Map(prev.buckets.map((b) => [b.le, b.count]));
  return {
    buckets: next.buckets.map((b) => ({
      le: b.le,
      count: diff(b.count, prevBy.get(b.le) ?? 0, `${what} le=${b.le}`),
    })),
    sum: diff(next.sum, prev.sum, `${what} sum`),
    count: diff(next.count, prev.count, `${what} count`),
  };
}

/** Field-wise deltas of a group of counters; snapshots recorded before the group existed count as zero. */
function diffRecord<K extends string>(
  n: Record<K, number> | undefined,
  p: Record<K, number> | undefined,
  what: string,
  zero: Record<K, number>,
): Record<K, number> {
  const out = { ...zero };
  for (const k of Object.keys(zero) as K[]) out[k] = diff(n?.[k] ?? 0, p?.[k] ?? 0, `${what}.${k}`);
  return out;
}

function diffCounters(n: VariantCounters, p: VariantCounters, v: string): VariantCounters {
  return {
    requests: diff(n.requests, p.requests, `${v} requests`),
    errors: diff(n.errors, p.errors, `${v} errors`),
    clientErrors: diff(n.clientErrors, p.clientErrors, `${v} clientErrors`),
    latency: diffHistogram(n.latency, p.latency, `${v} latency`),
    mirrored: diff(n.mirrored, p.mirrored, `${v} mirrored`),
    mirrorDropped: diff(n.mirrorDropped, p.mirrorDropped, `${v} mirrorDropped`),
    shadow: {
      agree: diff(n.shadow.agree, p.shadow.agree, `${v} shadow.agree`),
      disagree: diff(n.shadow.disagree, p.shadow.disagree, `${v} shadow.disagree`),
      error: diff(n.shadow.error, p.shadow.error, `${v} shadow.error`),
      latency: diffHistogram(n.shadow.latency, p.shadow.latency, `${v} shadow.latency`),
      moves: diffRecord(n.shadow.moves, p.shadow.moves, `${v} shadow.moves`, { up: 0, down: 0, same: 0 }),
      decisions: diffRecord(n.shadow.decisions, p.shadow.decisions, `${v} shadow.decisions`, {
        agree: 0,
        flipUp: 0,
        flipDown: 0,
      }),
    },
    rewards: {
      count: diff(n.rewards.count, p.rewards.count, `${v} rewards.count`),
      sum: diff(n.rewards.sum, p.rewards.sum, `${v} rewards.sum`),
    },
    ...(n.feedbackRejected !== undefined && p.feedbackRejected !== undefined
      ? { feedbackRejected: diff(n.feedbackRejected, p.feedbackRejected, `${v} feedbackRejected`) }
      : {}),
  };
}

/**
 * Per-variant deltas from `prev` to `next`. A variant new in `next` counts from zero; one gone
 * from `next` (a restart dropped it) is a reset.
 */
export function windowBetween(prev: MetricsSnapshot, next: MetricsSnapshot): MetricsWindow {
  const base = { model: next.model, from: prev.takenAt, to: next.takenAt };
  if (prev.model !== next.model)
    throw new Error(`snapshots of different models: ${prev.model} vs ${next.model}`);
  if (prev.epoch !== undefined && next.epoch !== undefined && prev.epoch !== next.epoch) {
    return {
      ...base,
      gap: true,
      gapReason: `producer restarted (epoch ${prev.epoch} → ${next.epoch})`,
      variants: {},
    };
  }
  try {
    for (const v of Object.keys(prev.variants)) {
      if (!(v in next.variants)) throw new Reset(`variant ${v} disappeared`);
    }
    const variants: Record<string, VariantCounters> = {};
    for (const [v, n] of Object.entries(next.variants)) {
      variants[v] = diffCounters(n, prev.variants[v] ?? zeroLike(n), v);
    }
    return { ...base, gap: false, variants };
  } catch (err) {
    if (err instanceof Reset)
      return { ...base, gap: true, gapReason: `counter reset: ${err.message}`, variants: {} };
    throw err;
  }
}

function zeroLike(c: VariantCounters): VariantCounters {
  const z = emptyCounters();
  z.latency = emptyHistogram(c.latency.buckets.filter((b) => b.le !== Infinity).map((b) => b.le));
  z.shadow.latency = emptyHistogram(
    c.shadow.latency.buckets.filter((b) => b.le !== Infinity).map((b) => b.le),
  );
  if (c.feedbackRejected !== undefined) z.feedbackRejected = 0;
  return z;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of a cumulative histogram, interpolating linearly within the bucket
 * that holds the rank, as Prometheus' histogram_quantile does: the lowest bucket starts at 0, a
 * rank in the +Inf bucket answers the highest finite bound. NaN when the histogram is empty.
 */
export function quantileFromHistogram(h: Histogram, q: number): number {
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const buckets = [...h.buckets].sort((a, b) => a.le - b.le);
  const last = buckets[buckets.length - 1];
  if (!last || last.le !== Infinity) return NaN;
  const total = last.count;
  if (total === 0 || buckets.length < 2) return NaN;
  const rank = q * total;
  let i = buckets.findIndex((b) => b.count >= rank);
  if (i < 0) i = buckets.length - 1;
  if (i === buckets.length - 1) return buckets[buckets.length - 2]!.le;
  const b = buckets[i]!;
  if (i === 0 && b.le <= 0) return b.le;
  const lower = i === 0 ? 0 : buckets[i - 1]!.le;
  const below = i === 0 ? 0 : buckets[i - 1]!.count;
  const inBucket = b.count - below;
  if (inBucket === 0) return b.le;
  return lower + (b.le - lower) * ((rank - below) / inBucket);
}
