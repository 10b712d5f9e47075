/**
 * Offline evaluation: candidate and production on the same held-out rows, in process with
 * onnxruntime-node. Every metric of the spec is a gate (an absolute `min`/`max` and a
 * `maxRegression` against production); a regression beyond the allowance fails only when a
 * seeded paired bootstrap says it is real at this dataset size. With `slices`, every gate is
 * also judged per value of a column. Rows the model fails on count as wrong and are named.
 * A dataset that cannot be read or does not fit the model rejects the candidate with the file,
 * row and column, before anything deploys.
 */
import { ApplicationFailure } from '@temporalio/activity';
import * as ort from 'onnxruntime-node';
import type { ActivityDeps } from './deps';
import type { EvaluateInput, VersionRef } from './contracts';
import type { Verdict } from '../workflows/api';
import { heartbeat } from './context';
import { DatasetError, loadDataset, type EvalDataset } from './evaluation-datasets';
import {
  METRICS,
  metricValue,
  pairedBootstrap,
  type BootstrapResult,
  type MetricName,
  type MetricOptions,
  type Task,
} from './evaluation-metrics';

const CHUNK = 256;
type Evaluation = EvaluateInput['evaluation'];

export interface Scored {
  /** Per-row output vectors; empty where the model failed on that row. */
  preds: number[][];
  failedRows: number;
  firstError?: string;
  /** Width of one row's output (the class count for a multiclass model). */
  width: number;
}

const TENSOR_TYPES = new Set(['float32', 'float64', 'int32', 'int64']);

/** Runs the model over the dataset's rows, feeding each model input its own columns. */
export async function scoreModel(artifactPath: string, data: EvalDataset, output: string): Promise<Scored> {
  const session = await ort.InferenceSession.create(artifactPath);
  try {
    const given = Object.keys(data.inputs);
    for (const name of session.inputNames) {
      if (!given.includes(name)) {
        throw new DatasetError(
          `model input "${name}" gets no data from ${data.file}: map it with evaluation.inputs (the model's inputs: ${session.inputNames.join(', ')})`,
        );
      }
    }
    for (const name of given) {
      if (!session.inputNames.includes(name)) {
        throw new DatasetError(
          `evaluation feeds "${name}", which the model does not have (its inputs: ${session.inputNames.join(', ')})`,
        );
      }
    }
    if (!session.outputNames.includes(output)) {
      throw new DatasetError(`model has no output "${output}" (it has ${session.outputNames.join(', ')})`);
    }
    const meta = new Map(session.inputMetadata.map((m) => [m.name, m]));
    const types: Record<string, string> = {};
    for (const name of given) {
      const m = meta.get(name);
      const type = m?.isTensor ? m.type : undefined;
      if (!type || !TENSOR_TYPES.has(type)) {
        throw new DatasetError(
          `model input "${name}" has type ${type ?? 'non-tensor'}; evaluation feeds float or int tensors`,
        );
      }
      types[name] = type;
      const declared = m?.isTensor ? m.shape : [];
      const width = data.inputs[name]![0]?.length ?? 0;
      const want = declared.length === 2 ? declared[1] : undefined;
      if (typeof want === 'number' && want >= 0 && want !== width) {
        throw new DatasetError(
          `evaluation dataset ${data.file}: input "${name}" has ${width} columns, the model's input takes ${want} (shape [${declared.join(',')}])`,
        );
      }
    }
    const tensor = (name: string, rows: number[][]): ort.Tensor => {
      const width = rows[0]?.length ?? 0;
      const flat = rows.flat();
      const dims = [rows.length, width];
      switch (types[name]) {
        case 'float64':
          return new ort.Tensor('float64', Float64Array.from(flat), dims);
        case 'int32':
          return new ort.Tensor('int32', Int32Array.from(flat), dims);
        case 'int64':
          return new ort.Tensor(
            'int64',
            BigInt64Array.from(flat, (v) => BigInt(Math.round(v))),
            dims,
          );
        default:
          return new ort.Tensor('float32', Float32Array.from(flat), dims);
      }
    };
    let width = 0;
    const runRows = async (start: number, end: number): Promise<number[][]> => {
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of given) feeds[name] = tensor(name, data.inputs[name]!.slice(start, end));
      const out = await session.run(feeds);
      const t = out[output];
      if (!t) throw new Error(`output ${output} missing`);
      const values = t.data as ArrayLike<number | bigint>;
      const per = values.length / (end - start);
      width = per;
      const rows: number[][] = [];
      for (let i = 0; i < end - start; i++) {
        const row: number[] = [];
        for (let c = 0; c < per; c++) row.push(Number(values[i * per + c]));
        rows.push(row);
      }
      return rows;
    };
    const preds: number[][] = [];
    let failedRows = 0;
    let firstError: string | undefined;
    for (let start = 0; start < data.rows; start += CHUNK) {
      const end = Math.min(start + CHUNK, data.rows);
      try {
        preds.push(...(await runRows(start, end)));
      } catch {
        // One bad row must not sink its neighbours: score the chunk row by row.
        for (let i = start; i < end; i++) {
          try {
            preds.push(...(await runRows(i, i + 1)));
          } catch (err) {
            failedRows++;
            firstError ??= err instanceof Error ? err.message : String(err);
            preds.push([]);
          }
        }
      }
      heartbeat({ rows: end, of: data.rows });
    }
    return { preds, failedRows, firstError, width };
  } finally {
    await session.release();
  }
}

function checkLabels(data: EvalDataset, task: Task, classes: number, labelName: string): void {
  data.labels.forEach((y, i) => {
    const bad =
      task === 'binary'
        ? y !== 0 && y !== 1
          ? 'is not 0 or 1 (task binary)'
          : undefined
        : task === 'multiclass'
          ? !Number.isInteger(y) || y < 0 || y >= classes
            ? `is not a class of this model (0..${classes - 1}, from its output width)`
            : undefined
          : undefined;
    if (bad)
      throw new DatasetError(
        `evaluation dataset ${data.file} row ${i + 1}, column ${labelName}: ${y} ${bad}`,
      );
  });
}

interface GateSpec {
  metric: MetricName;
  k?: number;
  min?: number;
  max?: number;
  maxRegression: number;
}

export interface GateResult {
  metric: string;
  slice?: { column: string; value: string };
  rows: number;
  result: 'pass' | 'fail' | 'skipped';
  reason: string;
  candidate?: number;
  baseline?: number;
  min?: number;
  max?: number;
  maxRegression?: number;
  /** Baseline minus candidate, oriented so that positive is worse. */
  regression?: number;
  bootstrap?: BootstrapResult & { real: boolean };
}

const round = (v: number): number => (Number.isFinite(v) ? Number(v.toFixed(6)) : v);

export function gatesOf(e: Evaluation): GateSpec[] {
  if (e.metrics) return e.metrics;
  return [{ metric: e.metric, min: e.min, maxRegression: e.maxRegression }];
}

/** One gate on one set of rows: the absolute limit, then the regression, tested when it matters. */
export function judgeGate(
  gate: GateSpec,
  idx: Int32Array,
  labels: number[],
  candidate: number[][],
  baseline: { version: string; preds: number[][] } | undefined,
  opts: MetricOptions,
  bootstrap: Evaluation['bootstrap'],
): GateResult {
  const name = gate.metric === 'topk' ? `top${gate.k}` : gate.metric;
  const info = METRICS[gate.metric];
  const sign = info.higherIsBetter ? 1 : -1;
  const metricOpts = { ...opts, k: gate.k ?? opts.k };
  const c = metricValue(gate.metric, candidate, labels, idx, metricOpts);
  const b = baseline ? metricValue(gate.metric, baseline.preds, labels, idx, metricOpts) : undefined;
  const out: GateResult = {
    metric: name,
    rows: idx.length,
    result: 'pass',
    reason: '',
    candidate: round(c),
    ...(b !== undefined ? { baseline: round(b) } : {}),
    ...(gate.min !== undefined ? { min: gate.min } : {}),
    ...(gate.max !== undefined ? { max: gate.max } : {}),
    maxRegression: gate.maxRegression,
  };
  const fails: string[] = [];
  const notes: string[] = [];
  if (Number.isNaN(c))
    fails.push(`${name} cannot be computed on these rows (a failed row, or a single class)`);
  else if (gate.min !== undefined && c < gate.min)
    fails.push(`${name} ${round(c)} is below the minimum ${gate.min}`);
  else if (gate.max !== undefined && c > gate.max)
    fails.push(`${name} ${round(c)} is above the maximum ${gate.max}`);
  if (baseline && b !== undefined && !Number.isNaN(b) && !Number.isNaN(c)) {
    const regression = sign * (b - c);
    out.regression = round(regression);
    if (regression > gate.maxRegression) {
      const what = `${name} ${round(c)} is ${round(regression)} worse than production v${baseline.version} (${round(b)}); allowed ${gate.maxRegression}`;
      if (bootstrap.resamples === 0) fails.push(what);
      else {
        const bs = pairedBootstrap(
          idx,
          (sample) =>
            sign *
            (metricValue(gate.metric, baseline.preds, labels, sample, metricOpts) -
              metricValue(gate.metric, candidate, labels, sample, metricOpts)),
          { ...bootstrap, allowance: gate.maxRegression },
          (done) => heartbeat({ bootstrap: name, resamples: done, of: bootstrap.resamples }),
        );
        const real = bs.lowerBound > gate.maxRegression;
        out.bootstrap = {
          ...bs,
          lowerBound: round(bs.lowerBound),
          upperBound: round(bs.upperBound),
          withinAllowance: round(bs.withinAllowance),
          real,
        };
        const pct = Math.round(bs.confidence * 100);
        if (real) {
          fails.push(
            `${what}: a real regression (paired bootstrap, ${bs.resamples} resamples: ${pct}% lower bound ${round(bs.lowerBound)} > ${gate.maxRegression})`,
          );
        } else {
          notes.push(
            `${name} ${round(regression)} worse than production is within noise at ${idx.length} rows (paired bootstrap ${pct}% lower bound ${round(bs.lowerBound)} ≤ allowed ${gate.maxRegression})`,
          );
        }
      }
    }
  }
  out.result = fails.length ? 'fail' : 'pass';
  out.reason = fails.length
    ? fails.join('; ')
    : [`${name} ${round(c)}${b !== undefined ? ` vs production ${round(b)}` : ''}`, ...notes].join('; ');
  return out;
}

export function evaluationActivities({ logger }: ActivityDeps) {
  const log = logger.child('evaluation');
  return {
    async evaluate(input: EvaluateInput): Promise<Verdict> {
      const e = input.evaluation;
      const gates = gatesOf(e);
      const reject = (reason: string): Verdict => {
        log.warn('evaluation rejected the candidate', { model: input.model, reason });
        return { check: 'evaluation', result: 'fail', reason, metric: gates[0]?.metric, dataset: e.dataset };
      };
      let data: EvalDataset;
      let candidate: Scored;
      let baseline: Scored | undefined;
      try {
        data = await loadDataset({
          file: e.dataset,
          inputs: e.inputs ?? { [e.input]: '*' },
          label: e.label,
          labelsFile: e.labelsFile,
          sliceColumn: e.slices?.column,
        });
        const score = async (v: VersionRef): Promise<Scored> => scoreModel(v.artifactPath, data, e.output);
        candidate = await score(input.candidate);
        baseline = input.baseline ? await score(input.baseline) : undefined;
        const classes = e.task === 'binary' ? 2 : candidate.width;
        checkLabels(data, e.task, classes, e.label ?? (e.dataset.endsWith('.csv') ? 'label' : 'labels'));
      } catch (err) {
        if (err instanceof DatasetError) return reject(err.message);
        if (
          err instanceof Error &&
          /Load model|protobuf|onnx/i.test(err.message) &&
          !(err instanceof ApplicationFailure)
        )
          throw ApplicationFailure.nonRetryable(`cannot load a model for evaluation: ${err.message}`);
        throw err;
      }
      const opts: MetricOptions = {
        threshold: e.threshold,
        k: 1,
        classes: e.task === 'binary' ? 2 : candidate.width,
      };
      const base =
        baseline && input.baseline ? { version: input.baseline.version, preds: baseline.preds } : undefined;
      const all = Int32Array.from({ length: data.rows }, (_, i) => i);
      const results: GateResult[] = gates.map((g) =>
        judgeGate(g, all, data.labels, candidate.preds, base, opts, e.bootstrap),
      );
      const sliceResults: GateResult[] = [];
      if (e.slices && data.slices) {
        const groups = new Map<string, number[]>();
        data.slices.forEach((v, i) => {
          const g = groups.get(v);
          if (g) g.push(i);
          else groups.set(v, [i]);
        });
        for (const [value, rows] of [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
          const slice = { column: e.slices.column, value };
          for (const g of gates) {
            if (rows.length < e.slices.minRows) {
              sliceResults.push({
                metric: g.metric === 'topk' ? `top${g.k}` : g.metric,
                slice,
                rows: rows.length,
                result: 'skipped',
                reason: `${rows.length} rows < slices.minRows ${e.slices.minRows}: not judged`,
              });
              continue;
            }
            const r = judgeGate(
              g,
              Int32Array.from(rows),
              data.labels,
              candidate.preds,
              base,
              opts,
              e.bootstrap,
            );
            sliceResults.push({ ...r, slice, reason: `${e.slices.column}=${value}: ${r.reason}` });
          }
        }
      }
      const failed = [...results, ...sliceResults].filter((r) => r.result === 'fail');
      const failures = candidate.failedRows
        ? `; the model failed on ${candidate.failedRows} of ${data.rows} rows (first: ${candidate.firstError})`
        : '';
      const first = results[0]!;
      const pass = failed.length === 0;
      const skipped = sliceResults.filter((r) => r.result === 'skipped').length;
      const verdict: Verdict = {
        check: 'evaluation',
        result: pass ? 'pass' : 'fail',
        reason:
          (pass
            ? `${results.map((r) => r.reason).join(', ')} on ${data.rows} rows` +
              (sliceResults.length
                ? `; ${sliceResults.length - skipped} slice gates passed, ${skipped} too small`
                : '')
            : failed.map((r) => r.reason).join('; ')) + failures,
        task: e.task,
        metric: first.metric,
        rows: data.rows,
        candidate: {
          version: input.candidate.version,
          value: first.candidate,
          failedRows: candidate.failedRows,
          firstError: candidate.firstError,
        },
        baseline:
          input.baseline && baseline ? { version: input.baseline.version, value: first.baseline } : undefined,
        min: gates[0]!.min,
        maxRegression: gates[0]!.maxRegression,
        gates: results,
        ...(sliceResults.length ? { slices: sliceResults } : {}),
      };
      log.info('evaluated', { model: input.model, result: verdict.result, reason: verdict.reason });
      return verdict;
    },
  };
}
