/**
 * Anytime-valid evidence from counts: the building block of the sequential canary analysis.
 *
 * A "cell" is a kind of event that both variants produce: a server error, a request slower than
 * some latency, a request in one latency bucket. Condition on how many events of the cell an
 * interval saw in total (t). If the candidate is no worse than the null allows, each event came
 * from the candidate with probability at most θ0 — its share of the traffic, tilted by the null
 * ratio ρ0 the spec tolerates: θ0 = n_c·ρ0 / (n_c·ρ0 + n_b). That is the Poisson/multinomial view
 * of Lindon & Malek (2022), the one Netflix's sequential canary analysis is built on (Lindon,
 * Sanden, Shirikian, KDD 2022): counts of independent events, so the null needs no nuisance rate.
 *
 * For a tilt β (log odds ratio of "from the candidate"), the interval's likelihood ratio of the
 * candidate's x events out of t is
 *   LR(β) = e^{β x} / (1 − θ0 + θ0 e^β)^t,
 * whose conditional expectation is exactly 1 when the share is θ0 and at most 1 when the share is
 * below θ0 and β ≥ 0. The product over intervals is then a non-negative supermartingale under the
 * null, and so is any fixed mixture over β. By Ville's inequality the mixture crosses 1/α with
 * probability at most α, however often and however long one looks: one crossing is decisive.
 *
 * Why a discrete mixture rather than one alternative (an SPRT): a single tilt is best for the
 * effect it names and blind to smaller ones (its log-LR drifts down under a 1.2× regression when
 * tuned for 2×). A handful of tilts, weighted toward the doublings a canary exists to catch,
 * costs log(1/weight) of evidence on each and keeps every effect in reach. Why the conditional
 * form rather than a normal-approximation mSPRT (what the A/B uses): a 5% canary at 1% errors sees
 * a handful of errors per interval, where a normal approximation misstates its own error rate.
 */

/** Tilts (as ratios ρ = e^β of the candidate's odds) and their prior weights. One-sided: ρ > 1. */
export const UPWARD_TILTS: ReadonlyArray<{ ratio: number; weight: number }> = Object.freeze([
  { ratio: 1.25, weight: 0.05 },
  { ratio: 1.5, weight: 0.1 },
  { ratio: 2, weight: 0.5 },
  { ratio: 3, weight: 0.2 },
  { ratio: 6, weight: 0.1 },
  { ratio: 15, weight: 0.05 },
]);

/** One cell's running log-likelihood ratio per tilt (same order as its tilt list). */
export type CellState = number[];

export function emptyCell(tilts: ReadonlyArray<unknown>): CellState {
  return tilts.map(() => 0);
}

/** The null share of the candidate among a cell's events. */
export function nullShare(candidateExposure: number, baselineExposure: number, ratio: number): number {
  if (!(candidateExposure > 0)) return 0;
  if (!(baselineExposure > 0) || !Number.isFinite(ratio)) return 1;
  const c = candidateExposure * ratio;
  return c / (c + baselineExposure);
}

/**
 * Adds one interval to a cell: `x` of the cell's `t` events came from the candidate, whose null
 * share was `theta0`. Counts may be fractional (latency thresholds between bucket bounds are
 * interpolated); the exponential-family form stays well defined. A null share of 0 or 1 carries
 * no information (every event's source is known under the null) and leaves the cell unchanged.
 */
export function updateCell(
  cell: CellState,
  tilts: ReadonlyArray<{ ratio: number }>,
  x: number,
  t: number,
  theta0: number,
): CellState {
  if (!(t > 0) || !(theta0 > 0 && theta0 < 1)) return cell;
  return cell.map((logLr, i) => {
    const ratio = (tilts[i] as { ratio: number }).ratio;
    const th = theta0;
    const beta = Math.log(ratio);
    return logLr + beta * x - t * Math.log1p(th * (ratio - 1));
  });
}

/** log of the cell's mixture e-value: log Σ w·e^{logLR}. */
export function logMixture(cell: CellState, tilts: ReadonlyArray<{ weight: number }>): number {
  let max = -Infinity;
  for (const v of cell) max = Math.max(max, v);
  if (!Number.isFinite(max)) return max;
  let s = 0;
  cell.forEach((v, i) => {
    s += (tilts[i] as { weight: number }).weight * Math.exp(v - max);
  });
  return max + Math.log(s);
}

/** log of the average of several e-values (itself an e-value): how cells of one test combine. */
export function logMean(logs: number[]): number {
  if (logs.length === 0) return 0;
  const max = Math.max(...logs);
  if (!Number.isFinite(max)) return max;
  return max + Math.log(logs.reduce((s, v) => s + Math.exp(v - max), 0) / logs.length);
}

/**
 * Normal-mixture boundary for a running mean of [0, 1] observations (Robbins; Howard et al. 2021,
 * sub-Gaussian with σ² = 1/4): with probability ≥ 1 − α, for all n at once and on both sides,
 * |mean_n − μ| ≤ √((n/4 + ρ)·log((n/4 + ρ)/(ρ (α/2)²))) / n. ρ sets where it is tightest (about
 * n ≈ 4ρ). Used to report rates and quantiles with intervals that stay true under peeking.
 */
export function meanBoundaryHalfWidth(n: number, alpha: number, rho = 100): number {
  if (!(n > 0)) return Infinity;
  const v = n / 4 + rho;
  const a = alpha / 2;
  return Math.sqrt(v * Math.log(v / (rho * a * a))) / n;
}
