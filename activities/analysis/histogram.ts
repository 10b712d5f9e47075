/**
 * Histograms as the tests need them: per-bucket counts over explicit (lower, upper] intervals,
 * rescaling and rebinning (observations spread uniformly within a bucket, the same assumption
 * Prometheus' histogram_quantile makes), and adding windows together.
 */
import { quantileFromHistogram } from '../../serving/metrics/window';
import type { Histogram, VariantWindow } from './types';

export { quantileFromHistogram };

/** A bucket as an interval with its own (non-cumulative) count. Upper is Infinity for +Inf. */
export interface Bin {
  lower: number;
  upper: number;
  count: number;
}

/** `le` may arrive as null after a JSON round trip (JSON has no Infinity): that is the +Inf bucket. */
function upperBound(le: number | null): number {
  return le === null || !Number.isFinite(le) ? Infinity : le;
}

/** Cumulative Prometheus buckets → intervals with their own counts, ascending. */
export function toBins(h: Histogram): Bin[] {
  const sorted = [...h.buckets]
    .map((b) => ({ le: upperBound(b.le as number | null), count: b.count }))
    .sort((a, b) => a.le - b.le);
  const bins: Bin[] = [];
  let lower = 0;
  let below = 0;
  for (const b of sorted) {
    bins.push({ lower, upper: b.le, count: Math.max(0, b.count - below) });
    lower = b.le;
    below = Math.max(below, b.count);
  }
  return bins;
}

/** Observations recorded in the histogram (the +Inf bucket's cumulative count, else `count`). */
export function histogramTotal(h: Histogram): number {
  return toBins(h).reduce((s, b) => s + b.count, 0);
}

/**
 * Spreads `bins` (each scaled by `factor`) onto the intervals of `grid` in proportion to overlap,
 * assuming observations are uniform within a bucket. Mass above the last finite bound of a scaled
 * bin, and the whole +Inf bin, lands in the grid's +Inf interval. Returns fractional counts.
 */
export function rebin(bins: Bin[], grid: Bin[], factor = 1): number[] {
  const out = grid.map(() => 0);
  for (const b of bins) {
    if (b.count === 0) continue;
    const lo = b.lower * factor;
    const hi = b.upper * factor;
    if (!Number.isFinite(hi)) {
      // The grid's +Inf interval is its last; unknown latencies stay the slowest.
      out[out.length - 1] = (out[out.length - 1] ?? 0) + b.count;
      continue;
    }
    const width = hi - lo;
    for (let i = 0; i < grid.length; i++) {
      const g = grid[i] as Bin;
      if (width <= 0) {
        if (hi > g.lower && hi <= g.upper) out[i] = (out[i] ?? 0) + b.count;
        continue;
      }
      const overlap = Math.min(hi, g.upper) - Math.max(lo, g.lower);
      if (overlap > 0) out[i] = (out[i] ?? 0) + (b.count * overlap) / width;
    }
  }
  return out;
}

function addHistograms(a: Histogram, b: Histogram): Histogram {
  if (a.buckets.length === 0) return b;
  if (b.buckets.length === 0) return a;
  const byLe = new Map<number, number>();
  for (const x of [...a.buckets, ...b.buckets]) {
    const le = upperBound(x.le as number | null);
    byLe.set(le, (byLe.get(le) ?? 0) + x.count);
  }
  const same =
    a.buckets.length === b.buckets.length &&
    a.buckets.every(
      (x, i) => upperBound(x.le as number | null) === upperBound(b.buckets[i]?.le as number | null),
    );
  if (!same) throw new Error('cannot add latency histograms with different bucket bounds');
  return {
    buckets: [...byLe.entries()].sort((x, y) => x[0] - y[0]).map(([le, count]) => ({ le, count })),
    sum: a.sum + b.sum,
    count: a.count + b.count,
  };
}

/** The sum of consecutive windows of one variant (e.g. everything since a step began). */
export function mergeWindows(a: VariantWindow, b: VariantWindow): VariantWindow {
  return {
    requests: a.requests + b.requests,
    errors: a.errors + b.errors,
    clientErrors: (a.clientErrors ?? 0) + (b.clientErrors ?? 0),
    latency: addHistograms(a.latency, b.latency),
    rewards: { count: a.rewards.count + b.rewards.count, sum: a.rewards.sum + b.rewards.sum },
  };
}

/** q-quantile in seconds, or null when there is nothing to compute it from. */
export function quantileOrNull(h: Histogram, q: number): number | null {
  const normal: Histogram = {
    ...h,
    buckets: h.buckets.map((b) => ({ le: upperBound(b.le as number | null), count: b.count })),
  };
  const v = quantileFromHistogram(normal, q);
  return Number.isFinite(v) ? v : null;
}
