/**
 * The demo's regression models: a transaction's risk score (the fraud rule's continuous score,
 * demo/dataset.ts) predicted from the same eight features, so the evaluation's RMSE, MAE and R²
 * gates have something real to judge:
 *   risk-v1: least squares on the 8 features (cannot see the x3·x4 interaction)
 *   risk-v2: least squares that also sees the interaction (near exact)
 * The evaluation set is a CSV with a header and a `region` column to slice by.
 */
import { FEATURE_COUNT, fraudScore, type Dataset } from './dataset';
import { INPUT_NAME, OUTPUT_NAME } from './fraud-family';
import { GraphBuilder } from './onnx-builder';

export const RISK_MEMBERS = ['risk-v1', 'risk-v2'] as const;
export type RiskMember = (typeof RISK_MEMBERS)[number];
export const RISK_DESCRIPTIONS: Record<RiskMember, string> = {
  'risk-v1': 'regression baseline: least squares on the 8 features',
  'risk-v2': 'regression, better: least squares that also sees the x3*x4 interaction',
};
export const REGIONS = ['east', 'north', 'south', 'west'] as const;

/** Least squares by the normal equations (Gauss-Jordan with partial pivoting); the last weight is the bias. */
export function fitLeastSquares(x: number[][], y: number[]): number[] {
  const d = (x[0]?.length ?? 0) + 1;
  const a = Array.from({ length: d }, () => new Array<number>(d + 1).fill(0));
  x.forEach((row, i) => {
    const r = [...row, 1];
    for (let p = 0; p < d; p++) {
      for (let q = 0; q < d; q++) a[p]![q]! += r[p]! * r[q]!;
      a[p]![d]! += r[p]! * y[i]!;
    }
  });
  for (let c = 0; c < d; c++) {
    let pivot = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[pivot]![c]!)) pivot = r;
    [a[c], a[pivot]] = [a[pivot]!, a[c]!];
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = a[r]![c]! / a[c]![c]!;
      for (let k = c; k <= d; k++) a[r]![k]! -= f * a[c]![k]!;
    }
  }
  return a.map((row, i) => row[d]! / row[i]!);
}

const withInteraction = (rows: number[][]): number[][] => rows.map((r) => [...r, r[3]! * r[4]!]);

export function fitRisk(train: Dataset): Record<RiskMember, number[]> {
  const y = train.features.map(fraudScore);
  return {
    'risk-v1': fitLeastSquares(train.features, y),
    'risk-v2': fitLeastSquares(withInteraction(train.features), y),
  };
}

export function buildRiskModel(member: RiskMember, weights: number[]): Uint8Array {
  const g = new GraphBuilder();
  const w = g.floats('w', [FEATURE_COUNT, 1], weights.slice(0, FEATURE_COUNT));
  const bias = g.floats('b', [1], [weights[weights.length - 1]!]);
  let value = g.op('Add', [g.op('MatMul', [INPUT_NAME, w]), bias]);
  if (member === 'risk-v2') {
    const col = (i: number): string => g.op('Gather', [INPUT_NAME, g.int64s('col', [1], [i])], { axis: 1 });
    const product = g.op('Mul', [col(3), col(4)]);
    value = g.op('Add', [
      value,
      g.op('Mul', [product, g.floats('w_interaction', [1], [weights[FEATURE_COUNT]!])]),
    ]);
  }
  g.op('Identity', [value], {}, OUTPUT_NAME);
  return g.build({
    graphName: member,
    docString: RISK_DESCRIPTIONS[member],
    inputs: [{ name: INPUT_NAME, width: FEATURE_COUNT }],
    outputs: [{ name: OUTPUT_NAME, width: 1 }],
    metadata: { 'runway.task': 'regression' },
  });
}

/** `f0..f7,risk,region`: the risk score is the label, the region a slice column. */
export function riskCsv(ds: Dataset): string {
  const header = [...Array.from({ length: FEATURE_COUNT }, (_, i) => `f${i}`), 'risk', 'region'];
  const lines = ds.features.map((row, i) =>
    [...row, Number(fraudScore(row).toFixed(4)), REGIONS[i % REGIONS.length]].join(','),
  );
  return [header.join(','), ...lines].join('\n') + '\n';
}
