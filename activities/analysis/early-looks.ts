/**
 * The promotion's first looks at errors, judged as an exact group-sequential test with α spending.
 *
 * Why beside the e-process (step-evidence.ts): an e-process pays for being valid at every look
 * forever with power at each one. A 2× error regression at a 5% canary is caught within three
 * intervals by the fixed-horizon optimum 90% of the time; the best e-process that even knows the
 * effect (an SPRT) gets 74% at the whole 1% budget, ours 58% at its share. Where data is scarcest
 * (the first step, a few errors per interval) and a catch is cheapest (least traffic exposed), a
 * test built for a known number of looks does better: it spends its α at those looks only.
 *
 * The test: condition on each look's total errors t_k (both variants). Under the null, each error
 * came from the candidate with probability at most θ0_k (its share of requests tilted by the
 * allowed ratio, the e-process' null), independently, so the candidate's count over the first k
 * looks, S_k, is a sum of independent Binomial(t_i, θ0_i). Its exact distribution along the path
 * that has not crossed yet is computed by convolution, look after look. At look k the bound c_k is
 * the smallest count whose crossing probability, not having crossed before, fits in what the
 * spending function A(k) = α·(k/K)^1.5 allows beyond what was already spent (a discrete test
 * spends less than it may; the remainder carries to the next look). The probability of ever
 * crossing is then at most α, whatever the totals, for any stopping: the spent amounts add up to
 * at most A(K) = α. A larger true share only raises every crossing probability, so the composite
 * null ("no worse than allowed") holds too.
 *
 * After K looks the lane is closed; the e-process, with the rest of the error budget, judges every
 * later look of the promotion. Only counts are carried (three numbers a look): the bounds are
 * recomputed, deterministically, from them.
 */
import { logGamma } from './distributions';

/** Looks of the lane, its share of the error test's α, and the spending function's exponent. */
export const EARLY_LOOKS = Object.freeze({ looks: 3, share: 0.75, exponent: 1.5 });

export interface EarlyLook {
  /** Candidate errors in the interval. */
  x: number;
  /** Errors of both variants in the interval. */
  t: number;
  /** The candidate's null share of the interval's errors. */
  theta0: number;
}

export interface EarlyLooksState {
  looks: EarlyLook[];
  /** The look (1-based, of the lane) at which the candidate's count reached the bound, if it did. */
  crossedAt?: number;
}

/** Cumulative α the lane may have spent by look k (1-based). */
export function spendingAt(k: number, alpha: number): number {
  const K = EARLY_LOOKS.looks;
  return alpha * Math.min(1, k / K) ** EARLY_LOOKS.exponent;
}

/** Mass below this is dropped from a binomial's support: far below any α the lane spends. */
const NEGLIGIBLE = 1e-16;

/** Binomial(t, p) probabilities on [lo, lo + pmf.length), the negligible tails cut off. */
function binomialPmf(t: number, p: number): { lo: number; pmf: number[] } {
  if (t <= 0 || p <= 0) return { lo: 0, pmf: [1] };
  if (p >= 1) return { lo: t, pmf: [1] };
  const mean = t * p;
  const sd = Math.sqrt(t * p * (1 - p));
  // 9 sd covers far more than 1 − 1e-16 of the mass; the window keeps a look's cost O(√t).
  const lo = Math.max(0, Math.floor(mean - 9 * sd - 5));
  const hi = Math.min(t, Math.ceil(mean + 9 * sd + 5));
  const logP = Math.log(p);
  const logQ = Math.log1p(-p);
  const logT = logGamma(t + 1);
  const pmf: number[] = [];
  for (let k = lo; k <= hi; k++) {
    const v = Math.exp(logT - logGamma(k + 1) - logGamma(t - k + 1) + k * logP + (t - k) * logQ);
    pmf.push(v < NEGLIGIBLE ? 0 : v);
  }
  return { lo, pmf };
}

export interface EarlyBounds {
  /** Per look: the candidate's cumulative count at or above which the lane rejects. */
  bounds: number[];
  /** Per look: the α actually spent so far (at most spendingAt(k)). */
  spent: number[];
}

/**
 * The lane's bounds at each of its looks, from the looks' totals and null shares alone (the
 * candidate's counts do not enter: the design is fixed before they are seen).
 */
export function earlyBounds(
  looks: ReadonlyArray<Pick<EarlyLook, 't' | 'theta0'>>,
  alpha: number,
): EarlyBounds {
  // Survival distribution of S over the paths that have not crossed: surv[s] = P(S = s, no cross).
  let surv = [1];
  let spent = 0;
  const bounds: number[] = [];
  const spentAt: number[] = [];
  looks.slice(0, EARLY_LOOKS.looks).forEach((look, i) => {
    const { lo, pmf } = binomialPmf(Math.round(look.t), look.theta0);
    const next = new Array<number>(surv.length + lo + pmf.length - 1).fill(0);
    surv.forEach((a, s) => {
      if (a === 0) return;
      pmf.forEach((b, j) => {
        if (b !== 0) next[s + lo + j] = (next[s + lo + j] as number) + a * b;
      });
    });
    const allowed = spendingAt(i + 1, alpha) - spent;
    // The smallest c with P(S ≥ c, not crossed before) ≤ allowed, scanning the upper tail down.
    let c = next.length;
    let tail = 0;
    while (c > 0 && tail + (next[c - 1] as number) <= allowed) {
      tail += next[c - 1] as number;
      c--;
    }
    spent += tail;
    bounds.push(c);
    spentAt.push(spent);
    surv = next.slice(0, c);
  });
  return { bounds, spent: spentAt };
}

/** The lane with one more look; unchanged once closed (K looks) or crossed. */
export function addEarlyLook(state: EarlyLooksState, look: EarlyLook, alpha: number): EarlyLooksState {
  if (state.crossedAt !== undefined || state.looks.length >= EARLY_LOOKS.looks) return state;
  const looks = [...state.looks, look];
  const { bounds } = earlyBounds(looks, alpha);
  const s = looks.reduce((sum, l) => sum + l.x, 0);
  const crossed = s >= (bounds[looks.length - 1] as number);
  return crossed ? { looks, crossedAt: looks.length } : { looks };
}

/** What the lane says in a verdict: where it stands against its bound, and its p-value. */
export interface EarlyReport {
  looks: number;
  /** Of EARLY_LOOKS.looks. */
  of: number;
  candidateErrors: number;
  /** The bound at the last look (a count the candidate reaches to fail). */
  bound: number;
  spent: number;
  closed: boolean;
  crossedAt?: number;
  /** The smallest lane α at which these counts would have crossed by now (1 if none). */
  pValue: number;
}

export function earlyReport(state: EarlyLooksState, alpha: number): EarlyReport | null {
  const n = state.looks.length;
  if (n === 0) return null;
  const { bounds, spent } = earlyBounds(state.looks, alpha);
  let cum = 0;
  const sums = state.looks.map((l) => (cum += l.x));
  const crossesAt = (a: number): boolean => {
    const b = earlyBounds(state.looks, a).bounds;
    return sums.some((s, i) => s >= (b[i] as number));
  };
  // Bisection in log α: the bounds fall as α grows, so "crossed by now" is monotone in α.
  let pValue = 1;
  if (crossesAt(1)) {
    let lo = Math.log(1e-12);
    let hi = 0;
    if (crossesAt(Math.exp(lo))) pValue = 1e-12;
    else {
      for (let i = 0; i < 40; i++) {
        const mid = (lo + hi) / 2;
        if (crossesAt(Math.exp(mid))) hi = mid;
        else lo = mid;
      }
      pValue = Math.exp(hi);
    }
  }
  return {
    looks: n,
    of: EARLY_LOOKS.looks,
    candidateErrors: sums[n - 1] as number,
    bound: bounds[n - 1] as number,
    spent: spent[n - 1] as number,
    closed: n >= EARLY_LOOKS.looks || state.crossedAt !== undefined,
    ...(state.crossedAt !== undefined ? { crossedAt: state.crossedAt } : {}),
    pValue: Math.min(1, pValue),
  };
}
