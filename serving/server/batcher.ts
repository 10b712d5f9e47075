/**
 * The dynamic batcher (Triton's knobs): one queue per model; compatible requests are merged
 * along dimension 0 up to the max batch size, waiting at most the queue delay unless a preferred
 * batch size can be formed; results are split back per request. A merged batch that fails is
 * retried request by request, so one bad request cannot fail the others.
 */
import type { NumericArray, Tensor, TensorData } from './datatypes';
import { InferenceError } from './errors';
import { ModelRunError, type SessionPool } from './pool';
import type { ComputeTimes, NamedTensor } from './protocol';
import type { ParsedRequest } from './request';

export interface BatcherOptions {
  /** False for models without a leading dynamic dimension: one request per run. */
  batched: boolean;
  inputNames: string[];
  maxBatchSize: number;
  preferredBatchSizes: number[];
  maxQueueDelayMs: number;
  maxQueueSize: number;
  /** Always wait the full delay for a fuller batch, even when no other request is on its way. */
  strictQueueDelay?: boolean;
}

export interface BatchResult {
  outputs: NamedTensor[];
  queueNs: number;
  times: ComputeTimes;
  /** Rows in the batch this request ran in. */
  batchSize: number;
}

export interface BatcherHooks {
  onBatch?(rows: number, requests: number, times: ComputeTimes, ok: boolean): void;
  onQueueDepth?(depth: number): void;
  onTimedOut?(): void;
  onRejected?(): void;
  /**
   * Requests received but not yet queued (body still arriving or being parsed). The batcher
   * waits for a fuller batch only while some are on their way: with none, waiting cannot grow
   * the batch and would only add latency (a lone client at concurrency 1).
   */
  arriving?(): number;
}

interface Item {
  req: ParsedRequest;
  enqueuedNs: bigint;
  /** Set after its merged batch failed: it runs alone from now on. */
  solo: boolean;
  timer?: NodeJS.Timeout;
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
}

const now = (): bigint => process.hrtime.bigint();

function concat(parts: Tensor[], rows: number): Tensor {
  const first = parts[0]!;
  const dims = [rows, ...first.dims.slice(1)];
  if (Array.isArray(first.data)) {
    return { type: first.type, dims, data: parts.flatMap((p) => p.data as string[]) };
  }
  const total = parts.reduce((n, p) => n + (p.data as NumericArray).length, 0);
  const ctor = (first.data as NumericArray).constructor as new (n: number) => NumericArray;
  const out = new ctor(total);
  let off = 0;
  for (const p of parts) {
    const d = p.data as NumericArray;
    (out as Float32Array).set(d as Float32Array, off);
    off += d.length;
  }
  return { type: first.type, dims, data: out };
}

function sliceRows(t: Tensor, from: number, to: number): Tensor {
  const rows = t.dims[0]!;
  const stride = rows === 0 ? 0 : t.data.length / rows;
  const data: TensorData = Array.isArray(t.data)
    ? t.data.slice(from * stride, to * stride)
    : (t.data as NumericArray).subarray(from * stride, to * stride);
  return { type: t.type, dims: [to - from, ...t.dims.slice(1)], data };
}

export class Batcher {
  private queue: Item[] = [];
  private timer?: NodeJS.Timeout;
  private timerAt = 0n;
  private running = 0;
  private draining = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly pool: SessionPool,
    private readonly opts: BatcherOptions,
    private readonly hooks: BatcherHooks = {},
  ) {
    pool.onIdle = () => this.schedule();
  }

  get depth(): number {
    return this.queue.length;
  }

  get inFlight(): number {
    return this.running;
  }

  /** Queues a validated request. Rejects at once (503) when the queue is full. */
  submit(req: ParsedRequest, defaultTimeoutUs?: number): Promise<BatchResult> {
    if (this.queue.length >= this.opts.maxQueueSize) {
      this.hooks.onRejected?.();
      return Promise.reject(
        new InferenceError(
          503,
          `the queue is full (${this.opts.maxQueueSize} requests waiting); retry later`,
        ),
      );
    }
    return new Promise<BatchResult>((resolve, reject) => {
      const item: Item = { req, enqueuedNs: now(), solo: !this.opts.batched, resolve, reject };
      const timeoutUs = req.timeoutUs ?? defaultTimeoutUs;
      if (timeoutUs !== undefined && timeoutUs > 0) {
        item.timer = setTimeout(() => this.expire(item, timeoutUs), Math.max(1, Math.ceil(timeoutUs / 1000)));
      }
      this.queue.push(item);
      this.hooks.onQueueDepth?.(this.queue.length);
      this.schedule();
    });
  }

  private expire(item: Item, timeoutUs: number): void {
    const i = this.queue.indexOf(item);
    if (i < 0) return; // already dispatched: it runs to completion
    this.queue.splice(i, 1);
    this.hooks.onQueueDepth?.(this.queue.length);
    this.hooks.onTimedOut?.();
    item.reject(new InferenceError(503, `request timed out: waited more than ${timeoutUs} us in the queue`));
    this.notifyIdle();
  }

  /** Stops waiting for fuller batches and resolves once queued and running work is done. */
  drain(): Promise<void> {
    this.draining = true;
    this.schedule();
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    if (this.queue.length > 0 || this.running > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Picks the next batch: the head plus compatible followers; undefined means wait for more. */
  private nextBatch(): Item[] | undefined {
    const head = this.queue[0]!;
    if (head.solo) return [head];
    const { maxBatchSize, preferredBatchSizes, maxQueueDelayMs } = this.opts;
    const batch: Item[] = [];
    let rows = 0;
    let preferredPrefix = 0;
    for (const item of this.queue) {
      if (item.solo || item.req.batchKey !== head.req.batchKey) continue;
      if (rows + item.req.rows > maxBatchSize) break;
      batch.push(item);
      rows += item.req.rows;
      if (preferredBatchSizes.includes(rows)) preferredPrefix = batch.length;
      if (rows === maxBatchSize) return batch;
    }
    if (preferredPrefix > 0) return batch.slice(0, preferredPrefix);
    const waitedNs = now() - head.enqueuedNs;
    const delayNs = BigInt(Math.round(maxQueueDelayMs * 1e6));
    // Nothing on its way and no batch running: waiting cannot grow this batch, only delay it.
    const pointless =
      !this.opts.strictQueueDelay && this.pool.inFlight() === 0 && (this.hooks.arriving?.() ?? 1) === 0;
    if (this.draining || waitedNs >= delayNs || pointless) return batch;
    this.wakeAt(head.enqueuedNs + delayNs);
    return undefined;
  }

  private wakeAt(atNs: bigint): void {
    if (this.timer && this.timerAt <= atNs) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = atNs;
    const ms = Number(atNs - now()) / 1e6;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.schedule();
      },
      Math.max(0, ms),
    );
  }

  private schedule(): void {
    while (this.queue.length > 0 && this.pool.idleCount() > 0) {
      const batch = this.nextBatch();
      if (!batch) return;
      const taken = new Set(batch);
      this.queue = this.queue.filter((i) => !taken.has(i));
      this.hooks.onQueueDepth?.(this.queue.length);
      void this.dispatch(batch);
    }
  }

  private async dispatch(batch: Item[]): Promise<void> {
    this.running++;
    const started = now();
    for (const item of batch) if (item.timer) clearTimeout(item.timer);
    const rows = batch.reduce((n, i) => n + i.req.rows, 0);
    const inputs: NamedTensor[] = this.opts.inputNames.map((name, k) => ({
      name,
      tensor:
        batch.length === 1
          ? batch[0]!.req.inputs[k]!
          : concat(
              batch.map((i) => i.req.inputs[k]!),
              rows,
            ),
    }));
    const outputNames = [...new Set(batch[0]!.req.outputs.map((o) => o.name))];
    try {
      const result = await this.pool.run(inputs, outputNames);
      for (const { name, tensor } of result.outputs) {
        if (batch.length > 1 && tensor.dims[0] !== rows) {
          throw new Error(`output "${name}" has ${tensor.dims[0]} rows for a batch of ${rows}`);
        }
      }
      let from = 0;
      for (const item of batch) {
        const to = from + item.req.rows;
        const outputs = result.outputs.map(({ name, tensor }) => ({
          name,
          tensor: batch.length === 1 ? tensor : sliceRows(tensor, from, to),
        }));
        from = to;
        if (item === batch[0]) this.hooks.onBatch?.(rows, batch.length, result.times, true);
        item.resolve({
          outputs,
          queueNs: Number(started - item.enqueuedNs),
          times: result.times,
          batchSize: rows,
        });
      }
    } catch (err) {
      const times = err instanceof ModelRunError ? err.times : { inputNs: 0, inferNs: 0, outputNs: 0 };
      this.hooks.onBatch?.(rows, batch.length, times, false);
      if (batch.length > 1) {
        // Find the culprit(s): every request runs alone, ahead of newer work.
        for (const item of batch) item.solo = true;
        this.queue.unshift(...batch);
      } else {
        batch[0]!.reject(new InferenceError(500, `model run failed: ${(err as Error).message}`));
      }
    } finally {
      this.running--;
      this.schedule();
      this.notifyIdle();
    }
  }
}
