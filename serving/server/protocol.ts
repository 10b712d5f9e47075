/** Messages between the HTTP thread and a session worker (see session-worker.ts). */
import type { Tensor } from './datatypes';
import type { OrtValueMetadata } from './signature';

export type Device = 'cpu' | 'cuda';

export interface WorkerConfig {
  modelPath: string;
  device: Device;
  /** intraOpNumThreads for this instance's session. */
  threads: number;
  /** Let onnxruntime's idle pool threads spin-wait for work instead of sleeping (see options.ts). */
  spinWait: boolean;
}

export interface NamedTensor {
  name: string;
  tensor: Tensor;
}

/** Nanoseconds spent building inputs, in session.run, and copying outputs. */
export interface ComputeTimes {
  inputNs: number;
  inferNs: number;
  outputNs: number;
}

export type ToWorker = { kind: 'run'; id: number; inputs: NamedTensor[]; outputs: string[] };

export type FromWorker =
  | {
      kind: 'ready';
      provider: Device;
      /** Why CUDA was not used although asked for. */
      fallback?: string;
      inputs: OrtValueMetadata[];
      outputs: OrtValueMetadata[];
    }
  | { kind: 'failed'; message: string }
  | { kind: 'result'; id: number; outputs: NamedTensor[]; times: ComputeTimes }
  | { kind: 'error'; id: number; message: string; times: ComputeTimes };
