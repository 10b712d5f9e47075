/**
 * In-process throughput of an ONNX model in onnxruntime-node, used to check the demo family's
 * performance promises (v4 much slower than v1; heavy's batching gain) when generating and in tests.
 */
import * as ort from 'onnxruntime-node';
import { createRowSampler, FEATURE_COUNT } from './dataset';
import { INPUT_NAME } from './fraud-family';

/** A single-threaded CPU session: the numbers the demo quotes are "per core". */
export function createSession(model: string | Uint8Array): Promise<ort.InferenceSession> {
  // Fatal-only runtime logs: failures (v5's fault) surface as the rejected run, not stderr noise.
  const opts: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    logSeverityLevel: 4,
  };
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, opts)
    : ort.InferenceSession.create(model, opts);
}

export function featureTensor(rows: number[][]): ort.Tensor {
  const data = new Float32Array(rows.length * FEATURE_COUNT);
  rows.forEach((r, i) => data.set(r, i * FEATURE_COUNT));
  return new ort.Tensor('float32', data, [rows.length, FEATURE_COUNT]);
}

export interface Throughput {
  batch: number;
  runs: number;
  rowsPerSecond: number;
  msPerRun: number;
}

/** Runs `batch`-row inputs back to back for about `budgetMs` (after one warm-up run). */
export async function measureThroughput(
  session: ort.InferenceSession,
  batch: number,
  budgetMs: number,
  seed = 7,
): Promise<Throughput> {
  const sample = createRowSampler(seed);
  const rows = Array.from({ length: batch }, () => sample().features);
  const feeds = { [INPUT_NAME]: featureTensor(rows) };
  await session.run(feeds);
  let runs = 0;
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  while (elapsedMs < budgetMs || runs < 3) {
    await session.run(feeds);
    runs++;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  return { batch, runs, rowsPerSecond: (runs * batch * 1000) / elapsedMs, msPerRun: elapsedMs / runs };
}
