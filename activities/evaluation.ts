/**
 * Offline evaluation: candidate and production on the held-out set, in process with
 * onnxruntime-node. Rows the model fails on count as wrong and are reported, never hidden.
 */
import fs from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/activity';
import * as ort from 'onnxruntime-node';
import type { ActivityDeps } from './deps';
import type { EvaluateInput, VersionRef } from './contracts';
import type { Verdict } from '../workflows/api';
import { heartbeat } from './context';

const CHUNK = 256;

interface Dataset {
  features: number[][];
  labels: number[];
}

async function loadDataset(file: string): Promise<Dataset> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw ApplicationFailure.nonRetryable(
      `evaluation dataset ${file}: ${err instanceof Error ? err.message : err}`,
    );
  }
  const d = parsed as Partial<Dataset>;
  if (!Array.isArray(d.features) || !Array.isArray(d.labels) || d.features.length !== d.labels.length) {
    throw ApplicationFailure.nonRetryable(
      `evaluation dataset ${file}: expected { features: number[][], labels: number[] } of equal length`,
    );
  }
  if (d.features.length === 0) throw ApplicationFailure.nonRetryable(`evaluation dataset ${file} is empty`);
  return d as Dataset;
}

/** Positive-class scores per row; NaN where the model failed on that row. */
export async function scoreRows(
  artifactPath: string,
  rows: number[][],
  inputName: string,
  outputName: string,
): Promise<{ scores: number[]; failedRows: number; firstError?: string }> {
  const session = await ort.InferenceSession.create(artifactPath);
  try {
    if (!session.inputNames.includes(inputName)) {
      throw ApplicationFailure.nonRetryable(
        `model has no input "${inputName}" (it has ${session.inputNames.join(', ')})`,
      );
    }
    if (!session.outputNames.includes(outputName)) {
      throw ApplicationFailure.nonRetryable(
        `model has no output "${outputName}" (it has ${session.outputNames.join(', ')})`,
      );
    }
    const width = rows[0]?.length ?? 0;
    const runRows = async (chunk: number[][]): Promise<number[]> => {
      const data = Float32Array.from(chunk.flat());
      const out = await session.run({ [inputName]: new ort.Tensor('float32', data, [chunk.length, width]) });
      const tensor = out[outputName];
      if (!tensor) throw new Error(`output ${outputName} missing`);
      const values = tensor.data as Float32Array;
      const per = values.length / chunk.length;
      return chunk.map((_, i) => Number(values[i * per + (per - 1)]));
    };
    const scores: number[] = [];
    let failedRows = 0;
    let firstError: string | undefined;
    for (let start = 0; start < rows.length; start += CHUNK) {
      const chunk = rows.slice(start, start + CHUNK);
      try {
        scores.push(...(await runRows(chunk)));
      } catch {
        // One bad row must not sink its neighbours: score the chunk row by row.
        for (const row of chunk) {
          try {
            scores.push(...(await runRows([row])));
          } catch (err) {
            failedRows++;
            firstError ??= err instanceof Error ? err.message : String(err);
            scores.push(Number.NaN);
          }
        }
      }
      heartbeat({ rows: Math.min(start + CHUNK, rows.length), of: rows.length });
    }
    return { scores, failedRows, firstError };
  } finally {
    await session.release();
  }
}

export function accuracy(scores: number[], labels: number[], threshold: number): number {
  let correct = 0;
  scores.forEach((s, i) => {
    if (!Number.isNaN(s) && (s >= threshold ? 1 : 0) === labels[i]) correct++;
  });
  return correct / scores.length;
}

/** Area under the ROC curve by the rank-sum identity; failed rows score lowest. */
export function auc(scores: number[], labels: number[]): number {
  const pairs = scores.map((s, i) => ({ s: Number.isNaN(s) ? -Infinity : s, y: labels[i] ?? 0 }));
  pairs.sort((a, b) => a.s - b.s);
  let rankSum = 0;
  let positives = 0;
  for (let i = 0; i < pairs.length;) {
    let j = i;
    while (j < pairs.length && pairs[j]?.s === pairs[i]?.s) j++;
    const midrank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) {
      if (pairs[k]?.y === 1) {
        rankSum += midrank;
        positives++;
      }
    }
    i = j;
  }
  const negatives = pairs.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export function evaluationActivities({ logger }: ActivityDeps) {
  const log = logger.child('evaluation');
  return {
    async evaluate(input: EvaluateInput): Promise<Verdict> {
      const { evaluation } = input;
      const data = await loadDataset(evaluation.dataset);
      const measure = async (v: VersionRef) => {
        const r = await scoreRows(v.artifactPath, data.features, evaluation.input, evaluation.output);
        const value =
          evaluation.metric === 'auc'
            ? auc(r.scores, data.labels)
            : accuracy(r.scores, data.labels, evaluation.threshold);
        return {
          version: v.version,
          value: Number(value.toFixed(6)),
          failedRows: r.failedRows,
          firstError: r.firstError,
        };
      };
      const candidate = await measure(input.candidate);
      const baseline = input.baseline ? await measure(input.baseline) : undefined;
      // Failed rows already count as wrong predictions; they are named so nobody misses them.
      const reasons: string[] = [];
      if (candidate.value < evaluation.min) {
        reasons.push(`${evaluation.metric} ${candidate.value} is below the minimum ${evaluation.min}`);
      }
      if (baseline && baseline.value - candidate.value > evaluation.maxRegression) {
        reasons.push(
          `${evaluation.metric} ${candidate.value} is ${(baseline.value - candidate.value).toFixed(4)} below production v${baseline.version} (${baseline.value}); allowed regression ${evaluation.maxRegression}`,
        );
      }
      const failures = candidate.failedRows
        ? `; the model failed on ${candidate.failedRows} of ${data.labels.length} rows (first: ${candidate.firstError})`
        : '';
      const pass = reasons.length === 0;
      const verdict: Verdict = {
        check: 'evaluation',
        result: pass ? 'pass' : 'fail',
        reason:
          (pass
            ? `${evaluation.metric} ${candidate.value}${baseline ? ` vs production ${baseline.value}` : ''} (min ${evaluation.min}, max regression ${evaluation.maxRegression})`
            : reasons.join('; ')) + failures,
        metric: evaluation.metric,
        rows: data.labels.length,
        candidate,
        baseline,
        min: evaluation.min,
        maxRegression: evaluation.maxRegression,
      };
      log.info('evaluated', { model: input.model, result: verdict.result, reason: verdict.reason });
      return verdict;
    },
  };
}
