/**
 * The drift reference a production deployment counts against, taken at deploy time from the
 * evaluation dataset: per feature column, bin edges at the data's quantiles (or the spec's) and
 * the reference rows per bin; for the prediction, the same over the version's own scores on that
 * data. Only these counts travel to the model servers (`--drift-reference`).
 */
import type { ModelSpec } from '../specs/schema';
import { histogram, quantileEdges, type DriftFeatureReference, type DriftReference } from './analysis/drift';
import { loadDataset } from './evaluation-datasets';
import { scoreModel } from './evaluation';

export async function driftReference(
  artifactPath: string,
  e: ModelSpec['evaluation'],
  d: ModelSpec['watch']['drift'],
): Promise<DriftReference> {
  const data = await loadDataset({
    file: e.dataset,
    inputs: e.inputs ?? { [e.input]: '*' },
    label: e.label,
    labelsFile: e.labelsFile,
  });
  const rows = data.inputs[e.input];
  if (!rows) throw new Error(`evaluation dataset ${e.dataset} feeds no input "${e.input}"`);
  const width = rows[0]?.length ?? 0;
  if (d.features && d.features.length !== width)
    throw new Error(
      `watch.drift.features names ${d.features.length} columns; input "${e.input}" has ${width}`,
    );
  const bin = (name: string, values: number[], column?: number): DriftFeatureReference => {
    const edges = d.edges?.[name] ?? quantileEdges(values, d.bins);
    return { name, ...(column !== undefined ? { column } : {}), edges, counts: histogram(edges, values) };
  };
  const features = Array.from({ length: width }, (_, c) =>
    bin(
      d.features?.[c] ?? `f${c}`,
      rows.map((r) => r[c]!),
      c,
    ),
  );
  const scored = await scoreModel(artifactPath, data, e.output);
  const predictions = scored.preds.filter((p) => p.length > 0).map((p) => p[0]!);
  return {
    input: e.input,
    output: e.output,
    sampleRate: d.sampleRate,
    features,
    ...(predictions.length > 0 ? { prediction: bin('prediction', predictions) } : {}),
  };
}
