/**
 * Decision-quality harness (`npm run bench:decisions`, not a test): simulates many promotions by
 * feeding the analysis synthetic per-interval windows — no servers — exactly as the workflow
 * does (SLO guard + comparison on each interval's window; `failureLimit` consecutive fails roll
 * back), and measures how good the decisions are. Writes bench/results/decisions-<date>.json and
 * a markdown summary beside it. Seeded: the same code gives the same figures.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createLogger } from '../common/log';
import { projectRoot } from '../common/paths';
import { latencyBuckets } from '../serving/router/route';
import {
  abTest,
  checkSlo,
  compareVariants,
  DEFAULT_AB,
  DEFAULT_BANDIT,
  DEFAULT_COMPARE,
  mergeWindows,
  binomialCdf,
  normalCdf,
  Rng,
  thompsonWeights,
  type CompareParams,
  type SequentialParams,
  type SequentialState,
  type VariantWindow,
} from '../activities/analysis';

const log = createLogger('bench-decisions');

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

interface Regression {
  name: string;
  errorFactor: number;
  latencyFactor: number;
}

const bounds = [...latencyBuckets, Infinity];

/** Bucket probabilities of a lognormal latency on the router's buckets. */
function bucketProbabilities(medianS: number, sigma: number): number[] {
  let prev = 0;
  return bounds.map((le) => {
    const cdf = le === Infinity ? 1 : normalCdf(Math.log(le / medianS) / sigma);
    const p = cdf - prev;
    prev = cdf;
    return Math.max(0, p);
  });
}

/** A window of n requests: errors binomial, latencies multinomial over the buckets. */
function simulateWindow(rng: Rng, n: number, errorRate: number, probs: number[]): VariantWindow {
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

// ---- canary steps as the workflow runs them ----

interface CanaryConfig {
  compare: CompareParams;
  failureLimit: number;
  slo: { maxP99Ms: number; maxErrorRate: number; minRequests: number };
  /** 'interval': each look judges that interval's window (the workflow today); 'step': everything since the step began. */
  window: 'interval' | 'step';
}

interface StepOutcome {
  /** 1-based interval of the rollback, or null if the step completed. */
  rolledBackAt: number | null;
  by: string[];
  inconclusiveLooks: number;
}

function runStep(
  rng: Rng,
  traffic: Traffic,
  weight: number,
  intervals: number,
  reg: Regression,
  cfg: CanaryConfig,
  probsBase: number[],
  probsCand: number[],
): StepOutcome {
  const perInterval = Math.round(traffic.rps * traffic.intervalS);
  let streak = 0;
  let inconclusiveLooks = 0;
  let accC: VariantWindow | undefined;
  let accB: VariantWindow | undefined;
  for (let i = 1; i <= intervals; i++) {
    const nc = rng.binomial(perInterval, weight / 100);
    const wc = simulateWindow(rng, nc, traffic.errorRate * reg.errorFactor, probsCand);
    const wb = simulateWindow(rng, perInterval - nc, traffic.errorRate, probsBase);
    accC = cfg.window === 'step' && accC ? mergeWindows(accC, wc) : wc;
    accB = cfg.window === 'step' && accB ? mergeWindows(accB, wb) : wb;
    const guard = checkSlo(wc, cfg.slo);
    const cmp = compareVariants(accC, accB, cfg.compare);
    const failing: string[] = [];
    if (guard.result === 'fail') failing.push('slo');
    for (const t of cmp.tests) if (t.result === 'fail') failing.push(t.test);
    if (guard.result === 'inconclusive' || cmp.result === 'inconclusive') inconclusiveLooks++;
    if (failing.length > 0) {
      streak++;
      if (streak >= cfg.failureLimit) return { rolledBackAt: i, by: failing, inconclusiveLooks };
    } else streak = 0;
  }
  return { rolledBackAt: null, by: [], inconclusiveLooks };
}

interface DetectionRow {
  regression: string;
  canaryPercent: number;
  rps: number;
  baselineErrorRate: number;
  window: string;
  runs: number;
  detected: number;
  detectionRate: number;
  within3: number;
  meanIntervalsToDetect: number | null;
  medianIntervalsToDetect: number | null;
  byCheck: Record<string, number>;
  candidateRequestsPerInterval: number;
  /**
   * What no per-interval test can beat: the most powerful one-sided test of the candidate's error
   * count that knows the baseline rate exactly and allows no margin, at the same per-look α, and
   * its chance of failureLimit (2) consecutive fails within 3 intervals. Error regressions only.
   */
  oraclePerLookPower?: number;
  oracleWithin3?: number;
  config?: string;
}

/** Power of the exact binomial test X_c ≥ k (size ≤ α under rate p0) when the rate is p1. */
function exactBinomialPower(n: number, p0: number, p1: number, alpha: number): number {
  let k = 0;
  while (k <= n && 1 - binomialCdf(k - 1, n, p0) > alpha) k++;
  return k > n ? 0 : 1 - binomialCdf(k - 1, n, p1);
}

function detection(
  seed: number,
  traffic: Traffic,
  weight: number,
  reg: Regression,
  cfg: CanaryConfig,
  runs: number,
  intervals: number,
): DetectionRow {
  const rng = new Rng(seed);
  const probsBase = bucketProbabilities(traffic.medianS, traffic.sigma);
  const probsCand = bucketProbabilities(traffic.medianS * reg.latencyFactor, traffic.sigma);
  const times: number[] = [];
  const byCheck: Record<string, number> = {};
  for (let r = 0; r < runs; r++) {
    const o = runStep(rng, traffic, weight, intervals, reg, cfg, probsBase, probsCand);
    if (o.rolledBackAt !== null) {
      times.push(o.rolledBackAt);
      for (const b of o.by) byCheck[b] = (byCheck[b] ?? 0) + 1;
    }
  }
  times.sort((a, b) => a - b);
  const within3 = times.filter((t) => t <= 3).length;
  const nc = Math.round(traffic.rps * traffic.intervalS * (weight / 100));
  const oracle =
    reg.errorFactor !== 1
      ? exactBinomialPower(
          nc,
          traffic.errorRate,
          traffic.errorRate * reg.errorFactor,
          1 - cfg.compare.confidence,
        )
      : undefined;
  return {
    ...(oracle !== undefined
      ? { oraclePerLookPower: round(oracle), oracleWithin3: round(oracle * oracle * (2 - oracle)) }
      : {}),
    regression: reg.name,
    canaryPercent: weight,
    rps: traffic.rps,
    baselineErrorRate: traffic.errorRate,
    window: cfg.window,
    runs,
    detected: times.length,
    detectionRate: round(times.length / runs),
    within3: round(within3 / runs),
    meanIntervalsToDetect: times.length ? round(times.reduce((s, x) => s + x, 0) / times.length, 3) : null,
    medianIntervalsToDetect: times.length ? (times[Math.floor(times.length / 2)] as number) : null,
    byCheck,
    candidateRequestsPerInterval: Math.round(traffic.rps * traffic.intervalS * (weight / 100)),
  };
}

/** A/A: an unchanged candidate through the default canary steps (5%, 25%, 50%, 5 intervals each). */
function aaFalseFails(seed: number, traffic: Traffic, cfg: CanaryConfig, runs: number) {
  const rng = new Rng(seed);
  const probs = bucketProbabilities(traffic.medianS, traffic.sigma);
  const none: Regression = { name: 'A/A', errorFactor: 1, latencyFactor: 1 };
  let falseFails = 0;
  let inconclusive = 0;
  const byCheck: Record<string, number> = {};
  for (let r = 0; r < runs; r++) {
    for (const w of [5, 25, 50]) {
      const o = runStep(rng, traffic, w, 5, none, cfg, probs, probs);
      inconclusive += o.inconclusiveLooks;
      if (o.rolledBackAt !== null) {
        falseFails++;
        for (const b of o.by) byCheck[b] = (byCheck[b] ?? 0) + 1;
        break;
      }
    }
  }
  return {
    rps: traffic.rps,
    baselineErrorRate: traffic.errorRate,
    window: cfg.window,
    runs,
    looksPerRun: 15,
    falseFails,
    falseFailRate: round(falseFails / runs),
    upper95: round(upperBound95(falseFails, runs)),
    inconclusiveLookRate: round(inconclusive / (runs * 15)),
    byCheck,
  };
}

/** One-sided 95% Clopper–Pearson-style upper bound, by the rule of three when nothing happened. */
function upperBound95(k: number, n: number): number {
  if (k === 0) return 3 / n;
  const p = k / n;
  return Math.min(1, p + 1.645 * Math.sqrt((p * (1 - p)) / n) + 1 / n);
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
  const quick = process.argv.includes('--quick');
  const started = Date.now();
  const runs = quick ? 100 : 500;
  const aaRuns = quick ? 200 : 1000;
  const cfg: CanaryConfig = {
    compare: { ...DEFAULT_COMPARE },
    failureLimit: 2,
    slo: { maxP99Ms: 150, maxErrorRate: 0, minRequests: 20 },
    window: 'interval',
  };
  const base = (rps: number, errorRate: number): Traffic => ({
    rps,
    intervalS: 60,
    errorRate,
    medianS: 0.02,
    sigma: 0.5,
  });
  const sloFor = (t: Traffic) => ({ ...cfg.slo, maxErrorRate: Math.max(0.02, 3 * t.errorRate) });
  const regressions: Regression[] = [
    { name: 'error rate x2', errorFactor: 2, latencyFactor: 1 },
    { name: 'error rate x1.2', errorFactor: 1.2, latencyFactor: 1 },
    { name: 'p99 +30%', errorFactor: 1, latencyFactor: 1.3 },
    { name: 'p99 +10%', errorFactor: 1, latencyFactor: 1.1 },
  ];
  const detectionRows: DetectionRow[] = [];
  let seed = 1;
  for (const reg of regressions) {
    const errorRates = reg.errorFactor !== 1 ? [0.01, 0.05] : [0.01];
    for (const er of errorRates) {
      for (const rps of [50, 200]) {
        for (const w of [5, 25]) {
          const t = base(rps, er);
          const c = { ...cfg, slo: sloFor(t) };
          detectionRows.push(detection(seed++, t, w, reg, c, runs, 5));
          if (reg.errorFactor === 2)
            detectionRows.push(detection(seed++, t, w, reg, { ...c, window: 'step' }, runs, 5));
        }
      }
    }
    log.info('detection done', { regression: reg.name, elapsedS: (Date.now() - started) / 1000 });
  }
  // What it takes to see regressions inside the default tolerance: no margin, no band.
  const strict: CanaryConfig = {
    ...cfg,
    compare: { ...cfg.compare, maxErrorRateIncrease: 0, maxLatencyIncrease: 0 },
  };
  for (const reg of [regressions[1], regressions[3]] as Regression[]) {
    const t = base(200, 0.05);
    const row = detection(seed++, t, 25, reg, { ...strict, slo: sloFor(t) }, runs, 5);
    detectionRows.push({ ...row, config: 'strict (no margin, no band)' });
  }
  const aa: (ReturnType<typeof aaFalseFails> & { config?: string })[] = [];
  for (const rps of [50, 200]) {
    for (const er of [0.01, 0.05]) {
      const t = base(rps, er);
      aa.push(aaFalseFails(seed++, t, { ...cfg, slo: sloFor(t) }, aaRuns));
      aa.push(aaFalseFails(seed++, t, { ...cfg, slo: sloFor(t), window: 'step' }, aaRuns));
    }
  }
  for (const rps of [50, 200]) {
    const t = base(rps, 0.05);
    aa.push({
      ...aaFalseFails(seed++, t, { ...strict, slo: sloFor(t) }, aaRuns),
      config: 'strict (no margin, no band)',
    });
  }
  log.info('A/A done', { elapsedS: (Date.now() - started) / 1000 });
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
  const ab = abSettings.map(([baselineRate, lift]) =>
    abRuns(
      seed++,
      { baselineRate, lift, rewardsPerArmPerInterval: 300, maxIntervals: 240 },
      DEFAULT_AB,
      abRunsN,
    ),
  );
  log.info('A/B done', { elapsedS: (Date.now() - started) / 1000 });
  const banditN = quick ? 30 : 100;
  const bandit = [
    banditRuns(seed++, { rates: [0.1, 0.12], rewardsPerInterval: 600, horizon: 60 }, banditN),
    banditRuns(seed++, { rates: [0.1, 0.11], rewardsPerInterval: 600, horizon: 60 }, banditN),
    banditRuns(seed++, { rates: [0.9, 0.92], rewardsPerInterval: 600, horizon: 60 }, banditN),
  ];
  log.info('bandit done', { elapsedS: (Date.now() - started) / 1000 });

  const result = {
    generatedAt: new Date().toISOString(),
    quick,
    elapsedS: (Date.now() - started) / 1000,
    defaults: {
      compare: DEFAULT_COMPARE,
      failureLimit: cfg.failureLimit,
      ab: DEFAULT_AB,
      bandit: DEFAULT_BANDIT,
    },
    model: {
      latency:
        'lognormal, median 20 ms, log-sd 0.5 (baseline p99 ≈ 64 ms), binned on the router latencyBuckets',
      errors: 'binomial per request; regressions scale the candidate error rate',
      latencyRegression: 'the whole candidate distribution scaled (p99 +30% = every request 30% slower)',
      intervals: '60 s; canary step = 5 intervals; failureLimit 2 consecutive failed intervals',
      slo: 'p99 ≤ 150 ms, error rate ≤ max(2%, 3× baseline), minRequests 20: loose, so the comparison does the work',
    },
    detection: detectionRows,
    aa,
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
  elapsedS: number;
  detection: DetectionRow[];
  aa: (ReturnType<typeof aaFalseFails> & { config?: string })[];
  ab: ReturnType<typeof abRuns>[];
  bandit: ReturnType<typeof banditRuns>[];
}): string {
  const pct = (x: number | null | undefined): string =>
    x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`;
  const lines: string[] = [];
  lines.push(`# Decision quality (${new Date().toISOString().slice(0, 10)}, ${r.elapsedS.toFixed(0)} s)`, '');
  lines.push('## Canary detection (one 5-interval step, failureLimit 2)', '');
  lines.push(
    '| regression | canary | rps | base err | window | cand req/interval | detected | within 3 | median intervals | by | best possible within 3 |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const d of r.detection) {
    const by = Object.entries(d.byCheck)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(
      `| ${d.regression}${d.config ? ` (${d.config})` : ''} | ${d.canaryPercent}% | ${d.rps} | ${pct(d.baselineErrorRate)} | ${d.window} | ${d.candidateRequestsPerInterval} | ${pct(d.detectionRate)} | ${pct(d.within3)} | ${d.medianIntervalsToDetect ?? '–'} | ${by} | ${pct(d.oracleWithin3)} |`,
    );
  }
  lines.push('', '## A/A false rollbacks (steps 5%, 25%, 50% × 5 intervals)', '');
  lines.push('| rps | base err | window | runs | false fails | rate | 95% upper | inconclusive looks | by |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const a of r.aa) {
    const by = Object.entries(a.byCheck)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(
      `| ${a.rps} | ${pct(a.baselineErrorRate)} | ${a.window}${a.config ? ` ${a.config}` : ''} | ${a.runs} | ${a.falseFails} | ${pct(a.falseFailRate)} | ${pct(a.upper95)} | ${pct(a.inconclusiveLookRate)} | ${by} |`,
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
