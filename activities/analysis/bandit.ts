/**
 * Beta-Bernoulli Thompson sampling for the bandit step. Each arm's reward rate has a Beta
 * posterior; the probability that an arm is best is estimated by Monte Carlo with a seeded
 * generator, so the same rewards and seed always give the same weights (the workflow records the
 * seed with the result). Weights follow those probabilities above an exploration floor.
 */
import { betaPpf, Rng } from './distributions';
import type { VariantWindow } from './types';
import { round } from './round';

export interface BanditParams {
  /** Stop when one arm is best with at least this probability. */
  confidence: number;
  /** Minimum percent of traffic each arm keeps while the bandit runs. */
  explorationFloor: number;
  /** Rewards each arm needs before the bandit may stop. */
  minRewards: number;
  /** Beta prior; (1, 1) is uniform. */
  prior: { alpha: number; beta: number };
  /** Monte Carlo draws per arm. */
  draws: number;
}

export interface ArmPosterior {
  arm: string;
  successes: number;
  failures: number;
  alpha: number;
  beta: number;
  mean: number;
  /** Central 95% credible interval of the arm's reward rate. */
  credible95: [number, number];
  probabilityBest: number;
  weight: number;
}

export type BanditVerdict = {
  check: 'bandit';
  result: 'pass' | 'fail' | 'inconclusive';
  decision: 'continue' | 'stop';
  /** The arm with the highest probability of being best. */
  best: string;
  weights: Record<string, number>;
  posteriors: ArmPosterior[];
  seed: number;
  draws: number;
  confidence: number;
  explorationFloor: number;
  reason: string;
};

/**
 * Integer percents summing to 100, each ≥ floor, the rest in proportion to `shares` (largest
 * remainder; ties go to the earlier arm, so the result is deterministic).
 */
export function weightsFromShares(shares: number[], floor: number): number[] {
  const k = shares.length;
  if (k === 0) return [];
  if (!(Number.isInteger(floor) && floor >= 0 && floor * k <= 100)) {
    throw new Error(
      `explorationFloor must be an integer with floor × arms ≤ 100, got ${floor} for ${k} arms`,
    );
  }
  const free = 100 - floor * k;
  const total = shares.reduce((s, x) => s + Math.max(0, x), 0);
  const ideal = shares.map((x) => (total > 0 ? (Math.max(0, x) / total) * free : free / k));
  const weights = ideal.map((x) => Math.floor(x));
  let left = free - weights.reduce((s, x) => s + x, 0);
  const order = ideal.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    weights[i] = (weights[i] ?? 0) + 1;
    left--;
  }
  return weights.map((w) => w + floor);
}

function validate(p: BanditParams): void {
  const bad = (f: string, e: string, v: unknown): never => {
    throw new Error(`bandit parameter ${f} must be ${e}, got ${String(v)}`);
  };
  if (!(p.confidence > 0.5 && p.confidence < 1)) bad('confidence', 'in (0.5, 1)', p.confidence);
  if (!(p.prior.alpha > 0 && p.prior.beta > 0))
    bad('prior', 'alpha > 0 and beta > 0', JSON.stringify(p.prior));
  if (!(Number.isInteger(p.draws) && p.draws >= 100 && p.draws <= 1_000_000))
    bad('draws', 'an integer in [100, 1e6]', p.draws);
  if (!(p.minRewards >= 0)) bad('minRewards', '≥ 0', p.minRewards);
}

/**
 * One bandit interval over cumulative rewards per arm (arm name → {count, sum}, rewards in [0, 1]).
 * Arms are taken in name order so the weights do not depend on object key order.
 */
export function thompsonWeights(
  arms: Record<string, VariantWindow['rewards']>,
  p: BanditParams,
  seed: number,
  /** The candidate's arm: a stop on it passes, a stop on another arm fails. */
  candidate?: string,
): BanditVerdict {
  validate(p);
  const names = Object.keys(arms).sort();
  if (names.length < 2) throw new Error(`a bandit needs at least two arms, got ${names.length}`);
  if (!Number.isFinite(seed)) throw new Error(`bandit seed must be a number, got ${String(seed)}`);
  const post = names.map((arm) => {
    const r = arms[arm] as VariantWindow['rewards'];
    if (!(r.count >= 0 && r.sum >= 0 && r.sum <= r.count + 1e-9)) {
      throw new Error(`arm ${arm}: rewards need 0 ≤ sum ≤ count, got sum ${r.sum} of ${r.count}`);
    }
    const successes = r.sum;
    const failures = r.count - r.sum;
    const a = p.prior.alpha + successes;
    const b = p.prior.beta + failures;
    return { arm, successes, failures, alpha: a, beta: b, count: r.count };
  });
  const rng = new Rng(seed);
  const wins = names.map(() => 0);
  for (let d = 0; d < p.draws; d++) {
    let best = 0;
    let bestValue = -1;
    for (let i = 0; i < post.length; i++) {
      const x = rng.beta(post[i]!.alpha, post[i]!.beta);
      if (x > bestValue) {
        bestValue = x;
        best = i;
      }
    }
    wins[best] = (wins[best] ?? 0) + 1;
  }
  const probs = wins.map((w) => w / p.draws);
  const weights = weightsFromShares(probs, p.explorationFloor);
  let bestIdx = 0;
  probs.forEach((x, i) => {
    if (x > (probs[bestIdx] ?? 0)) bestIdx = i;
  });
  const posteriors: ArmPosterior[] = post.map((x, i) => ({
    arm: x.arm,
    successes: round(x.successes),
    failures: round(x.failures),
    alpha: round(x.alpha),
    beta: round(x.beta),
    mean: round(x.alpha / (x.alpha + x.beta)),
    credible95: [round(betaPpf(0.025, x.alpha, x.beta)), round(betaPpf(0.975, x.alpha, x.beta))],
    probabilityBest: round(probs[i] ?? 0),
    weight: weights[i] ?? 0,
  }));
  const best = names[bestIdx] as string;
  const pBest = probs[bestIdx] ?? 0;
  const enough = post.every((x) => x.count >= p.minRewards);
  const stop = enough && pBest >= p.confidence;
  const summary = posteriors
    .map((x) => `${x.arm} mean ${x.mean.toFixed(4)} P(best) ${x.probabilityBest.toFixed(3)} → ${x.weight}%`)
    .join(', ');
  const reason = stop
    ? `${best} is best with probability ${pBest.toFixed(3)} ≥ ${p.confidence}: ${summary}`
    : !enough
      ? `collecting rewards (${p.minRewards} per arm before stopping): ${summary}`
      : `no arm is best with ${p.confidence} yet (top ${best} at ${pBest.toFixed(3)}): ${summary}`;
  return {
    check: 'bandit',
    result: !stop ? 'inconclusive' : candidate === undefined || best === candidate ? 'pass' : 'fail',
    decision: stop ? 'stop' : 'continue',
    best,
    weights: Object.fromEntries(names.map((n, i) => [n, weights[i] ?? 0])),
    posteriors,
    seed,
    draws: p.draws,
    confidence: p.confidence,
    explorationFloor: p.explorationFloor,
    reason,
  };
}
