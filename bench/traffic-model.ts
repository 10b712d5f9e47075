/**
 * The synthetic traffic the decision harness and the analysis' unit tests judge: windows of n
 * requests with binomial errors and latencies drawn over the router's own histogram buckets, so
 * the statistics see exactly the shape of data the router exports.
 */
import { normalCdf, Rng, type VariantWindow } from '../activities/analysis';
import { latencyBuckets } from '../serving/router/route';

export const bounds = [...latencyBuckets, Infinity];

/** Bucket probabilities of a latency cdf on the router's buckets. */
export function bucketProbabilities(cdf: (s: number) => number): number[] {
  let prev = 0;
  return bounds.map((le) => {
    const c = le === Infinity ? 1 : cdf(le);
    const p = c - prev;
    prev = c;
    return Math.max(0, p);
  });
}

export const lognormalCdf =
  (medianS: number, sigma: number) =>
  (s: number): number =>
    normalCdf(Math.log(s / medianS) / sigma);

/** A window of n requests: errors binomial, latencies multinomial over the buckets. */
export function simulateWindow(rng: Rng, n: number, errorRate: number, probs: number[]): VariantWindow {
  const errors = rng.binomial(n, errorRate);
  let left = n;
  let mass = 1;
  let cum = 0;
  const buckets = probs.map((p, i) => {
    const c = i === probs.length - 1 ? left : rng.binomial(left, mass > 0 ? Math.min(1, p / mass) : 0);
    left -= c;
    mass -= p;
    cum += c;
    return { le: bounds[i] as number, count: cum };
  });
  return { requests: n, errors, latency: { buckets, sum: 0, count: n }, rewards: { count: 0, sum: 0 } };
}

/** FNV-1a: a seed per scenario and run from its name, so adding rows never moves other rows' draws. */
