/**
 * One model instance: an onnxruntime session on its own thread, so `session.run` never blocks
 * the HTTP thread. Receives merged batches, answers with output tensors (buffers transferred).
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { NumericArray, Tensor } from './datatypes';
import type { FromWorker, NamedTensor, ToWorker, WorkerConfig } from './protocol';

const port = parentPort;
if (!port) throw new Error('session-worker must run in a worker thread');
const config = workerData as WorkerConfig;

const send = (msg: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);

function options(providers: string[], quiet: boolean): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: providers,
    intraOpNumThreads: config.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // onnxruntime's own default is to spin: its pool threads busy-wait between runs, which takes
    // the cores the HTTP thread and the client need on a shared machine (or a CPU limit's quota).
    extra: {
      session: {
        intra_op: { allow_spinning: config.spinWait ? '1' : '0' },
        inter_op: { allow_spinning: config.spinWait ? '1' : '0' },
      },
    },
    // onnxruntime logs its own error when a provider library is missing; we log one line instead.
    ...(quiet ? { logSeverityLevel: 4 as const } : {}),
  };
}

async function load(): Promise<{ session: ort.InferenceSession; fallback?: string }> {
  if (config.device === 'cuda') {
    try {
      return { session: await ort.InferenceSession.create(config.modelPath, options(['cuda'], true)) };
    } catch (err) {
      const fallback = (err as Error).message.split('\n')[0] ?? String(err);
      return {
        session: await ort.InferenceSession.create(config.modelPath, options(['cpu'], false)),
        fallback,
      };
    }
  }
  return { session: await ort.InferenceSession.create(config.modelPath, options(['cpu'], false)) };
}

/** A buffer that can be moved to the other thread, copying when the array is a view. */
function detachable(data: NumericArray): NumericArray {
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) return data;
  return data.slice() as NumericArray;
}

const elapsed = (from: bigint): number => Number(process.hrtime.bigint() - from);

async function main(): Promise<void> {
  let session: ort.InferenceSession;
  let fallback: string | undefined;
  try {
    ({ session, fallback } = await load());
  } catch (err) {
    send({ kind: 'failed', message: (err as Error).message });
    return;
  }
  send({
    kind: 'ready',
    provider: fallback === undefined ? config.device : 'cpu',
    ...(fallback !== undefined ? { fallback } : {}),
    inputs: session.inputMetadata.map((m) => ({ ...m, shape: m.isTensor ? [...m.shape] : [] })),
    outputs: session.outputMetadata.map((m) => ({ ...m, shape: m.isTensor ? [...m.shape] : [] })),
  });

  // One batch at a time: the next one waits in line (the pool sends at most two).
  let line = Promise.resolve();
  port!.on('message', (msg: ToWorker) => {
    line = line.then(() => run(session, msg));
  });
}

async function run(session: ort.InferenceSession, msg: ToWorker): Promise<void> {
  const times = { inputNs: 0, inferNs: 0, outputNs: 0 };
  try {
    let t = process.hrtime.bigint();
    const feeds: Record<string, ort.Tensor> = {};
    for (const { name, tensor } of msg.inputs) {
      // The type/data pairing was validated against the signature on the HTTP thread.
      feeds[name] = new ort.Tensor(tensor.type as 'float32', tensor.data as Float32Array, tensor.dims);
    }
    times.inputNs = elapsed(t);
    t = process.hrtime.bigint();
    // A failing run is reported to the client and logged once by the server, not by onnxruntime too.
    const results = await session.run(feeds, msg.outputs, { logSeverityLevel: 4 });
    times.inferNs = elapsed(t);
    t = process.hrtime.bigint();
    const outputs: NamedTensor[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const name of msg.outputs) {
      const value = results[name];
      if (!value) throw new Error(`the model returned no output "${name}"`);
      let data: Tensor['data'];
      if (Array.isArray(value.data)) data = value.data as string[];
      else {
        data = detachable(value.data as NumericArray);
        transfer.push(data.buffer as ArrayBuffer);
      }
      outputs.push({ name, tensor: { type: value.type as Tensor['type'], dims: [...value.dims], data } });
    }
    times.outputNs = elapsed(t);
    send({ kind: 'result', id: msg.id, outputs, times }, transfer);
  } catch (err) {
    send({ kind: 'error', id: msg.id, message: (err as Error).message, times });
  }
}

void main();
