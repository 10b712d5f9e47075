/**
 * Per-model statistics in Triton's shape (`GET /v2/models/{m}/stats`), so tools written for
 * Triton read them unchanged: request counts and cumulative nanoseconds, plus per-batch-size
 * compute statistics.
 */
import type { ComputeTimes } from './protocol';

interface Duration {
  count: number;
  ns: number;
}

const zero = (): Duration => ({ count: 0, ns: 0 });
const add = (d: Duration, ns: number): void => {
  d.count++;
  d.ns += Math.round(ns);
};

export interface TritonModelStats {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: Record<
    | 'success'
    | 'fail'
    | 'queue'
    | 'compute_input'
    | 'compute_infer'
    | 'compute_output'
    | 'cache_hit'
    | 'cache_miss',
    Duration
  >;
  batch_stats: {
    batch_size: number;
    compute_input: Duration;
    compute_infer: Duration;
    compute_output: Duration;
  }[];
}

export class ModelStats {
  private lastInference = 0;
  private inferenceCount = 0;
  private executionCount = 0;
  private readonly inference = {
    success: zero(),
    fail: zero(),
    queue: zero(),
    compute_input: zero(),
    compute_infer: zero(),
    compute_output: zero(),
    cache_hit: zero(),
    cache_miss: zero(),
  };
  private readonly batches = new Map<
    number,
    { compute_input: Duration; compute_infer: Duration; compute_output: Duration }
  >();

  constructor(
    private readonly name: string,
    private readonly version: string,
  ) {}

  /** A request answered: `totalNs` from receipt to response; queue and compute as it ran. */
  success(totalNs: number, rows: number, queueNs: number, times: ComputeTimes): void {
    add(this.inference.success, totalNs);
    add(this.inference.queue, queueNs);
    add(this.inference.compute_input, times.inputNs);
    add(this.inference.compute_infer, times.inferNs);
    add(this.inference.compute_output, times.outputNs);
    this.inferenceCount += rows;
    this.lastInference = Date.now();
  }

  failure(totalNs: number): void {
    add(this.inference.fail, totalNs);
    this.lastInference = Date.now();
  }

  /** One model execution of `rows` rows (successful ones only, as Triton counts them). */
  batch(rows: number, times: ComputeTimes): void {
    this.executionCount++;
    let b = this.batches.get(rows);
    if (!b) {
      b = { compute_input: zero(), compute_infer: zero(), compute_output: zero() };
      this.batches.set(rows, b);
    }
    add(b.compute_input, times.inputNs);
    add(b.compute_infer, times.inferNs);
    add(b.compute_output, times.outputNs);
  }

  snapshot(): TritonModelStats {
    return {
      name: this.name,
      version: this.version,
      last_inference: this.lastInference,
      inference_count: this.inferenceCount,
      execution_count: this.executionCount,
      inference_stats: structuredClone(this.inference),
      batch_stats: [...this.batches.entries()]
        .sort(([a], [b]) => a - b)
        .map(([batch_size, s]) => ({ batch_size, ...structuredClone(s) })),
    };
  }
}
