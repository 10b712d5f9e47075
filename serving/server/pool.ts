/**
 * The model's instances: `instances` worker threads, each with its own onnxruntime session.
 * The batcher hands a batch to an idle instance; input buffers are transferred, not copied.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { NumericArray } from './datatypes';
import type { ComputeTimes, Device, FromWorker, NamedTensor, ToWorker, WorkerConfig } from './protocol';
import type { OrtValueMetadata } from './signature';

export interface RunResult {
  outputs: NamedTensor[];
  times: ComputeTimes;
}

export class ModelRunError extends Error {
  constructor(
    message: string,
    readonly times: ComputeTimes,
  ) {
    super(message);
  }
}

interface Pending {
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

interface Instance {
  worker: Worker;
  /** Batches sent and not yet answered, by id. */
  pending: Map<number, Pending>;
}

/**
 * Batches each instance may hold at once: one running and one waiting in its inbox, so the
 * session never idles while the HTTP thread answers the last batch and collects the next.
 */
export const PIPELINE_DEPTH = 2;

export interface PoolInfo {
  provider: Device;
  fallback?: string;
  inputs: OrtValueMetadata[];
  outputs: OrtValueMetadata[];
}

function spawn(config: WorkerConfig): Worker {
  const ext = path.extname(__filename);
  const file = path.join(__dirname, `session-worker${ext}`);
  if (ext === '.ts') {
    // Running from source (tests under vitest): compile the worker on the fly with tsx.
    const tsx = require.resolve('tsx/cjs');
    return new Worker(`require(${JSON.stringify(tsx)}); require(${JSON.stringify(file)});`, {
      eval: true,
      workerData: config,
    });
  }
  return new Worker(file, { workerData: config });
}

export class SessionPool {
  private readonly instances: Instance[] = [];
  private nextId = 1;
  private closed = false;
  /** Called whenever an instance becomes idle, so the batcher can dispatch more work. */
  onIdle: () => void = () => {};

  private constructor() {}

  /** Starts every instance; rejects with onnxruntime's message when the model cannot load. */
  static async start(
    config: Omit<WorkerConfig, 'threads'> & { threads: number; instances: number },
  ): Promise<{
    pool: SessionPool;
    info: PoolInfo;
  }> {
    const pool = new SessionPool();
    const { instances, ...workerConfig } = config;
    try {
      const infos = await Promise.all(
        Array.from({ length: instances }, () => pool.startInstance(workerConfig)),
      );
      return { pool, info: infos[0]! };
    } catch (err) {
      await pool.close();
      throw err;
    }
  }

  private startInstance(config: WorkerConfig): Promise<PoolInfo> {
    const worker = spawn(config);
    const instance: Instance = { worker, pending: new Map() };
    this.instances.push(instance);
    return new Promise<PoolInfo>((resolve, reject) => {
      let started = false;
      worker.on('message', (msg: FromWorker) => {
        switch (msg.kind) {
          case 'ready':
            started = true;
            resolve({
              provider: msg.provider,
              ...(msg.fallback !== undefined ? { fallback: msg.fallback } : {}),
              inputs: msg.inputs,
              outputs: msg.outputs,
            });
            return;
          case 'failed':
            reject(new Error(msg.message));
            return;
          case 'result':
          case 'error': {
            const pending = instance.pending.get(msg.id);
            if (!pending) return;
            instance.pending.delete(msg.id);
            if (msg.kind === 'result') pending.resolve({ outputs: msg.outputs, times: msg.times });
            else pending.reject(new ModelRunError(msg.message, msg.times));
            this.onIdle();
            return;
          }
        }
      });
      worker.on('error', (err) => {
        if (!started) reject(err);
        for (const p of instance.pending.values())
          p.reject(new Error(`model instance crashed: ${err.message}`));
        instance.pending.clear();
      });
      worker.on('exit', (code) => {
        const i = this.instances.indexOf(instance);
        if (i >= 0) this.instances.splice(i, 1);
        if (!started) reject(new Error(`model instance exited with code ${code} while loading`));
        for (const p of instance.pending.values())
          p.reject(new Error(`model instance exited with code ${code}`));
        instance.pending.clear();
      });
    });
  }

  get size(): number {
    return this.instances.length;
  }

  /** Batches that can be handed to instances right now. */
  idleCount(): number {
    let n = 0;
    for (const i of this.instances) n += Math.max(0, PIPELINE_DEPTH - i.pending.size);
    return n;
  }

  /** Batches sent to instances and not yet answered. */
  inFlight(): number {
    let n = 0;
    for (const i of this.instances) n += i.pending.size;
    return n;
  }

  /** Runs one batch on the least loaded instance. Callers check idleCount() first. */
  run(inputs: NamedTensor[], outputs: string[]): Promise<RunResult> {
    let instance: Instance | undefined;
    for (const i of this.instances) if (!instance || i.pending.size < instance.pending.size) instance = i;
    if (!instance || instance.pending.size >= PIPELINE_DEPTH || this.closed) {
      return Promise.reject(new Error('no idle model instance'));
    }
    const target = instance;
    const id = this.nextId++;
    const transfer: ArrayBuffer[] = [];
    for (const { tensor } of inputs) {
      const d = tensor.data;
      if (!Array.isArray(d)) {
        const arr = d as NumericArray;
        // Only whole, unshared buffers can move; the batcher builds them so (see batcher.ts).
        if (
          arr.byteOffset === 0 &&
          arr.byteLength === arr.buffer.byteLength &&
          !transfer.includes(arr.buffer as ArrayBuffer)
        ) {
          transfer.push(arr.buffer as ArrayBuffer);
        }
      }
    }
    return new Promise<RunResult>((resolve, reject) => {
      target.pending.set(id, { resolve, reject });
      const msg: ToWorker = { kind: 'run', id, inputs, outputs };
      target.worker.postMessage(msg, transfer);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.instances.map((i) => i.worker.terminate()));
    this.instances.length = 0;
  }
}
