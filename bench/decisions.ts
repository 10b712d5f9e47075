/**
 * Decision-quality harness (`npm run bench:decisions`, not a test): simulates many promotions by
 * feeding the analysis synthetic per-interval windows — no servers — exactly as the workflow
 * does, and measures how good the decisions are. Two canary analyses side by side on the same
 * simulated traffic (each run has its own seed, shared by every analysis of the scenario, so
 * their differences are paired, not noise):
 * - today's (`method: interval`): the SLO guard and compareVariants on each interval's window,
 *   `failureLimit` consecutive fails roll back; its "step window" variant compares everything
 *   since the step began with the same per-look tests (no sequential correction);
 * - sequential (`method: sequential`): addInterval folds each interval into the evidence and
 *   judgeStep judges it; one failing look of the comparison rolls back, the SLO guard keeps
 *   `failureLimit` consecutive fails. The error test runs across the promotion's steps at one
 *   promotion-wide α, the latency tests start with each step at its share
 *   (splitFalseRollbackBudget over the spec's default steps), as the workflow runs them.
 * Beside each error row: the fixed-horizon optimum, the bound no test can beat. Writes
 * bench/results/decisions-<date>.json and a markdown summary with the targets of issue 11 marked
 * met / missed. Seeded: the same code gives the same figures.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createLogger } from '../common/log';
import { projectRoot } from '../common/paths';
import { bounds, bucketProbabilities, lognormalCdf, simulateWindow } from './traffic-model';
import { defaultCanarySteps, modelSpecSchema } from '../specs/schema';
import { logGamma } from '../activities/analysis/distributions';
import { EARLY_LOOKS } from '../activities/analysis/early-looks';
import {
  abTest,
  addInterval,
  betaPpf,
  binomialCdf,
  binomialPpf,
  checkSlo,
  compareVariants,
  DEFAULT_AB,
  DEFAULT_BANDIT,
  DEFAULT_COMPARE,
  judgeStep,
  mergeWindows,
  Rng,
  splitFalseRollbackBudget,
  splitFalseRollbackRate,
  thompsonWeights,
  emptyEvidence,
  type CompareParams,
  type SequentialParams,
  type SequentialState,
  type SloLimits,
  type StepCompareParams,
  type StepEvidence,
  type VariantWindow,
} from '../activities/analysis';

const log = createLogger('bench-decisions');

/** The spec's defaults (what a ModelSpec without a canary section runs): the sequential params. */
const SPEC_CANARY = { ...modelSpecSchema.in.shape.canary.parse({}), steps: defaultCanarySteps() };
const SPEC_ANALYSIS = SPEC_CANARY.analysis;
/** The latency floor's default before the sequential analysis (today's rows keep it). */
const OLD_FLOOR_MS = 5;
const STEP_WEIGHTS = SPEC_CANARY.steps.map((s) => s.weight);
const INTERVALS_PER_STEP = Math.round((SPEC_CANARY.steps[0]?.pause ?? 300_000) / SPEC_CANARY.interval);
const BUDGET = splitFalseRollbackBudget(SPEC_ANALYSIS.falseRollbackRate, STEP_WEIGHTS, false);
/** The error test's α over the whole promotion (it spans the steps). */
const ERROR_ALPHA = BUDGET.errors as number;

/**
 * The latency tests' α the spec's default promotion gives the canary step at `weight`: a default
 * step's share (5% → the first step's, 25% → the second's, 50% → the third's). Any other weight is
 * treated as the first canary step of its promotion (10% → the 5% step's share).
 */
function stepAlpha(weight: number, legacy = false): number {
  const i = STEP_WEIGHTS.indexOf(weight);
  const a = (legacy ? LEGACY_ALPHAS : BUDGET).steps[i >= 0 ? i : 0];
  if (a === null || a === undefined) throw new Error(`the canary step at ${weight}% does not compare`);
  return a;
}

/** The split before errors spanned steps: a share per step for all three tests (run side by side as "before"). */
const LEGACY_ALPHAS = splitFalseRollbackRate(SPEC_ANALYSIS.falseRollbackRate, STEP_WEIGHTS, false);
const EDGES = bounds.filter((b) => Number.isFinite(b));

// ---- traffic model ----

interface Traffic {
  /** Total requests per second across both variants. */
  rps: number;
  /** Interval length in seconds (the spec's canary.interval; 1 minute by default). */
  intervalS: number;
  /** Baseline server-error rate. */
  errorRate: number;
  /** Baseline latency: lognormal with this median (seconds) and log-sd. */
  medianS: number;
  sigma: number;
}

/** How the candidate's latency differs: every request scaled, or a share of requests slower. */
type LatencyChange = { kind: 'scale'; factor: number } | { kind: 'bimodal'; share: number; factor: number };

interface Regression {
  name: string;
  errorFactor: number;
  latency: LatencyChange;
}

const NO_LATENCY_CHANGE: LatencyChange = { kind: 'scale', factor: 1 };
/**
 * The candidate's latency cdf. Bimodal: a share of requests `factor`× slower than the rest, the
 * whole mixture rescaled so that its median equals the baseline's (a shape change, not a shift).
 */
function candidateCdf(t: Traffic, change: LatencyChange): (s: number) => number {
  if (change.kind === 'scale') return lognormalCdf(t.medianS * change.factor, t.sigma);
  const mix = (m: number) => (s: number) =>
    (1 - change.share) * lognormalCdf(m, t.sigma)(s) +
    change.share * lognormalCdf(m * change.factor, t.sigma)(s);
  let lo = t.medianS / change.factor;
  let hi = t.medianS;
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2;
    // a larger fast-mode median puts less mass below the baseline median
    if (mix(mid)(t.medianS) > 0.5) lo = mid;
    else hi = mid;
  }
  return mix((lo + hi) / 2);
}

function seedOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

// ---- canary steps as the workflow runs them ----

type Method = 'interval' | 'step' | 'sequential';

interface CanaryConfig {
  /** How the results name it. */
  label: string;
  /** 'interval': each look judges that interval's window (today's analysis); 'step': today's tests on everything since the step began; 'sequential': the anytime-valid step evidence. */
  method: Method;
  /** Today's per-look tests (methods interval and step). */
  compare: CompareParams;
  /** The sequential comparison, α aside: each step gets its share of the promotion's. */
  sequential: Omit<StepCompareParams, 'alpha'>;
  failureLimit: number;
  /**
   * The sequential analysis as it was before this change, side by side on the same draws: the
   * error test fresh at each step at 60% of the step's share (splitFalseRollbackRate), every
   * latency bound weighted alike.
   */
  legacy?: boolean;
}

interface StepOutcome {
  /** 1-based interval of the rollback, or null if the step completed. */
  rolledBackAt: number | null;
  /** The checks that failed at the rollback's look. */
  by: string[];
  /** When the comparison alone (without the SLO guard) would have rolled back, if followed that far. */
  comparisonAt: number | null;
  inconclusiveLooks: number;
  /** The sequential evidence at the step's end: the next step's error test goes on from it. */
  evidence?: StepEvidence;
}

/** judgeStep's rule, read from the evidence: a test fails once it has crossed its 1/α. */
function sequentialFails(ev: StepEvidence, p: StepCompareParams): boolean {
  const c = ev.crossedAt;
  return (
    c.errors !== undefined ||
    c.order !== undefined ||
    (p.latencyEquality !== false && c.equality !== undefined)
  );
}

/** judgeStep's rule for a look that does not fail: inconclusive below minSamples per variant. */
function sequentialInconclusive(ev: StepEvidence, p: StepCompareParams): boolean {
  return ev.candidate.requests < p.minSamples || ev.baseline.requests < p.minSamples;
}

/**
 * One canary step of `intervals` looks. With `follow`, the step runs on past an SLO-guard
 * rollback until the comparison alone has decided (or the step ends), so that the comparison's
 * own detection can be set beside the optimum; the product's rollback is what the workflow does.
 *
 * The sequential method reads each look's verdict from the evidence (sequentialFails: what
 * judgeStep's result follows from) and calls judgeStep itself where it matters: at every first
 * crossing (it must say fail; its failing tests name the rollback) and, with `verify`, at the
 * step's last look (it must agree with the reading). judgeStep costs several addIntervals, so
 * calling it at every look would triple the harness' time for the same decisions.
 */
function runStep(
  rng: Rng,
  traffic: Traffic,
  weight: number,
  intervals: number,
  reg: Regression,
  cfg: CanaryConfig,
  probs: { base: number[]; cand: number[] },
  slo: SloLimits,
  follow: boolean,
  verify: boolean,
  carried?: StepEvidence,
): StepOutcome {
  const perInterval = Math.round(traffic.rps * traffic.intervalS);
  const p: StepCompareParams = cfg.legacy
    ? { ...cfg.sequential, alpha: stepAlpha(weight, true) }
    : { ...cfg.sequential, alpha: stepAlpha(weight), errorAlpha: ERROR_ALPHA, step: `canary:${weight}` };
  let streak = 0;
  let comparisonStreak = 0;
  let inconclusiveLooks = 0;
  let accC: VariantWindow | undefined;
  let accB: VariantWindow | undefined;
  let ev: StepEvidence | undefined = carried;
  if (cfg.legacy) {
    ev = emptyEvidence(EDGES);
    delete ev.latencyMix;
  }
  let rolledBackAt: number | null = null;
  let by: string[] = [];
  let comparisonAt: number | null = null;
  for (let i = 1; i <= intervals; i++) {
    const live = rolledBackAt === null;
    const nc = rng.binomial(perInterval, weight / 100);
    const wc = simulateWindow(rng, nc, traffic.errorRate * reg.errorFactor, probs.cand);
    const wb = simulateWindow(rng, perInterval - nc, traffic.errorRate, probs.base);
    const guard = checkSlo(wc, slo);
    const failing: string[] = guard.result === 'fail' ? ['slo'] : [];
    let inconclusive = guard.result === 'inconclusive';
    if (cfg.method === 'sequential') {
      ev = addInterval(ev, wc, wb, p);
      const fails = sequentialFails(ev, p);
      if (fails && comparisonAt === null) {
        const v = judgeStep(ev, p);
        if (v.result !== 'fail') throw new Error(`judgeStep says ${v.result} where the evidence has crossed`);
        comparisonAt = i;
        for (const t of v.tests) if (t.result === 'fail') failing.push(t.test);
      }
      if (!fails && sequentialInconclusive(ev, p)) inconclusive = true;
      if (verify && !fails && (i === intervals || i === 1)) {
        const v = judgeStep(ev, p);
        const expected = sequentialInconclusive(ev, p) ? 'inconclusive' : 'pass';
        if (v.result !== expected) throw new Error(`judgeStep says ${v.result}, the evidence ${expected}`);
      }
      streak = guard.result === 'fail' ? streak + 1 : 0;
      if (live && (fails || streak >= cfg.failureLimit)) {
        rolledBackAt = i;
        by = failing;
      }
    } else {
      accC = cfg.method === 'step' && accC ? mergeWindows(accC, wc) : wc;
      accB = cfg.method === 'step' && accB ? mergeWindows(accB, wb) : wb;
      const cmp = compareVariants(accC, accB, cfg.compare);
      const tests = cmp.tests.filter((t) => t.result === 'fail').map((t) => t.test);
      failing.push(...tests);
      if (cmp.result === 'inconclusive') inconclusive = true;
      comparisonStreak = tests.length > 0 ? comparisonStreak + 1 : 0;
      if (comparisonAt === null && comparisonStreak >= cfg.failureLimit) comparisonAt = i;
      streak = failing.length > 0 ? streak + 1 : 0;
      if (live && streak >= cfg.failureLimit) {
        rolledBackAt = i;
        by = failing;
      }
    }
    if (live && inconclusive) inconclusiveLooks++;
    if (rolledBackAt !== null && (!follow || comparisonAt !== null)) break;
  }
  return { rolledBackAt, by, comparisonAt, inconclusiveLooks, ...(ev ? { evidence: ev } : {}) };
}

// ---- what no test can beat ----

/** log P(X = x) for X ~ Binomial(n, p). */
function logBinomialPmf(x: number, n: number, p: number): number {
  if (x < 0 || x > n) return -Infinity;
  if (p <= 0) return x === 0 ? 0 : -Infinity;
  if (p >= 1) return x === n ? 0 : -Infinity;
  return logGamma(n + 1) - logGamma(x + 1) - logGamma(n - x + 1) + x * Math.log(p) + (n - x) * Math.log1p(-p);
}

/** The error test's null rate at a margin: max((1 + r)·p_b, p_b + δ). */
const nullRate = (pb: number, m: Margin): number =>
  Math.min(1, Math.max((1 + m.relative) * pb, pb + m.absolute));

interface Margin {
  relative: number;
  absolute: number;
}

/**
 * The oracle beside the optimum: the exact one-sided binomial test of "rate ≤ p0" on the candidate's
 * error count over `n` requests, knowing the baseline rate exactly (so p0 is known), at level α,
 * and its power at the true rate p1. It is the uniformly most powerful non-randomized test of
 * those requests at that α (Neyman–Pearson: the count is sufficient and its likelihood ratio
 * monotone), so no test that uses those requests and that α does better, sequential or not.
 */
function optimumPower(n: number, p0: number, p1: number, alpha: number): number {
  if (!(p0 < 1) || n <= 0) return 0;
  const k = binomialPpf(1 - alpha, n, p0); // reject X > k: P0(X > k) ≤ α < P0(X ≥ k)
  return 1 - binomialCdf(k, n, p1);
}

/**
 * The fixed-horizon optimum on all the data of both variants: the exact conditional test. Given
 * the T errors of both variants over the 3 intervals, the candidate's count is Binomial(T, θ0)
 * under the null, θ0 = n_c·ρ0 / (n_c·ρ0 + n_b); reject above its (1 − α) quantile. For two Poisson
 * or binomial rates it is the uniformly most powerful unbiased test (Lehmann: the total is
 * sufficient for the nuisance baseline rate, and conditioning on it is what optimality requires;
 * this is its non-randomized form), so no test on the same requests at that α does better without
 * being told the baseline's rate. ρ0 is the row's null ratio at the true baseline rate (for an
 * absolute margin the test is thus told that much). Power exactly, over both variants' counts.
 */
function twoSampleOptimumPower(
  nc: number,
  nb: number,
  pb: number,
  p1: number,
  ratio: number,
  alpha: number,
): number {
  const theta0 = (nc * ratio) / (nc * ratio + nb);
  const range = (n: number, p: number): [number, number] => {
    const sd = Math.sqrt(n * p * (1 - p));
    return [Math.max(0, Math.floor(n * p - 10 * sd - 5)), Math.min(n, Math.ceil(n * p + 10 * sd + 5))];
  };
  const [cLo, cHi] = range(nc, p1);
  const [bLo, bHi] = range(nb, pb);
  const pc: number[] = [];
  for (let x = cLo; x <= cHi; x++) pc.push(Math.exp(logBinomialPmf(x, nc, p1)));
  const crit = new Map<number, number>();
  let power = 0;
  for (let y = bLo; y <= bHi; y++) {
    const wy = Math.exp(logBinomialPmf(y, nb, pb));
    if (wy < 1e-14) continue;
    for (let x = cLo; x <= cHi; x++) {
      const t = x + y;
      let k = crit.get(t);
      if (k === undefined) {
        k = binomialPpf(1 - alpha, t, theta0); // reject X > k
        crit.set(t, k);
      }
      if (x > k) power += wy * (pc[x - cLo] as number);
    }
  }
  return Math.min(1, power);
}

/**
 * Reference: the SPRT of p0 against the true p1 (knowing both, and the baseline rate), looked at
 * after each of `looks` intervals of `perLook` requests, failing once its likelihood ratio passes
 * 1/α (Ville: valid however often one looks). The chance it has failed by the last look, exactly
 * (dynamic programme over the candidate's error count). The best an anytime-valid test tuned to
 * the one true effect can do; a test that must also catch other effects pays for it.
 */
function sprtPower(perLook: number, looks: number, p0: number, p1: number, alpha: number): number | null {
  if (!(p1 > p0) || !(p0 > 0) || !(p1 < 1)) return null;
  const up = Math.log(p1 / p0);
  const down = Math.log((1 - p1) / (1 - p0));
  // LLR(x, n) = x·up + (n − x)·down ≥ log(1/α)  ⇔  x ≥ (log(1/α) − n·down) / (up − down)
  const crossAt = (n: number): number => Math.ceil((Math.log(1 / alpha) - n * down) / (up - down) - 1e-12);
  const step = Array.from({ length: perLook + 1 }, (_, y) => Math.exp(logBinomialPmf(y, perLook, p1)));
  let alive = [1]; // P(X = x, not yet crossed)
  for (let k = 1; k <= looks; k++) {
    const c = Math.min(crossAt(k * perLook), k * perLook + 1);
    const next = new Array<number>(Math.max(0, c)).fill(0);
    alive.forEach((w, x) => {
      if (w < 1e-300) return;
      for (let y = 0; x + y < c && y <= perLook; y++)
        next[x + y] = (next[x + y] as number) + w * (step[y] as number);
    });
    alive = next;
  }
  return Math.max(0, 1 - alive.reduce((s, v) => s + v, 0));
}

// ---- rows ----

interface Scenario {
  reg: Regression;
  weight: number;
  traffic: Traffic;
}

const scenarioKey = (s: Scenario): string =>
  `${s.reg.name}|${s.weight}%|${s.traffic.rps}rps|${s.traffic.errorRate}`;

/** The SLO guard: loose (p99 150 ms, errors ≤ max(2%, 3× the baseline's)), so the comparison does the work. */
const sloFor = (t: Traffic): SloLimits => ({
  maxP99Ms: 150,
  maxErrorRate: Math.max(0.02, 3 * t.errorRate),
  minRequests: 20,
});

function marginOf(cfg: CanaryConfig): Margin {
  return cfg.method === 'sequential'
    ? { relative: cfg.sequential.maxRelativeErrorRateIncrease, absolute: cfg.sequential.maxErrorRateIncrease }
    : { relative: 0, absolute: cfg.compare.maxErrorRateIncrease };
}

interface DetectionRow {
  scenario: string;
  regression: string;
  errorFactor: number;
  canaryPercent: number;
  rps: number;
  baselineErrorRate: number;
  analysis: string;
  method: Method;
  /** The step's latency α of the sequential comparison, or per-look α of today's tests. */
  alpha: number;
  /** Sequential: the error test's promotion-wide α. */
  errorAlpha?: number;
  /** The sequential analysis before this change (CanaryConfig.legacy). */
  legacy?: boolean;
  margin: Margin;
  runs: number;
  detected: number;
  detectionRate: number;
  within3: number;
  /** The comparison alone (no SLO guard): what the optimum bounds. */
  comparisonWithin3: number;
  meanIntervalsToDetect: number | null;
  medianIntervalsToDetect: number | null;
  byCheck: Record<string, number>;
  candidateRequestsPerInterval: number;
  /**
   * Error regressions only. The fixed-horizon optimum within 3: the most powerful (unbiased)
   * one-sided test on all the requests of both variants over 3 intervals (twoSampleOptimumPower),
   * at the promotion's α (falseRollbackRate, not the step's share) and this row's margin.
   */
  optimumWithin3?: number;
  /**
   * The oracle beyond it: the same test told the baseline's true rate (a one-sample test of the
   * candidate's requests alone), which no test on the data reaches when the baseline is small.
   */
  oracleWithin3?: number;
  /** comparisonWithin3 ÷ optimumWithin3. */
  ratioToOptimum?: number;
  /** Reference: an SPRT knowing the true effect, same α and margin, looks 1–3. */
  sprtWithin3?: number | null;
  /**
   * Sequential rows: the same SPRT at the α the error test itself gets (its share of the step's
   * α): what the budget split leaves, so the gap to sprtWithin3 is the split's cost and the gap
   * from here to comparisonWithin3 the mixture's (not knowing the effect).
   */
  sprtAtTestAlphaWithin3?: number | null;
  /**
   * Sequential rows: the fixed-horizon optimum at the error test's own α (its share of the
   * promotion's): the most any test of these errors can do once latency has its share, so the gap
   * from optimumWithin3 is what the budget split costs, and from here to comparisonWithin3 what
   * looking sequentially costs.
   */
  optimumAtTestAlphaWithin3?: number;
  /**
   * Today's oracle, renamed for what it is: the best single-interval test (exact, baseline known,
   * no margin, today's per-look α) failing 2 intervals in a row within 3. Error regressions only.
   */
  bestSingleIntervalPerLook?: number;
  bestSingleInterval2InARowWithin3?: number;
}

interface RunFlags {
  within3: boolean[];
  detected: boolean[];
}

function detection(
  s: Scenario,
  cfg: CanaryConfig,
  runs: number,
  intervals: number,
  verifyRuns: number,
): { row: DetectionRow; flags: RunFlags } {
  const key = scenarioKey(s);
  const t = s.traffic;
  const probs = {
    base: bucketProbabilities(lognormalCdf(t.medianS, t.sigma)),
    cand: bucketProbabilities(candidateCdf(t, s.reg.latency)),
  };
  const slo = sloFor(t);
  const times: number[] = [];
  const byCheck: Record<string, number> = {};
  const flags: RunFlags = { within3: [], detected: [] };
  let comparisonWithin3 = 0;
  for (let r = 0; r < runs; r++) {
    // The same draws for every analysis of this scenario: differences between them are paired.
    const rng = new Rng(seedOf(`${key}#${r}`));
    const o = runStep(rng, t, s.weight, intervals, s.reg, cfg, probs, slo, true, r < verifyRuns);
    flags.detected.push(o.rolledBackAt !== null);
    flags.within3.push(o.rolledBackAt !== null && o.rolledBackAt <= 3);
    if (o.comparisonAt !== null && o.comparisonAt <= 3) comparisonWithin3++;
    if (o.rolledBackAt !== null) {
      times.push(o.rolledBackAt);
      for (const b of o.by) byCheck[b] = (byCheck[b] ?? 0) + 1;
    }
  }
  times.sort((a, b) => a - b);
  const within3 = times.filter((x) => x <= 3).length;
  const nc = Math.round(t.rps * t.intervalS * (s.weight / 100));
  const margin = marginOf(cfg);
  const alpha =
    cfg.method === 'sequential' ? stepAlpha(s.weight, cfg.legacy) : round(1 - cfg.compare.confidence);
  const row: DetectionRow = {
    scenario: key,
    regression: s.reg.name,
    errorFactor: s.reg.errorFactor,
    canaryPercent: s.weight,
    rps: t.rps,
    baselineErrorRate: t.errorRate,
    analysis: cfg.label,
    method: cfg.method,
    alpha,
    ...(cfg.method === 'sequential' && !cfg.legacy ? { errorAlpha: ERROR_ALPHA } : {}),
    ...(cfg.legacy ? { legacy: true } : {}),
    margin,
    runs,
    detected: times.length,
    detectionRate: round(times.length / runs),
    within3: round(within3 / runs),
    comparisonWithin3: round(comparisonWithin3 / runs),
    meanIntervalsToDetect: times.length ? round(times.reduce((a, x) => a + x, 0) / times.length, 3) : null,
    medianIntervalsToDetect: times.length ? (times[Math.floor(times.length / 2)] as number) : null,
    byCheck,
    candidateRequestsPerInterval: nc,
  };
  if (s.reg.errorFactor !== 1) {
    const pb = t.errorRate;
    const p1 = pb * s.reg.errorFactor;
    const promotionAlpha = SPEC_ANALYSIS.falseRollbackRate;
    const nb = Math.round(t.rps * t.intervalS) - nc;
    const opt = twoSampleOptimumPower(3 * nc, 3 * nb, pb, p1, nullRate(pb, margin) / pb, promotionAlpha);
    row.oracleWithin3 = round(optimumPower(3 * nc, nullRate(pb, margin), p1, promotionAlpha));
    const sprt = sprtPower(nc, 3, nullRate(pb, margin), p1, promotionAlpha);
    const single = optimumPower(nc, pb, p1, 1 - DEFAULT_COMPARE.confidence);
    row.optimumWithin3 = round(opt);
    row.ratioToOptimum = opt > 0 ? round(comparisonWithin3 / runs / opt) : undefined;
    row.sprtWithin3 = sprt === null ? null : round(sprt);
    if (cfg.method === 'sequential') {
      const testAlpha =
        (cfg.legacy ? alpha * 0.6 : ERROR_ALPHA) * (cfg.sequential.maxErrorRateIncrease > 0 ? 0.9 : 1);
      const own = sprtPower(nc, 3, nullRate(pb, margin), p1, testAlpha);
      row.sprtAtTestAlphaWithin3 = own === null ? null : round(own);
      row.optimumAtTestAlphaWithin3 = round(
        twoSampleOptimumPower(3 * nc, 3 * nb, pb, p1, nullRate(pb, margin) / pb, testAlpha),
      );
    }
    row.bestSingleIntervalPerLook = round(single);
    row.bestSingleInterval2InARowWithin3 = round(single * single * (2 - single));
  }
  return { row, flags };
}

interface AaRow {
  rps: number;
  baselineErrorRate: number;
  analysis: string;
  method: Method;
  /** Per-step latency α of the sequential comparison (steps in order), or today's per-look α. */
  alphas: number[];
  /** Sequential: the error test's promotion-wide α. */
  errorAlpha?: number;
  legacy?: boolean;
  runs: number;
  looksPerRun: number;
  falseRollbacks: number;
  falseRollbackRate: number;
  /** One-sided 95% Clopper–Pearson upper bound of the rate. */
  upper95: number;
  inconclusiveLookRate: number;
  byCheck: Record<string, number>;
}

/** A/A: an unchanged candidate through the spec's default canary steps (5%, 25%, 50%, 5 looks each). */
function aaFalseRollbacks(traffic: Traffic, cfg: CanaryConfig, runs: number, verifyRuns: number): AaRow {
  const probs = bucketProbabilities(lognormalCdf(traffic.medianS, traffic.sigma));
  const none: Regression = { name: 'A/A', errorFactor: 1, latency: NO_LATENCY_CHANGE };
  const slo = sloFor(traffic);
  const steps = STEP_WEIGHTS.filter((w) => w < 100);
  let falseRollbacks = 0;
  let inconclusive = 0;
  const byCheck: Record<string, number> = {};
  for (let r = 0; r < runs; r++) {
    const rng = new Rng(seedOf(`A/A|${traffic.rps}rps|${traffic.errorRate}#${r}`));
    // The error test's evidence runs on from step to step, as the workflow carries it.
    let carried: StepEvidence | undefined;
    for (const w of steps) {
      const o = runStep(
        rng,
        traffic,
        w,
        INTERVALS_PER_STEP,
        none,
        cfg,
        { base: probs, cand: probs },
        slo,
        false,
        r < verifyRuns,
        carried,
      );
      carried = cfg.legacy ? undefined : o.evidence;
      inconclusive += o.inconclusiveLooks;
      if (o.rolledBackAt !== null) {
        falseRollbacks++;
        for (const b of o.by) byCheck[b] = (byCheck[b] ?? 0) + 1;
        break;
      }
    }
  }
  const looks = steps.length * INTERVALS_PER_STEP;
  return {
    rps: traffic.rps,
    baselineErrorRate: traffic.errorRate,
    analysis: cfg.label,
    method: cfg.method,
    alphas:
      cfg.method === 'sequential'
        ? steps.map((w) => stepAlpha(w, cfg.legacy))
        : [round(1 - cfg.compare.confidence)],
    ...(cfg.method === 'sequential' && !cfg.legacy ? { errorAlpha: ERROR_ALPHA } : {}),
    ...(cfg.legacy ? { legacy: true } : {}),
    runs,
    looksPerRun: looks,
    falseRollbacks,
    falseRollbackRate: round(falseRollbacks / runs),
    upper95: round(upperBound95(falseRollbacks, runs)),
    inconclusiveLookRate: round(inconclusive / (runs * looks)),
    byCheck,
  };
}

interface LateRow {
  rps: number;
  baselineErrorRate: number;
  analysis: string;
  fromWeight: number;
  runs: number;
  /** Rolled back before the regression began (a false rollback). */
  early: number;
  /** Caught at the step where it began, within 3 intervals / within the step. */
  within3: number;
  atStep: number;
  /** Caught by the promotion's last comparing step. */
  byEnd: number;
}

/**
 * A regression that appears only at a later step (one that shows under load): 2× errors from the
 * step at `fromWeight` on, the earlier steps healthy. What carrying the error test across steps
 * costs here is the first step's healthy evidence, which the restarts (RESTART_WEIGHTS) bound.
 */
function lateRegression(traffic: Traffic, cfg: CanaryConfig, runs: number, fromWeight: number): LateRow {
  const probs = bucketProbabilities(lognormalCdf(traffic.medianS, traffic.sigma));
  const healthy: Regression = { name: 'none', errorFactor: 1, latency: NO_LATENCY_CHANGE };
  const worse: Regression = { name: 'error rate x2', errorFactor: 2, latency: NO_LATENCY_CHANGE };
  const slo = sloFor(traffic);
  const steps = STEP_WEIGHTS.filter((w) => w < 100);
  let early = 0;
  let within3 = 0;
  let atStep = 0;
  let byEnd = 0;
  for (let r = 0; r < runs; r++) {
    const rng = new Rng(seedOf(`late|${fromWeight}|${traffic.rps}rps|${traffic.errorRate}#${r}`));
    let carried: StepEvidence | undefined;
    for (const w of steps) {
      const reg = w >= fromWeight ? worse : healthy;
      const o = runStep(
        rng,
        traffic,
        w,
        INTERVALS_PER_STEP,
        reg,
        cfg,
        { base: probs, cand: probs },
        slo,
        false,
        false,
        carried,
      );
      carried = cfg.legacy ? undefined : o.evidence;
      if (o.rolledBackAt === null) continue;
      if (w < fromWeight) early++;
      else {
        byEnd++;
        if (w === fromWeight) {
          atStep++;
          if (o.rolledBackAt <= 3) within3++;
        }
      }
      break;
    }
  }
  return {
    rps: traffic.rps,
    baselineErrorRate: traffic.errorRate,
    analysis: cfg.label,
    fromWeight,
    runs,
    early: round(early / runs),
    within3: round(within3 / runs),
    atStep: round(atStep / runs),
    byEnd: round(byEnd / runs),
  };
}

/** One-sided 95% Clopper–Pearson upper bound of a rate from k events in n runs. */
function upperBound95(k: number, n: number): number {
  return k >= n ? 1 : betaPpf(0.95, k + 1, n - k);
}

// ---- targets (issue 11) ----

interface Target {
  name: string;
  met: boolean;
  detail: string;
}

const pct = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined ? '–' : `${(x * 100).toFixed(digits)}%`;
const where = (d: DetectionRow): string =>
  `${d.regression} at ${d.canaryPercent}%/${d.rps} rps/${pct(d.baselineErrorRate, 1)} base`;

/** Paired: the runs where one analysis caught it and the other did not. */
function pairedDiff(a: boolean[], b: boolean[]): { diff: number; se: number } {
  let onlyA = 0;
  let onlyB = 0;
  a.forEach((x, i) => {
    if (x && !b[i]) onlyA++;
    if (!x && b[i]) onlyB++;
  });
  return { diff: (onlyB - onlyA) / a.length, se: Math.sqrt(onlyA + onlyB) / a.length };
}

interface PairRow {
  scenario: string;
  todayWithin3: number;
  sequentialWithin3: number;
  todayDetected: number;
  sequentialDetected: number;
  /** sequential − today, and its paired standard error, within 3 and within the step. */
  within3Diff: number;
  within3Se: number;
  detectedDiff: number;
  detectedSe: number;
  atLeastAsGood: boolean;
  /**
   * The sequential default allows this effect (a 1.2× error rate under its 20% relative margin;
   * at a 5% base rate today's 0.5 pp margin did not): the defaults differ in what they were told
   * to catch, not in how well they judge, so the target leaves it apart.
   */
  allowedByDefault: boolean;
}

function evaluate(
  detection: { row: DetectionRow; flags: RunFlags }[],
  aa: AaRow[],
  labels: { today: string; seq: string; strict: string; absolute: string },
): { targets: Target[]; pairs: PairRow[]; marginCost: string[] } {
  const targets: Target[] = [];
  const rows = detection.map((d) => d.row);
  const find = (scenario: string, label: string) =>
    detection.find((d) => d.row.scenario === scenario && d.row.analysis === label);

  const seqAa = aa.filter((a) => a.method === 'sequential' && !a.legacy);
  const aaMet =
    seqAa.length > 0 &&
    seqAa.every((a) => a.runs >= 2000 && a.falseRollbackRate <= 0.01 && a.upper95 < 0.015);
  targets.push({
    name: 'A/A false rollbacks per promotion ≤ 1% (95% upper bound < 1.5%, ≥ 2000 runs), sequential',
    met: aaMet,
    detail: seqAa
      .map(
        (a) =>
          `${a.analysis} ${a.rps} rps/${pct(a.baselineErrorRate)}: ${pct(a.falseRollbackRate, 2)} (upper ${pct(a.upper95, 2)}, ${a.runs} runs)`,
      )
      .join('; '),
  });

  const strict = rows.find(
    (d) =>
      d.regression === 'error rate x2' &&
      d.canaryPercent === 5 &&
      d.rps === 200 &&
      d.baselineErrorRate === 0.01 &&
      d.analysis === labels.strict,
  );
  targets.push({
    name: '2× errors at 5%/200 rps/1% base, strict, caught within 3 intervals in ≥ 75% of runs',
    met: strict !== undefined && strict.within3 >= 0.75,
    detail: strict
      ? `${pct(strict.within3)} within 3 (comparison alone ${pct(strict.comparisonWithin3)}; fixed-horizon optimum ${pct(strict.optimumWithin3)})`
      : 'row missing',
  });

  // Rows whose effect lies beyond their margin: within it, the optimum is α itself and no ratio means anything.
  const errorRows = rows.filter(
    (d) => d.method === 'sequential' && !d.legacy && d.optimumWithin3 !== undefined && beyondMargin(d),
  );
  const short = errorRows.filter((d) => (d.ratioToOptimum ?? 0) < 0.8);
  const strong = errorRows.filter((d) => (d.optimumWithin3 ?? 0) >= 0.5);
  const strongShort = strong.filter((d) => (d.ratioToOptimum ?? 0) < 0.8);
  const atOwn = errorRows.filter(
    (d) =>
      (d.optimumAtTestAlphaWithin3 ?? 0) > 0 &&
      d.comparisonWithin3 >= 0.8 * (d.optimumAtTestAlphaWithin3 ?? 0),
  );
  targets.push({
    name: 'every sequential error row (effect beyond its margin) within 3 intervals ≥ 80% of the fixed-horizon optimum (comparison alone, same margin, optimum at the promotion α 1%)',
    met: short.length === 0 && errorRows.length > 0,
    detail:
      `${errorRows.length - short.length} of ${errorRows.length} rows reach 80%` +
      ` (of the ${strong.length} rows where the optimum itself is ≥ 50%: ${strong.length - strongShort.length});` +
      ` ${atOwn.length} of ${errorRows.length} reach 80% of the optimum at the error test's own α (${ERROR_ALPHA}: what the split with latency leaves)` +
      (short.length > 0
        ? `; short: ${short.map((d) => `${where(d)} ${d.analysis}: ${pct(d.comparisonWithin3)} vs ${pct(d.optimumWithin3)} (${d.ratioToOptimum ?? 0})`).join('; ')}`
        : ''),
  });

  const pairs: PairRow[] = [];
  for (const d of detection.filter((x) => x.row.analysis === labels.today)) {
    const s = find(d.row.scenario, labels.seq);
    if (!s) continue;
    const w3 = pairedDiff(d.flags.within3, s.flags.within3);
    const det = pairedDiff(d.flags.detected, s.flags.detected);
    pairs.push({
      scenario: `${where(d.row)}`,
      todayWithin3: d.row.within3,
      sequentialWithin3: s.row.within3,
      todayDetected: d.row.detectionRate,
      sequentialDetected: s.row.detectionRate,
      within3Diff: round(w3.diff),
      within3Se: round(w3.se),
      detectedDiff: round(det.diff),
      detectedSe: round(det.se),
      // not worse beyond two paired standard errors (the runs' draws are shared)
      atLeastAsGood: w3.diff >= -2 * w3.se && det.diff >= -2 * det.se,
      allowedByDefault: s.row.optimumWithin3 !== undefined && !beyondMargin(s.row),
    });
  }
  const judged = pairs.filter((p) => !p.allowedByDefault);
  const worse = judged.filter((p) => !p.atLeastAsGood);
  const allowedWorse = pairs.filter((p) => p.allowedByDefault && !p.atLeastAsGood);
  targets.push({
    name: "every row at least as good as today's per-interval analysis (sequential default vs today's interval row, same scenario and draws: within 3 and within the step, not worse beyond 2 paired standard errors; scenarios whose effect the sequential default allows — 1.2× errors under its 20% relative margin — are shown apart: not catching them is what that default was told to do)",
    met: worse.length === 0 && judged.length > 0,
    detail:
      `${judged.length - worse.length} of ${judged.length} scenarios` +
      `; apart, ${pairs.length - judged.length} the default allows (${allowedWorse.length} of them caught less often than today's 0.5 pp margin caught them)` +
      (worse.length > 0
        ? `; worse: ${worse.map((p) => `${p.scenario}: within 3 ${pct(p.todayWithin3)} → ${pct(p.sequentialWithin3)}, detected ${pct(p.todayDetected)} → ${pct(p.sequentialDetected)}`).join('; ')}`
        : ''),
  });

  const bimodal = rows.find(
    (d) =>
      d.regression.startsWith('bimodal') &&
      d.canaryPercent === 25 &&
      d.rps === 200 &&
      d.analysis === labels.seq,
  );
  targets.push({
    name: 'bimodal latency (10% of requests 3× slower, same median) caught within 3 intervals ≥ 90% at 25%/200 rps',
    met: bimodal !== undefined && bimodal.within3 >= 0.9,
    detail: bimodal ? `${pct(bimodal.within3)} within 3 (by ${fmtBy(bimodal.byCheck)})` : 'row missing',
  });

  const marginCost: string[] = [];
  for (const d of detection.filter((x) => x.row.analysis === labels.absolute)) {
    const rel = find(d.row.scenario, labels.seq);
    if (!rel) continue;
    marginCost.push(
      `${where(d.row)}: within 3 intervals ${pct(rel.row.within3)} under the relative default (20%, optimum ${pct(rel.row.optimumWithin3)}) vs ${pct(d.row.within3)} under the old absolute 0.5 pp (optimum ${pct(d.row.optimumWithin3)}); within the step ${pct(rel.row.detectionRate)} vs ${pct(d.row.detectionRate)}`,
    );
  }
  return { targets, pairs, marginCost };
}

/** Is the true rate above the row's null rate (the regression outside what its margin allows)? */
function beyondMargin(d: DetectionRow): boolean {
  return d.errorFactor * d.baselineErrorRate > nullRate(d.baselineErrorRate, d.margin) + 1e-12;
}

function fmtBy(by: Record<string, number>): string {
  const short: Record<string, string> = {
    'sequential-error-rate': 'errors',
    'sequential-latency-order': 'order',
    'sequential-latency-equality': 'equality',
    'two-proportion-z': 'z',
    'mann-whitney-u': 'MWU',
    'quantile-order-statistic': 'p99',
  };
  return Object.entries(by)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${short[k] ?? k} ${v}`)
    .join(', ');
}
// ---- A/B under continuous peeking ----

interface AbScenario {
  baselineRate: number;
  lift: number;
  rewardsPerArmPerInterval: number;
  maxIntervals: number;
}

function abRuns(seed: number, s: AbScenario, p: SequentialParams, runs: number) {
  const rng = new Rng(seed);
  let wins = 0;
  let losses = 0;
  let naiveFalse = 0;
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const c = { count: 0, sum: 0 };
    const b = { count: 0, sum: 0 };
    let state: SequentialState | undefined;
    let naiveStopped = false;
    for (let i = 1; i <= s.maxIntervals; i++) {
      const n = s.rewardsPerArmPerInterval;
      c.count += n;
      c.sum += rng.binomial(n, s.baselineRate + s.lift);
      b.count += n;
      b.sum += rng.binomial(n, s.baselineRate);
      // The tempting mistake: a fixed-horizon two-sided z-test at α, looked at every interval.
      if (!naiveStopped && c.count >= p.minRewards) {
        const pc = c.sum / c.count;
        const pb = b.sum / b.count;
        const pooled = (c.sum + b.sum) / (c.count + b.count);
        const se = Math.sqrt(pooled * (1 - pooled) * (1 / c.count + 1 / b.count));
        if (se > 0 && Math.abs((pc - pb) / se) > 1.959964) {
          naiveStopped = true;
          naiveFalse++;
        }
      }
      const v = abTest(c, b, p, state);
      state = { pValue: v.pValue, ci: v.ci };
      if (v.decision !== 'continue') {
        if (v.decision === 'candidate_wins') wins++;
        else losses++;
        times.push(i);
        break;
      }
    }
  }
  times.sort((x, y) => x - y);
  return {
    ...s,
    runs,
    candidateWins: wins,
    baselineWins: losses,
    decisionRate: round((wins + losses) / runs),
    candidateWinRate: round(wins / runs),
    medianIntervalsToDecision: times.length ? times[Math.floor(times.length / 2)] : null,
    naivePeekingRejectRate: round(naiveFalse / runs),
  };
}

// ---- bandit regret ----

interface BanditScenario {
  rates: [number, number];
  rewardsPerInterval: number;
  horizon: number;
}

function banditRuns(seed: number, s: BanditScenario, runs: number) {
  const rng = new Rng(seed);
  const [ra, rb] = s.rates;
  const best = ra >= rb ? 0 : 1;
  const gap = Math.abs(ra - rb);
  const floor = DEFAULT_BANDIT.explorationFloor / 100;
  const oracle = s.rewardsPerInterval * floor * gap * s.horizon;
  const ratios: number[] = [];
  const stopTimes: number[] = [];
  let correctStops = 0;
  let stops = 0;
  let regretToStop = 0;
  let abRegretToStop = 0;
  for (let r = 0; r < runs; r++) {
    const arms = { a: { count: 0, sum: 0 }, b: { count: 0, sum: 0 } };
    let regret = 0;
    let stoppedAt: number | null = null;
    for (let i = 1; i <= s.horizon; i++) {
      const v = thompsonWeights(arms, DEFAULT_BANDIT, seed * 1_000_003 + r * 1009 + i);
      if (stoppedAt === null && v.decision === 'stop') {
        stoppedAt = i;
        stops++;
        stopTimes.push(i);
        if ((v.best === 'a' ? 0 : 1) === best) correctStops++;
        regretToStop += regret;
        abRegretToStop += (i - 1) * s.rewardsPerInterval * 0.5 * gap;
      }
      const wa = (v.weights.a ?? 50) / 100;
      const na = rng.binomial(s.rewardsPerInterval, wa);
      const nb = s.rewardsPerInterval - na;
      regret += (best === 0 ? nb : na) * gap;
      arms.a.count += na;
      arms.a.sum += rng.binomial(na, ra);
      arms.b.count += nb;
      arms.b.sum += rng.binomial(nb, rb);
    }
    ratios.push(regret / oracle);
  }
  ratios.sort((x, y) => x - y);
  stopTimes.sort((x, y) => x - y);
  return {
    ...s,
    runs,
    oracleMinimumRegret: round(oracle),
    meanRegretRatio: round(ratios.reduce((x, y) => x + y, 0) / runs),
    p95RegretRatio: round(ratios[Math.floor(0.95 * (runs - 1))] as number),
    stopRate: round(stops / runs),
    correctArmAtStop: stops ? round(correctStops / stops) : null,
    medianIntervalsToStop: stopTimes.length ? stopTimes[Math.floor(stopTimes.length / 2)] : null,
    regretUntilStopVsFiftyFifty: abRegretToStop > 0 ? round(regretToStop / abRegretToStop) : null,
  };
}

function round(x: number, digits = 4): number {
  return Number(x.toPrecision(digits));
}

// ---- the run ----

function main(): void {
  // `--render <json>`: the markdown again from a run's JSON (the same figures, no new run).
  const render = process.argv.indexOf('--render');
  if (render >= 0) {
    const jsonPath = path.resolve(process.argv[render + 1] ?? '');
    const md = markdown(JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as Parameters<typeof markdown>[0]);
    fs.writeFileSync(jsonPath.replace(/\.json$/, '.md'), md);
    return;
  }
  const quick = process.argv.includes('--quick');
  const started = Date.now();
  const elapsedS = (): number => (Date.now() - started) / 1000;
  // CPU seconds too: the machine is shared, and wall time says more about the neighbours.
  const cpuS = (): number => round(process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6);
  const runs = quick ? 100 : 500;
  const aaRuns = quick ? 300 : 2000;
  const verifyRuns = quick ? 20 : 100;
  const failureLimit = SPEC_CANARY.failureLimit;

  const seqDefault: Omit<StepCompareParams, 'alpha'> = {
    maxErrorRateIncrease: SPEC_ANALYSIS.maxErrorRateIncrease,
    maxRelativeErrorRateIncrease: SPEC_ANALYSIS.maxRelativeErrorRateIncrease,
    maxLatencyIncrease: SPEC_ANALYSIS.maxLatencyIncrease,
    minLatencyIncreaseMs: SPEC_ANALYSIS.minLatencyIncreaseMs,
    minSamples: SPEC_ANALYSIS.minSamples,
    latencyEquality: SPEC_ANALYSIS.latencyEquality,
  };
  // Today's analysis as the workflow ran it before issue 11: compareVariants with the spec's fields
  // as activities/measure.ts passes them, at the defaults of then (absolute error margin 0.5 pp).
  const todayCompare: CompareParams = {
    confidence: SPEC_ANALYSIS.confidence,
    maxErrorRateIncrease: DEFAULT_COMPARE.maxErrorRateIncrease,
    maxLatencyIncrease: SPEC_ANALYSIS.maxLatencyIncrease,
    minLatencyIncreaseMs: OLD_FLOOR_MS,
    minSamples: SPEC_ANALYSIS.minSamples,
  };
  const today: CanaryConfig = {
    label: 'today: interval',
    method: 'interval',
    compare: todayCompare,
    sequential: seqDefault,
    failureLimit,
  };
  const todayStep: CanaryConfig = { ...today, label: 'today: step window', method: 'step' };
  const todayStrict: CanaryConfig = {
    ...today,
    label: 'today: interval, strict',
    compare: { ...todayCompare, maxErrorRateIncrease: 0, maxLatencyIncrease: 0, minLatencyIncreaseMs: 0 },
  };
  const seq: CanaryConfig = { ...today, label: 'sequential', method: 'sequential' };
  const seqStrict: CanaryConfig = {
    ...seq,
    label: 'sequential, strict',
    sequential: {
      ...seqDefault,
      maxErrorRateIncrease: 0,
      maxRelativeErrorRateIncrease: 0,
      maxLatencyIncrease: 0,
      minLatencyIncreaseMs: 0,
    },
  };
  const seqAbsolute: CanaryConfig = {
    ...seq,
    label: 'sequential, 0.5 pp margin',
    sequential: { ...seqDefault, maxErrorRateIncrease: 0.005 },
  };
  const seqBefore: CanaryConfig = {
    ...seq,
    label: 'sequential before (per-step α, bounds alike)',
    sequential: { ...seqDefault, minLatencyIncreaseMs: OLD_FLOOR_MS },
    legacy: true,
  };
  const seqStrictBefore: CanaryConfig = { ...seqStrict, label: 'sequential before, strict', legacy: true };
  const seqOldFloor: CanaryConfig = {
    ...seq,
    label: `sequential, ${OLD_FLOOR_MS} ms floor (the default before)`,
    sequential: { ...seqDefault, minLatencyIncreaseMs: OLD_FLOOR_MS },
  };
  const seqOrderOnly: CanaryConfig = {
    ...seq,
    label: 'sequential, no equality test',
    sequential: { ...seqDefault, latencyEquality: false },
  };

  const base = (rps: number, errorRate: number): Traffic => ({
    rps,
    intervalS: SPEC_CANARY.interval / 1000,
    errorRate,
    medianS: 0.02,
    sigma: 0.5,
  });
  const x2: Regression = { name: 'error rate x2', errorFactor: 2, latency: NO_LATENCY_CHANGE };
  const x12: Regression = { name: 'error rate x1.2', errorFactor: 1.2, latency: NO_LATENCY_CHANGE };
  const p30: Regression = { name: 'p99 +30%', errorFactor: 1, latency: { kind: 'scale', factor: 1.3 } };
  const p10: Regression = { name: 'p99 +10%', errorFactor: 1, latency: { kind: 'scale', factor: 1.1 } };
  const bimodal: Regression = {
    name: 'bimodal latency (10% 3× slower, same median)',
    errorFactor: 1,
    latency: { kind: 'bimodal', share: 0.1, factor: 3 },
  };

  const plan: { s: Scenario; configs: CanaryConfig[] }[] = [];
  const add = (reg: Regression, weight: number, rps: number, er: number, configs: CanaryConfig[]): void => {
    plan.push({ s: { reg, weight, traffic: base(rps, er) }, configs });
  };
  const x2Configs = (er: number): CanaryConfig[] => [
    today,
    todayStep,
    todayStrict,
    seq,
    seqStrict,
    seqBefore,
    seqStrictBefore,
    ...(er === 0.01 ? [seqAbsolute] : []),
  ];
  // 5% canary, 1-minute intervals: 50/200/1000 rps × 0.1%, 1%, 5% base error
  for (const er of [0.001, 0.01, 0.05]) for (const rps of [50, 200, 1000]) add(x2, 5, rps, er, x2Configs(er));
  // a 10% first step at modest traffic (the integration test's setting)
  for (const rps of [50, 100]) add(x2, 10, rps, 0.01, x2Configs(0.01));
  for (const er of [0.01, 0.05]) for (const rps of [50, 200]) add(x2, 25, rps, er, x2Configs(er));
  for (const er of [0.01, 0.05])
    for (const rps of [50, 200])
      for (const w of [5, 25]) add(x12, w, rps, er, [today, todayStrict, seq, seqStrict, seqStrictBefore]);
  for (const rps of [50, 200])
    for (const w of [5, 25]) add(p30, w, rps, 0.01, [today, seq, seqBefore, seqOldFloor]);
  for (const rps of [50, 200])
    for (const w of [5, 25])
      add(p10, w, rps, 0.01, [today, todayStrict, seq, seqStrict, seqBefore, seqStrictBefore]);
  add(p10, 25, 200, 0.05, [todayStrict, seqStrict, seqStrictBefore]);
  add(bimodal, 25, 200, 0.01, [today, seq, seqBefore, seqOrderOnly]);
  add(bimodal, 5, 200, 0.01, [today, seq, seqBefore]);

  const detections: { row: DetectionRow; flags: RunFlags }[] = [];
  const cpuByMethod: Record<string, number> = {};
  for (const { s, configs } of plan) {
    for (const cfg of configs) {
      const before = cpuS();
      detections.push(detection(s, cfg, runs, INTERVALS_PER_STEP, verifyRuns));
      cpuByMethod[cfg.method] = round((cpuByMethod[cfg.method] ?? 0) + cpuS() - before);
    }
  }
  log.info('detection done', { rows: detections.length, elapsedS: elapsedS(), cpuS: cpuS(), ...cpuByMethod });

  const aa: AaRow[] = [];
  for (const rps of [50, 200]) {
    for (const er of [0.01, 0.05]) {
      aa.push(aaFalseRollbacks(base(rps, er), today, aaRuns, 0));
      aa.push(aaFalseRollbacks(base(rps, er), todayStep, aaRuns, 0));
    }
  }
  for (const rps of [50, 200]) aa.push(aaFalseRollbacks(base(rps, 0.05), todayStrict, aaRuns, 0));
  log.info('A/A (today) done', { elapsedS: elapsedS(), cpuS: cpuS() });
  for (const [rps, er] of [
    [200, 0.01],
    [50, 0.01],
    [200, 0.05],
    [50, 0.05],
  ] as const)
    aa.push(aaFalseRollbacks(base(rps, er), seq, aaRuns, verifyRuns));
  aa.push(aaFalseRollbacks(base(200, 0.01), seqStrict, aaRuns, verifyRuns));
  for (const [rps, er] of [
    [200, 0.01],
    [50, 0.01],
  ] as const)
    aa.push(aaFalseRollbacks(base(rps, er), seqBefore, aaRuns, 0));
  log.info('A/A (sequential) done', { elapsedS: elapsedS(), cpuS: cpuS() });

  const late: LateRow[] = [];
  for (const rps of [50, 200])
    for (const cfg of [today, seqBefore, seq, seqStrictBefore, seqStrict])
      late.push(lateRegression(base(rps, 0.01), cfg, runs, 25));
  log.info('late regressions done', { elapsedS: elapsedS(), cpuS: cpuS() });

  const abRunsN = quick ? 200 : 1000;
  // [baseline rate, lift]: type-I error at lift 0, power at the rest (seeds in this order)
  const abSettings: [number, number][] = [
    [0.1, 0],
    [0.5, 0],
    [0.1, 0.01],
    [0.1, 0.005],
    [0.1, 0.02],
    [0.1, -0.01],
  ];
  let seed = 1000;
  const ab = abSettings.map(([baselineRate, lift]) =>
    abRuns(
      seed++,
      { baselineRate, lift, rewardsPerArmPerInterval: 300, maxIntervals: 240 },
      DEFAULT_AB,
      abRunsN,
    ),
  );
  log.info('A/B done', { elapsedS: elapsedS(), cpuS: cpuS() });
  const banditN = quick ? 30 : 100;
  const bandit = [
    banditRuns(seed++, { rates: [0.1, 0.12], rewardsPerInterval: 600, horizon: 60 }, banditN),
    banditRuns(seed++, { rates: [0.1, 0.11], rewardsPerInterval: 600, horizon: 60 }, banditN),
    banditRuns(seed++, { rates: [0.9, 0.92], rewardsPerInterval: 600, horizon: 60 }, banditN),
  ];
  log.info('bandit done', { elapsedS: elapsedS(), cpuS: cpuS() });

  const verdicts = evaluate(detections, aa, {
    today: today.label,
    seq: seq.label,
    strict: seqStrict.label,
    absolute: seqAbsolute.label,
  });
  const result = {
    generatedAt: new Date().toISOString(),
    quick,
    elapsedS: elapsedS(),
    cpuS: cpuS(),
    defaults: {
      today: { compare: todayCompare, failureLimit },
      sequential: {
        ...seqDefault,
        falseRollbackRate: SPEC_ANALYSIS.falseRollbackRate,
        errorAlpha: ERROR_ALPHA,
        stepLatencyAlphas: BUDGET.steps,
      },
      strict: seqStrict.sequential,
      ab: DEFAULT_AB,
      bandit: DEFAULT_BANDIT,
    },
    model: {
      latency:
        'lognormal, median 20 ms, log-sd 0.5 (baseline p99 ≈ 64 ms), binned on the router latencyBuckets',
      errors:
        'binomial per request (normal approximation above 200 expected errors); regressions scale the candidate error rate',
      latencyRegression:
        'p99 +x%: the whole candidate distribution scaled (every request x% slower); bimodal: 10% of candidate requests 3× slower than the rest, the mixture rescaled to the baseline median',
      intervals: `${SPEC_CANARY.interval / 1000} s; a canary step = ${INTERVALS_PER_STEP} intervals; failureLimit ${failureLimit} consecutive failed intervals (the SLO guard; and the comparison in today's analysis)`,
      slo: 'p99 ≤ 150 ms, error rate ≤ max(2%, 3× baseline), minRequests 20: loose, so the comparison does the work',
      alphas:
        "sequential: splitFalseRollbackBudget(falseRollbackRate, spec steps): the error test one promotion-wide α across the steps, the latency tests a share per step; a one-step detection row uses the latency α its step has in the default promotion (5% → first step, 25% → second, 10% → treated as a first step) and starts the error test at that step (no earlier step's evidence: conservative for a regression)",
      optimum:
        "fixed-horizon optimum: the exact conditional test on both variants' errors over 3 intervals (uniformly most powerful unbiased for two rates, non-randomized), null ratio max(1+r, 1+δ/p_b) at the row's margin, α = the promotion's falseRollbackRate; oracleWithin3: the one-sample exact test told the baseline's true rate",
      seeds: "per run, from the scenario's name: every analysis of a scenario sees the same traffic",
    },
    targets: verdicts.targets,
    marginCost: verdicts.marginCost,
    pairs: verdicts.pairs,
    detection: detections.map((d) => d.row),
    aa,
    late,
    ab,
    bandit,
  };
  const date = new Date().toISOString().slice(0, 10);
  const dir = path.join(projectRoot, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const suffix = quick ? '-quick' : '';
  const jsonPath = path.join(dir, `decisions-${date}${suffix}.json`);
  fs.writeFileSync(jsonPath, JSON.stringify(result, null, 1) + '\n');
  const md = markdown(result);
  fs.writeFileSync(path.join(dir, `decisions-${date}${suffix}.md`), md);
  process.stdout.write(md);
  log.info('wrote results', { json: path.relative(projectRoot, jsonPath), elapsedS: result.elapsedS });
}

function markdown(r: {
  generatedAt?: string;
  elapsedS: number;
  cpuS: number;
  quick: boolean;
  targets: Target[];
  marginCost: string[];
  pairs: PairRow[];
  detection: DetectionRow[];
  aa: AaRow[];
  late: LateRow[];
  ab: ReturnType<typeof abRuns>[];
  bandit: ReturnType<typeof banditRuns>[];
}): string {
  const lines: string[] = [];
  const alphaText = (d: DetectionRow): string =>
    d.method !== 'sequential'
      ? `${d.alpha}/look`
      : d.legacy
        ? `${d.alpha}/step, all tests`
        : `errors ${d.errorAlpha}, latency ${d.alpha}/step`;
  lines.push(
    `# Decision quality (${(r.generatedAt ?? new Date().toISOString()).slice(0, 10)}${r.quick ? ', quick' : ''}, ${r.elapsedS.toFixed(0)} s, ${r.cpuS.toFixed(0)} CPU s)`,
    '',
  );
  lines.push(
    `Today's analysis (\`method: interval\`): compareVariants on each interval alone at confidence ${SPEC_ANALYSIS.confidence}, absolute error margin ${DEFAULT_COMPARE.maxErrorRateIncrease} (the default before issue 11), latency band ${SPEC_ANALYSIS.maxLatencyIncrease} and floor ${OLD_FLOOR_MS} ms (the default of then), ${SPEC_CANARY.failureLimit} failing looks in a row roll back ("step window": the same tests on everything since the step began). ` +
      `Sequential (\`method: sequential\`, the spec's defaults: maxRelativeErrorRateIncrease ${SPEC_ANALYSIS.maxRelativeErrorRateIncrease}, maxErrorRateIncrease ${SPEC_ANALYSIS.maxErrorRateIncrease}, maxLatencyIncrease ${SPEC_ANALYSIS.maxLatencyIncrease}, minLatencyIncreaseMs ${SPEC_ANALYSIS.minLatencyIncreaseMs}, minSamples ${SPEC_ANALYSIS.minSamples}, latencyEquality ${SPEC_ANALYSIS.latencyEquality}): addInterval / judgeStep over the step (the error test over all the promotion's steps), one failing look rolls back; the SLO guard keeps ${SPEC_CANARY.failureLimit} in a row. "Strict": no allowed increase, no band, no floor.`,
    '',
    `α: the promotion's falseRollbackRate ${SPEC_ANALYSIS.falseRollbackRate} (splitFalseRollbackBudget over the default steps ${STEP_WEIGHTS.join('/')}%): the error test ${ERROR_ALPHA} for the whole promotion, its evidence carried from step to step (its first ${EARLY_LOOKS.looks} looks also an exact group-sequential test at ${round(ERROR_ALPHA * EARLY_LOOKS.share, 6)}, α spent as (k/${EARLY_LOOKS.looks})^${EARLY_LOOKS.exponent}; the e-process the other ${round(ERROR_ALPHA * (1 - EARLY_LOOKS.share), 6)}; early-looks.ts); the latency tests ${BUDGET.steps.map((a) => (a === null ? '–' : round(a))).join(' / ')} per step (order and equality half each). A one-step detection row starts the error test at its step and uses that step's latency α in the default promotion: 5% → ${stepAlpha(5)} (first step), 25% → ${stepAlpha(25)} (second), 10% → ${stepAlpha(10)} (treated as a first step).`,
    '',
    `Fixed-horizon optimum: the exact conditional test on all the data of 3 intervals (given both variants' errors, the candidate's share of them against its null share: for two rates the uniformly most powerful unbiased test, here non-randomized), at the promotion's α (${SPEC_ANALYSIS.falseRollbackRate}, more than any one step gets) and the row's margin (null ratio max(1+r, 1+δ/p_b)): no test on the same requests at that α does better. "Oracle": the one-sample exact test told the baseline's true rate (the optimum column of the runs before 2026-12-01 evening), which no test on the data reaches where the baseline is small (a 25% canary's baseline is only 3× the candidate). Ratio = the comparison alone within 3 ÷ optimum. SPRT: a likelihood-ratio test knowing the true effect, same α and margin, looks 1–3 (a reference for what an anytime-valid test tuned to this one effect gets); "at the error test's own α": the same SPRT at the α the sequential error test actually has (${ERROR_ALPHA}, × 0.9 with an absolute margin), so the column before it minus this one is what the budget split costs, and this one minus the comparison's detection what not knowing the effect costs. "Best single-interval test, 2 in a row": today's oracle (exact test per interval, baseline known, no margin, α 0.02 per look, failing twice in a row within 3).`,
    '',
    `"Sequential before": the sequential analysis before errors spanned steps, on the same draws: each step's α (${LEGACY_ALPHAS.steps.map((a) => (a === null ? '–' : a)).join(' / ')}) for all three tests, the error test 60% of it and fresh at each step, every latency bound weighted alike (decisions-2026-12-01-before.md is that run alone).`,
    '',
    'Every analysis of a scenario sees the same simulated traffic (seeded per run), so its rows differ by the analysis alone.',
    '',
  );
  lines.push('## Targets (issue 11)', '');
  for (const t of r.targets) lines.push(`- **${t.met ? 'met' : 'missed'}**: ${t.name}. ${t.detail}`);
  lines.push('', '## What the old absolute margin (0.5 pp) costs', '');
  for (const m of r.marginCost) lines.push(`- ${m}`);
  lines.push('', '## Sequential vs today (interval), same draws', '');
  lines.push(
    '| scenario | effect | today within 3 | sequential within 3 | today detected | sequential detected | Δ within 3 (± 2 se) | at least as good |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const p of r.pairs) {
    lines.push(
      `| ${p.scenario} | ${p.allowedByDefault ? 'the sequential default allows it' : 'regression'} | ${pct(p.todayWithin3)} | ${pct(p.sequentialWithin3)} | ${pct(p.todayDetected)} | ${pct(p.sequentialDetected)} | ${(p.within3Diff * 100).toFixed(1)} ± ${(2 * p.within3Se * 100).toFixed(1)} pp | ${p.atLeastAsGood ? 'yes' : 'no'} |`,
    );
  }
  lines.push('', `## Canary detection (one ${INTERVALS_PER_STEP}-interval step)`, '');
  lines.push(
    '| regression | canary | rps | base err | analysis | α | cand req/interval | detected | within 3 | within 3, comparison alone | fixed-horizon optimum within 3 | ratio | oracle (baseline rate known) | optimum at the error test’s own α | SPRT at the true effect | SPRT at the error test’s own α | best single-interval test, 2 in a row | median intervals | by |',
  );
  lines.push(
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const d of r.detection) {
    lines.push(
      `| ${d.regression} | ${d.canaryPercent}% | ${d.rps} | ${pct(d.baselineErrorRate)} | ${d.analysis} | ${alphaText(d)} | ${d.candidateRequestsPerInterval} | ${pct(d.detectionRate)} | ${pct(d.within3)} | ${pct(d.comparisonWithin3)} | ${pct(d.optimumWithin3)} | ${d.ratioToOptimum ?? '–'} | ${pct(d.oracleWithin3)} | ${pct(d.optimumAtTestAlphaWithin3)} | ${pct(d.sprtWithin3)} | ${pct(d.sprtAtTestAlphaWithin3)} | ${pct(d.bestSingleInterval2InARowWithin3)} | ${d.medianIntervalsToDetect ?? '–'} | ${fmtBy(d.byCheck)} |`,
    );
  }
  lines.push(
    '',
    `## A/A false rollbacks per promotion (steps ${STEP_WEIGHTS.filter((w) => w < 100).join('%, ')}% × ${INTERVALS_PER_STEP} intervals)`,
    '',
  );
  lines.push(
    '| rps | base err | analysis | α | runs | false rollbacks | rate | 95% upper (Clopper–Pearson) | inconclusive looks | by |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const a of r.aa) {
    lines.push(
      `| ${a.rps} | ${pct(a.baselineErrorRate)} | ${a.analysis} | ${a.method !== 'sequential' ? `${a.alphas[0]}/look` : a.legacy ? `${a.alphas.join(' / ')} per step, all tests` : `errors ${a.errorAlpha}; latency ${a.alphas.map((x) => round(x)).join(' / ')} per step`} | ${a.runs} | ${a.falseRollbacks} | ${pct(a.falseRollbackRate, 2)} | ${pct(a.upper95, 2)} | ${pct(a.inconclusiveLookRate)} | ${fmtBy(a.byCheck)} |`,
    );
  }
  lines.push(
    '',
    `## A regression that appears at a later step (2× errors from the 25% step on, the 5% step healthy; steps ${STEP_WEIGHTS.filter((w) => w < 100).join('%, ')}% × ${INTERVALS_PER_STEP} intervals)`,
    '',
    "The error test carried from step to step starts the 25% step with the 5% step's healthy evidence; its restarts (0.1 of its weight starts afresh at the second step) bound what that costs.",
    '',
  );
  lines.push(
    '| rps | base err | analysis | runs | rolled back before it began | caught at the 25% step within 3 | caught at the 25% step | caught by the end |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const l of r.late) {
    lines.push(
      `| ${l.rps} | ${pct(l.baselineErrorRate)} | ${l.analysis} | ${l.runs} | ${pct(l.early)} | ${pct(l.within3)} | ${pct(l.atStep)} | ${pct(l.byEnd)} |`,
    );
  }
  lines.push('', '## A/B (mSPRT, α = 0.05, looked at every interval)', '');
  lines.push(
    '| base rate | lift | rewards/arm/interval | max intervals | runs | decided | candidate wins | median intervals | naive z-test peeking rejects |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const a of r.ab) {
    lines.push(
      `| ${a.baselineRate} | ${a.lift} | ${a.rewardsPerArmPerInterval} | ${a.maxIntervals} | ${a.runs} | ${pct(a.decisionRate)} | ${pct(a.candidateWinRate)} | ${a.medianIntervalsToDecision ?? '–'} | ${pct(a.naivePeekingRejectRate)} |`,
    );
  }
  lines.push('', '## Bandit (Thompson, floor 5%, 60 intervals)', '');
  lines.push(
    'Regret ratio = expected rewards lost to the worse arm over the horizon ÷ the oracle minimum (knows the better arm, keeps only the 5% floor on the worse one).',
    '',
  );
  lines.push(
    '| rates | rewards/interval | runs | mean regret ratio | p95 ratio | stopped | right arm at stop | median stop interval | regret to stop vs 50/50 |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const b of r.bandit) {
    lines.push(
      `| ${b.rates.join(' vs ')} | ${b.rewardsPerInterval} | ${b.runs} | ${b.meanRegretRatio} | ${b.p95RegretRatio} | ${pct(b.stopRate)} | ${pct(b.correctArmAtStop)} | ${b.medianIntervalsToStop ?? '–'} | ${b.regretUntilStopVsFiftyFifty ?? '–'} |`,
    );
  }
  return lines.join('\n') + '\n';
}

main();
