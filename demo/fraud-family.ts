/**
 * The demo's fraud classifier family, each version a story a promotion must tell apart:
 *   v1 baseline (linear), v2 better (sees the interaction), v3 worse (trained on drifted data),
 *   v4 = v1's answers but slow (a wide dead branch), v5 = v1's answers but fails on some rows,
 *   heavy = v1's answers behind a few wide, distinct dense layers (the batching benchmark).
 * Weights come from a deterministic logistic-regression fit on the seeded training set.
 */
import { FEATURE_COUNT, createRng, fraudScore, sampleDataset, SEEDS, type Dataset } from './dataset';
import { GraphBuilder } from './onnx-builder';

export const INPUT_NAME = 'features';
export const OUTPUT_NAME = 'score';

/** v5 fails when this feature exceeds the threshold (≈5.5% of standard-normal rows). */
export const V5_FAULT = { feature: 7, threshold: 1.6 } as const;

/** v4's dead branch: wide enough to cost ≥ 10× v1 per row, with weights shared across layers so
 * the file stays small (the cost is compute, not bytes). */
export const V4_BRANCH = { width: 1024, depth: 6 } as const;
/** v4's per-run cost: a chain on the batch's mean row, so every run (of any size) pays a fixed
 * delay of roughly this many tanh layers — slow to answer, yet cheap to evaluate in big batches. */
export const V4_FIXED_CHAIN = { width: 1024, depth: 200 } as const;

/** heavy's layers: distinct weights per layer, so batch 1 rereads them all and batching pays. */
export const HEAVY_BRANCH = { width: 1792, depth: 3 } as const;

export interface LinearModel {
  weights: number[];
  bias: number;
}

/** Plain full-batch gradient descent on the log loss with a little L2; deterministic. */
export function fitLogistic(x: number[][], y: number[], iterations = 400, rate = 0.5): LinearModel {
  const d = x[0]?.length ?? 0;
  const n = x.length;
  const w = new Array<number>(d).fill(0);
  let b = 0;
  const l2 = 1e-3;
  for (let it = 0; it < iterations; it++) {
    const gw = new Array<number>(d).fill(0);
    let gb = 0;
    for (let i = 0; i < n; i++) {
      const row = x[i]!;
      let z = b;
      for (let j = 0; j < d; j++) z += w[j]! * row[j]!;
      const err = 1 / (1 + Math.exp(-z)) - y[i]!;
      for (let j = 0; j < d; j++) gw[j]! += err * row[j]!;
      gb += err;
    }
    for (let j = 0; j < d; j++) w[j] = w[j]! - rate * (gw[j]! / n + l2 * w[j]!);
    b -= (rate * gb) / n;
  }
  return { weights: w, bias: b };
}

/** The interaction the label rule uses (x3·x4), appended as a ninth feature for v2. */
const withInteraction = (rows: number[][]): number[][] => rows.map((r) => [...r, r[3]! * r[4]!]);

/** The rule as it was when v3's training data was labeled: feature 1 pushed the other way. */
const driftedLabel = (row: number[]): number => (fraudScore(row) + 1.8 * row[1]! > 1.35 ? 1 : 0);

export interface FittedFamily {
  v1: LinearModel;
  v2: LinearModel;
  v3: LinearModel;
}

export function fitFamily(train: Dataset = sampleDataset(4000, SEEDS.train)): FittedFamily {
  return {
    v1: fitLogistic(train.features, train.labels),
    v2: fitLogistic(withInteraction(train.features), train.labels, 400, 1.0),
    v3: fitLogistic(train.features, train.features.map(driftedLabel)),
  };
}

/** logit = features · w + b, shape [batch, 1]. */
function linearLogit(g: GraphBuilder, m: LinearModel): string {
  const w = g.floats('w', [FEATURE_COUNT, 1], m.weights.slice(0, FEATURE_COUNT));
  const b = g.floats('b', [1], [m.bias]);
  return g.op('Add', [g.op('MatMul', [INPUT_NAME, w]), b]);
}

/** One column of the input as [batch, 1]. */
function column(g: GraphBuilder, index: number): string {
  return g.op('Gather', [INPUT_NAME, g.int64s('col', [1], [index])], { axis: 1 });
}

/**
 * A stack of ReLU dense layers whose result is multiplied into the logit by a zero matrix: the
 * runtime computes every layer (a MatMul with a constant-zero operand is not folded away, and the
 * input is dynamic), yet the sum is exactly logit + 0, so answers equal the unbranched model's.
 */
function deadBranch(
  g: GraphBuilder,
  logit: string,
  width: number,
  depth: number,
  shared: boolean,
  seed: number,
): string {
  const rng = createRng(seed);
  // He-style scale keeps activations O(1) through the ReLUs, so nothing overflows to Inf/NaN.
  const dense = (fanIn: number, fanOut: number): string => {
    const scale = Math.sqrt(2 / fanIn);
    const values = new Float32Array(fanIn * fanOut);
    for (let i = 0; i < values.length; i++) values[i] = rng.normal() * scale;
    return g.floats('dense', [fanIn, fanOut], values);
  };
  const bias = g.floats('dense_b', [width], new Float32Array(width).fill(0.01));
  let h = g.op('Relu', [g.op('Add', [g.op('MatMul', [INPUT_NAME, dense(FEATURE_COUNT, width)]), bias])]);
  const sharedWeights = shared ? dense(width, width) : undefined;
  for (let layer = 1; layer < depth; layer++) {
    const w = sharedWeights ?? dense(width, width);
    h = g.op('Relu', [g.op('Add', [g.op('MatMul', [h, w]), bias])]);
  }
  const zero = g.floats('zero', [width, 1], new Float32Array(width));
  return g.op('Add', [logit, g.op('MatMul', [h, zero])]);
}

/**
 * A fixed cost per run, independent of batch size: a tanh chain (bounded, so it never overflows
 * into NaN) over the mean of the batch's rows, added to the logit times zero. Latency grows, while
 * evaluating thousands of rows in a few large runs stays cheap.
 */
function fixedCostChain(g: GraphBuilder, logit: string, width: number, depth: number, seed: number): string {
  const rng = createRng(seed);
  const dense = (fanIn: number, fanOut: number): string => {
    const scale = 1 / Math.sqrt(fanIn);
    const values = new Float32Array(fanIn * fanOut);
    for (let i = 0; i < values.length; i++) values[i] = rng.normal() * scale;
    return g.floats('chain', [fanIn, fanOut], values);
  };
  const mean = g.op('ReduceMean', [INPUT_NAME], { axes: [0], keepdims: 1 });
  let h = g.op('Tanh', [g.op('MatMul', [mean, dense(FEATURE_COUNT, width)])]);
  const shared = dense(width, width);
  for (let layer = 1; layer < depth; layer++) h = g.op('Tanh', [g.op('MatMul', [h, shared])]);
  const zero = g.floats('zero', [width, 1], new Float32Array(width));
  return g.op('Add', [logit, g.op('MatMul', [h, zero])]);
}

/**
 * v5's fault: rows whose feature exceeds the threshold index element 1000 of a two-element table,
 * so the runtime's Gather bounds check throws for the whole run; other rows add table[0] = 0.
 */
function faultyGather(g: GraphBuilder, logit: string, threshold: number = V5_FAULT.threshold): string {
  const x = column(g, V5_FAULT.feature);
  const bad = g.op('Greater', [x, g.floats('fault_threshold', [1], [threshold])]);
  const index = g.op('Mul', [g.op('Cast', [bad], { to: 7 /* INT64 */ }), g.int64s('far', [1], [1000])]);
  const table = g.floats('table', [2], [0, 0]);
  return g.op('Add', [logit, g.op('Gather', [table, index], { axis: 0 })]);
}

export type FamilyMember = 'fraud-v1' | 'fraud-v2' | 'fraud-v3' | 'fraud-v4' | 'fraud-v5' | 'heavy';

export const DESCRIPTIONS: Record<FamilyMember, string> = {
  'fraud-v1': 'baseline: logistic regression on the 8 features',
  'fraud-v2': 'better: logistic regression that also sees the x3*x4 interaction of the label rule',
  'fraud-v3': 'worse: logistic regression trained on drifted labels (feature 1 reversed)',
  'fraud-v4': `v1's answers, much slower: a dead ${V4_BRANCH.depth}x${V4_BRANCH.width} ReLU branch per row and a ${V4_FIXED_CHAIN.depth}-layer tanh chain per run, added times zero`,
  'fraud-v5': `v1's answers, but the run fails when feature ${V5_FAULT.feature} > ${V5_FAULT.threshold} (Gather index out of range)`,
  heavy: `v1's answers behind ${HEAVY_BRANCH.depth} distinct ${HEAVY_BRANCH.width}-wide dense layers: weight-heavy, for batching benchmarks`,
};

/** Serialized ONNX bytes of one family member. */
export function buildModel(member: FamilyMember, fitted: FittedFamily): Uint8Array {
  const g = new GraphBuilder();
  return finish(g, member, DESCRIPTIONS[member], memberLogit(g, member, fitted));
}

/**
 * v1's or v2's answers with v5's kind of fault at another threshold, so a test can give a
 * baseline and a candidate error rates of its choosing (feature 7 is standard normal: threshold
 * 1.2816 fails 10% of rows, 0.8416 fails 20%). Not part of the demo family.
 */
export function buildWithFault(
  answers: 'fraud-v1' | 'fraud-v2',
  threshold: number,
  fitted: FittedFamily,
): Uint8Array {
  const g = new GraphBuilder();
  const logit = faultyGather(g, memberLogit(g, answers, fitted), threshold);
  return finish(
    g,
    answers,
    `${answers}'s answers, failing when feature ${V5_FAULT.feature} > ${threshold}`,
    logit,
  );
}

/**
 * v1's answers with every logit moved by `shift`: a candidate whose predictions have shifted one
 * way (scores up for a positive shift), for the shadow's shift test. Not part of the demo family.
 */
export function buildShifted(shift: number, fitted: FittedFamily): Uint8Array {
  const g = new GraphBuilder();
  const logit = g.op('Add', [memberLogit(g, 'fraud-v1', fitted), g.floats('logit_shift', [1], [shift])]);
  return finish(g, 'fraud-v1', `fraud-v1's answers with the logit shifted by ${shift}`, logit);
}

function finish(g: GraphBuilder, member: FamilyMember, doc: string, logit: string): Uint8Array {
  g.op('Sigmoid', [logit], {}, OUTPUT_NAME);
  return g.build({
    graphName: member,
    docString: doc,
    inputs: [{ name: INPUT_NAME, width: FEATURE_COUNT }],
    outputs: [{ name: OUTPUT_NAME, width: 1 }],
    metadata: { 'runway.demo.member': member },
  });
}

function memberLogit(g: GraphBuilder, member: FamilyMember, fitted: FittedFamily): string {
  let logit: string;
  switch (member) {
    case 'fraud-v1':
      logit = linearLogit(g, fitted.v1);
      break;
    case 'fraud-v2': {
      const base = linearLogit(g, fitted.v2);
      const product = g.op('Mul', [column(g, 3), column(g, 4)]);
      const weight = g.floats('w_interaction', [1], [fitted.v2.weights[FEATURE_COUNT]!]);
      logit = g.op('Add', [base, g.op('Mul', [product, weight])]);
      break;
    }
    case 'fraud-v3':
      logit = linearLogit(g, fitted.v3);
      break;
    case 'fraud-v4':
      logit = fixedCostChain(
        g,
        deadBranch(g, linearLogit(g, fitted.v1), V4_BRANCH.width, V4_BRANCH.depth, true, 44),
        V4_FIXED_CHAIN.width,
        V4_FIXED_CHAIN.depth,
        45,
      );
      break;
    case 'fraud-v5':
      logit = faultyGather(g, linearLogit(g, fitted.v1));
      break;
    case 'heavy':
      logit = deadBranch(g, linearLogit(g, fitted.v1), HEAVY_BRANCH.width, HEAVY_BRANCH.depth, false, 66);
      break;
  }
  return logit;
}

export const MEMBERS: FamilyMember[] = ['fraud-v1', 'fraud-v2', 'fraud-v3', 'fraud-v4', 'fraud-v5', 'heavy'];
