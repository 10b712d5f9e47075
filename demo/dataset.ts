/**
 * The demo's synthetic fraud world: eight standard-normal transaction features and a known label
 * rule. Models are fit to it (demo/fraud-family.ts), the evaluation and golden sets are drawn from
 * it, and the synthetic traffic uses the same rule to reward correct decisions, so "the better
 * model" is better on merit rather than by decree.
 *
 * Everything here is pure and seeded: the same seed yields the same rows on every machine.
 */

export const FEATURE_COUNT = 8;

/** Coefficients of the label rule's linear part, one per feature. */
const LINEAR = [1.1, -0.9, 0.6, 0, 0, 0.5, 0, 0] as const;
/** The rule's interaction: a linear model cannot see it, which is what separates v1 from v2. */
const INTERACTION = { a: 3, b: 4, weight: 1.3 } as const;
/** Fraud when the rule's score exceeds this: a base rate of about 20%. */
const THRESHOLD = 1.35;

/** Features are rounded to this many decimals so JSON datasets are compact and exact. */
const DECIMALS = 4;

/** A small, fast, seedable PRNG (mulberry32): 32-bit state, uniform in [0, 1). */
export interface Rng {
  next(): number;
  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  normal(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  let spare: number | undefined;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    normal(): number {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      // 1 - u keeps the log argument in (0, 1].
      const r = Math.sqrt(-2 * Math.log(1 - next()));
      const theta = 2 * Math.PI * next();
      spare = r * Math.sin(theta);
      return r * Math.cos(theta);
    },
    int: (n: number): number => Math.floor(next() * n),
  };
}

/** The rule's score: linear part plus the x3·x4 interaction. */
export function fraudScore(features: readonly number[]): number {
  if (features.length !== FEATURE_COUNT) {
    throw new Error(`features: expected ${FEATURE_COUNT} values, got ${features.length}`);
  }
  let s = 0;
  for (let i = 0; i < FEATURE_COUNT; i++) s += LINEAR[i]! * features[i]!;
  return s + INTERACTION.weight * features[INTERACTION.a]! * features[INTERACTION.b]!;
}

/** The ground truth: 1 = fraud, 0 = legitimate. */
export function trueLabel(features: readonly number[]): 0 | 1 {
  return fraudScore(features) > THRESHOLD ? 1 : 0;
}

export interface LabeledRow {
  features: number[];
  label: 0 | 1;
}

const scale = 10 ** DECIMALS;

/** An endless seeded stream of labeled rows. */
export function createRowSampler(seed: number): () => LabeledRow {
  const rng = createRng(seed);
  return () => {
    const features: number[] = [];
    for (let i = 0; i < FEATURE_COUNT; i++) features.push(Math.round(rng.normal() * scale) / scale);
    return { features, label: trueLabel(features) };
  };
}

export interface Dataset {
  features: number[][];
  labels: number[];
}

export function sampleDataset(count: number, seed: number): Dataset {
  const sample = createRowSampler(seed);
  const features: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < count; i++) {
    const row = sample();
    features.push(row.features);
    labels.push(row.label);
  }
  return { features, labels };
}

/** Fraction of rows whose decision (score ≥ 0.5) matches the label. */
export function accuracy(scores: readonly number[], labels: readonly number[]): number {
  if (scores.length !== labels.length) throw new Error('accuracy: scores and labels differ in length');
  let correct = 0;
  for (let i = 0; i < scores.length; i++) if ((scores[i]! >= 0.5 ? 1 : 0) === labels[i]) correct++;
  return scores.length === 0 ? 0 : correct / scores.length;
}

/** Seeds of the published datasets, fixed so that every checkout generates the same files. */
export const SEEDS = { train: 1001, eval: 2002, golden: 3003 } as const;
