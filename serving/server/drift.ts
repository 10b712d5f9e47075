/**
 * Input and prediction histograms of a model server, for the watch's drift check: a sampled share
 * of requests has each feature column and the first output value per row counted into the bins of
 * the reference taken from the evaluation data at deploy time. Only counts are kept, never a row.
 * Exposed as JSON (`GET /v2/models/{m}/versions/{v}/drift`, what the watch reads) and as
 * Prometheus series: `runway_drift_observations_total{feature,bin}` and the PSI against the
 * reference per feature, `runway_drift_psi{feature}`, for dashboards.
 */
import fs from 'node:fs';
import { Counter, Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import {
  binIndex,
  psi,
  type DriftCounts,
  type DriftFeatureReference,
  type DriftReference,
} from '../../activities/analysis/drift';
import type { Tensor } from './datatypes';
import type { NamedTensor } from './protocol';
import type { Signature } from './signature';

const featureRef = z
  .object({
    name: z.string().min(1),
    column: z.number().int().min(0).optional(),
    edges: z.array(z.number()),
    counts: z.array(z.number().min(0)),
  })
  .refine((f) => f.counts.length === f.edges.length + 1, 'expected one count more than edges');

const referenceSchema = z.object({
  input: z.string().min(1),
  output: z.string().min(1),
  sampleRate: z.number().min(0).max(1),
  features: z.array(featureRef),
  prediction: featureRef.optional(),
});

/** `--drift-reference`: inline JSON or a file holding it. */
export function parseDriftReference(text: string): DriftReference {
  const raw = text.trim().startsWith('{') ? text : fs.readFileSync(text, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new Error(`--drift-reference: not JSON: ${(err as Error).message}`);
  }
  const parsed = referenceSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new Error(`--drift-reference: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return parsed.data;
}

export interface DriftReport {
  model: string;
  version: string;
  reference: DriftReference;
  counts: DriftCounts;
}

export class DriftHistograms {
  private readonly counts: Map<string, number[]>;
  private rows = 0;
  private readonly inputIndex: number;
  private readonly width: number;
  private readonly observed: Counter<'model' | 'version' | 'feature' | 'bin'>;

  constructor(
    readonly reference: DriftReference,
    sig: Signature,
    private readonly model: string,
    private readonly version: string,
    registry: Registry,
    private readonly random: () => number = Math.random,
  ) {
    this.inputIndex = sig.inputs.findIndex((i) => i.name === reference.input);
    if (this.inputIndex < 0)
      throw new Error(
        `--drift-reference: the model has no input "${reference.input}" (it has ${sig.inputs.map((i) => i.name).join(', ')})`,
      );
    const shape = sig.inputs[this.inputIndex]!.shape;
    this.width = shape.length === 2 && shape[1]! > 0 ? shape[1]! : -1;
    for (const f of reference.features) {
      if (f.column === undefined || (this.width > 0 && f.column >= this.width))
        throw new Error(
          `--drift-reference: feature ${f.name} names column ${String(f.column)}; input "${reference.input}" has ${this.width} columns`,
        );
    }
    this.counts = new Map(this.all().map((f) => [f.name, new Array<number>(f.counts.length).fill(0)]));
    const labels = { model, version };
    this.observed = new Counter({
      name: 'runway_drift_observations_total',
      help: 'Sampled input values (and predictions) per reference bin',
      labelNames: ['model', 'version', 'feature', 'bin'],
      registers: [registry],
    });
    const counts = this.counts;
    const refs = this.all();
    new Gauge({
      name: 'runway_drift_psi',
      help: 'Population stability index of the sampled values since start against the evaluation data',
      labelNames: ['model', 'version', 'feature'],
      registers: [registry],
      collect() {
        for (const f of refs) {
          const c = counts.get(f.name)!;
          if (c.some((x) => x > 0)) this.set({ ...labels, feature: f.name }, psi(f.counts, c));
        }
      },
    });
    new Gauge({
      name: 'runway_drift_sample_rate',
      help: 'Share of requests counted into the drift histograms',
      labelNames: ['model', 'version'],
      registers: [registry],
    }).set(labels, reference.sampleRate);
  }

  private all(): DriftFeatureReference[] {
    const p = this.reference.prediction;
    return [...this.reference.features, ...(p ? [{ ...p, name: 'prediction' }] : [])];
  }

  /** Decides whether this request is counted; call before its inputs move to a session worker. */
  sample(inputs: Tensor[]): boolean {
    if (this.reference.sampleRate <= 0 || this.random() >= this.reference.sampleRate) return false;
    const t = inputs[this.inputIndex];
    if (!t || typeof t.data[0] === 'string') return false;
    const data = t.data as ArrayLike<number | bigint>;
    const width = t.dims.length === 2 ? t.dims[1]! : data.length;
    const rows = width > 0 ? Math.floor(data.length / width) : 0;
    for (const f of this.reference.features) {
      const c = this.counts.get(f.name)!;
      for (let r = 0; r < rows; r++) {
        const v = Number(data[r * width + f.column!]);
        if (!Number.isFinite(v)) continue;
        const b = binIndex(f.edges, v);
        c[b]!++;
        this.observed.inc({ model: this.model, version: this.version, feature: f.name, bin: String(b) });
      }
    }
    this.rows += rows;
    return true;
  }

  /** Counts the prediction (first output value per row) of a sampled request. */
  predicted(outputs: Map<string, NamedTensor>, rows: number): void {
    const p = this.reference.prediction;
    const out = outputs.get(this.reference.output)?.tensor;
    if (!p || !out || typeof out.data[0] === 'string' || rows <= 0) return;
    const data = out.data as ArrayLike<number | bigint>;
    const per = Math.max(1, Math.floor(data.length / rows));
    const c = this.counts.get('prediction')!;
    for (let r = 0; r < rows; r++) {
      const v = Number(data[r * per]);
      if (!Number.isFinite(v)) continue;
      const b = binIndex(p.edges, v);
      c[b]!++;
      this.observed.inc({ model: this.model, version: this.version, feature: 'prediction', bin: String(b) });
    }
  }

  report(): DriftReport {
    return {
      model: this.model,
      version: this.version,
      reference: this.reference,
      counts: {
        rows: this.rows,
        features: Object.fromEntries([...this.counts].map(([k, v]) => [k, [...v]])),
      },
    };
  }
}
