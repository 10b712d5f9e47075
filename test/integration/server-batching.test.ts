/**
 * The dynamic batcher against real onnxruntime: merged answers equal direct runs, batches
 * actually form, a failing request does not fail its batch-mates, full queues and expired
 * timeouts are refused, unbatched third-party models run one request at a time, and the HTTP
 * thread answers health checks while a long batch runs.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';
import { startModelServer, type ModelServer, type ModelServerOptions } from '../../serving/server';
import { thirdPartyModel } from '../helpers/third-party-model';

const model = (f: string): string => path.join(projectRoot, 'demo/models', f);
const servers: ModelServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(opts: Omit<ModelServerOptions, 'port'>): Promise<ModelServer> {
  const s = await startModelServer({ ...opts, port: 0 });
  servers.push(s);
  return s;
}

interface InferOut {
  status: number;
  body: { outputs?: { name: string; shape: number[]; data: number[] }[]; error?: string; id?: string };
}

async function infer(s: ModelServer, name: string, inputs: object[], extra: object = {}): Promise<InferOut> {
  const res = await fetch(`${s.url}/v2/models/${name}/infer`, {
    method: 'POST',
    body: JSON.stringify({ inputs, ...extra }),
  });
  return { status: res.status, body: (await res.json()) as InferOut['body'] };
}

const features = (rows: number[][]): object => ({
  name: 'features',
  datatype: 'FP32',
  shape: [rows.length, 8],
  data: rows,
});

/** Deterministic rows; `hot` puts feature 7 above fraud-v5's failure threshold. */
function rows(n: number, seed: number, hot = false): number[][] {
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: 8 }, (_, k) => (k === 7 && hot ? 2.5 : Math.sin(seed * 31 + i * 7 + k) * 1.2)),
  );
}

async function direct(file: string, input: number[][]): Promise<number[]> {
  const session = await ort.InferenceSession.create(file);
  try {
    const out = await session.run({
      features: new ort.Tensor('float32', Float32Array.from(input.flat()), [input.length, 8]),
    });
    return Array.from(out.score!.data as Float32Array);
  } finally {
    await session.release();
  }
}

async function stats(s: ModelServer, name: string) {
  const res = await fetch(`${s.url}/v2/models/${name}/stats`);
  return (
    (await res.json()) as {
      model_stats: {
        execution_count: number;
        inference_count: number;
        batch_stats: { batch_size: number }[];
      }[];
    }
  ).model_stats[0]!;
}

describe('dynamic batching', () => {
  it('merges concurrent mixed-size requests and answers each exactly as a direct run', async () => {
    // Strict delay: requests sent within 50 ms merge even on a fast, idle machine.
    const s = await serve({
      model: model('fraud-v2.onnx'),
      name: 'fraud',
      maxBatchSize: 32,
      preferredBatchSizes: [],
      maxQueueDelayMs: 50,
      strictQueueDelay: true,
    });
    const sizes = Array.from({ length: 40 }, (_, i) => 1 + (i % 5));
    const batches = sizes.map((n, i) => rows(n, i));
    const expected = await Promise.all(batches.map((b) => direct(model('fraud-v2.onnx'), b)));
    const before = await stats(s, 'fraud');
    const answers = await Promise.all(
      batches.map((b, i) => infer(s, 'fraud', [features(b)], { id: `r${i}` })),
    );
    answers.forEach((a, i) => {
      expect(a.status).toBe(200);
      expect(a.body.id).toBe(`r${i}`);
      expect(a.body.outputs![0]!.shape).toEqual([sizes[i], 1]);
      a.body.outputs![0]!.data.forEach((v, k) => expect(v).toBeCloseTo(expected[i]![k]!, 5));
    });
    const after = await stats(s, 'fraud');
    const executions = after.execution_count - before.execution_count;
    expect(after.inference_count - before.inference_count).toBe(sizes.reduce((a, b) => a + b, 0));
    // 40 requests merged into fewer runs: batches really formed.
    expect(executions).toBeLessThan(20);
    expect(Math.max(...after.batch_stats.map((b) => b.batch_size))).toBeGreaterThan(5);
  });

  it('a request that makes the model fail does not fail its batch-mates', async () => {
    const s = await serve({
      model: model('fraud-v5.onnx'),
      name: 'v5',
      maxBatchSize: 16,
      preferredBatchSizes: [],
      maxQueueDelayMs: 50,
      strictQueueDelay: true,
    });
    const good = Array.from({ length: 6 }, (_, i) => rows(2, 100 + i).map((r) => [...r.slice(0, 7), 0.1]));
    const bad = rows(1, 7, true);
    const answers = await Promise.all(
      [...good.slice(0, 3), bad, ...good.slice(3)].map((b) => infer(s, 'v5', [features(b)])),
    );
    const badAnswer = answers[3]!;
    expect(badAnswer.status).toBe(500);
    expect(badAnswer.body.error).toMatch(/model run failed/);
    const goodAnswers = answers.filter((_, i) => i !== 3);
    for (const [i, a] of goodAnswers.entries()) {
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      const want = await direct(model('fraud-v5.onnx'), good[i]!);
      a.body.outputs![0]!.data.forEach((v, k) => expect(v).toBeCloseTo(want[k]!, 5));
    }
  });

  it('batches a third-party model with a 4-D input and answers as a direct run', async () => {
    const tp = await thirdPartyModel('speech-embedding');
    const s = await serve({
      model: tp.path,
      name: 'embed',
      maxBatchSize: 8,
      preferredBatchSizes: [],
      maxQueueDelayMs: 10,
    });
    const meta = (await (await fetch(`${s.url}/v2/models/embed`)).json()) as { inputs: unknown };
    expect(meta.inputs).toEqual(tp.inputs);
    const input = (n: number, seed: number): object => ({
      name: 'input_1',
      datatype: 'FP32',
      shape: [n, 76, 32, 1],
      data: Array.from({ length: n * 76 * 32 }, (_, i) => Math.sin(seed + i * 0.01)),
    });
    const answers = await Promise.all([1, 2, 1, 3].map((n, i) => infer(s, 'embed', [input(n, i)])));
    const session = await ort.InferenceSession.create(tp.path);
    for (const [i, n] of [1, 2, 1, 3].entries()) {
      expect(answers[i]!.status).toBe(200);
      expect(answers[i]!.body.outputs![0]!.shape).toEqual([n, 1, 1, 96]);
      const x = input(n, i) as { data: number[] };
      const out = await session.run({
        input_1: new ort.Tensor('float32', Float32Array.from(x.data), [n, 76, 32, 1]),
      });
      const want = out.conv2d_19!.data as Float32Array;
      answers[i]!.body.outputs![0]!.data.forEach((v, k) => expect(v).toBeCloseTo(want[k]!, 4));
    }
    await session.release();
  });

  it('serves a model without a batch dimension one request per run', async () => {
    const tp = await thirdPartyModel('hey-jarvis');
    const s = await serve({ model: tp.path, name: 'jarvis', maxBatchSize: 32, maxQueueDelayMs: 20 });
    const meta = (await (await fetch(`${s.url}/v2/models/jarvis`)).json()) as {
      parameters: { dynamic_batching: boolean };
    };
    expect(meta.parameters.dynamic_batching).toBe(false);
    const x = (seed: number): object => ({
      name: 'x.1',
      datatype: 'FP32',
      shape: [1, 16, 96],
      data: Array.from({ length: 16 * 96 }, (_, i) => Math.cos(seed + i * 0.05)),
    });
    const before = await stats(s, 'jarvis');
    const answers = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => infer(s, 'jarvis', [x(i)])));
    for (const a of answers) {
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      expect(a.body.outputs![0]!.shape).toEqual([1, 1]);
    }
    const after = await stats(s, 'jarvis');
    expect(after.execution_count - before.execution_count).toBe(6);
    const two = await infer(s, 'jarvis', [
      { ...(x(0) as object), shape: [2, 16, 96], data: new Array(2 * 16 * 96).fill(0) },
    ]);
    expect(two.status).toBe(400);
    expect(two.body.error).toMatch(/shape \[2, 16, 96\] does not match the model's \[1, 16, 96\]/);
  });
});

describe('queue limits and responsiveness', () => {
  // One heavy run of 1024 rows keeps the only instance busy for tens of milliseconds or more.
  const big = rows(1024, 1);
  const opts = {
    model: model('heavy.onnx'),
    maxBatchSize: 1024,
    preferredBatchSizes: [],
    maxQueueDelayMs: 0,
    threads: 1,
  };

  /** Resolves once `n` requests wait in the queue (one more is running on the only instance). */
  async function queued(s: ModelServer, n: number): Promise<void> {
    for (;;) {
      const text = await (await fetch(`${s.url}/metrics`)).text();
      if (Number(/runway_server_queue_depth\{[^}]*\} (\d+)/.exec(text)?.[1] ?? 0) >= n) return;
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  it('rejects at once when the queue is full (503) and counts it', async () => {
    const s = await serve({ ...opts, name: 'full', maxQueueSize: 2 });
    // Two batches fill the instance (one running, one in its inbox); the third waits in the queue.
    const blockers = [0, 1, 2].map(() => infer(s, 'full', [features(big)]));
    await queued(s, 1);
    const rest = await Promise.all(
      Array.from({ length: 8 }, (_, i) => infer(s, 'full', [features(rows(1, i))])),
    );
    for (const b of blockers) expect((await b).status).toBe(200);
    const rejected = rest.filter((a) => a.status === 503);
    expect(rejected.length).toBeGreaterThanOrEqual(4);
    expect(rejected[0]!.body.error).toMatch(/queue is full/);
    expect(rest.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
    const text = await (await fetch(`${s.url}/metrics`)).text();
    expect(Number(/runway_server_rejected_total\{[^}]*\} (\d+)/.exec(text)![1])).toBe(rejected.length);
  });

  it('drops a request whose timeout passes while queued, before compute', async () => {
    const s = await serve({ ...opts, name: 'slow' });
    const blockers = [0, 1, 2].map(() => infer(s, 'slow', [features(big)]));
    await queued(s, 1);
    const timed = await infer(s, 'slow', [features(rows(1, 3))], { parameters: { timeout: 1000 } });
    const viaHeader = await fetch(`${s.url}/v2/models/slow/infer`, {
      method: 'POST',
      headers: { 'inference-timeout-us': '1000' },
      body: JSON.stringify({ inputs: [features(rows(1, 4))] }),
    });
    for (const b of blockers) expect((await b).status).toBe(200);
    expect(timed.status).toBe(503);
    expect(timed.body.error).toMatch(/timed out/);
    expect(viaHeader.status).toBe(503);
    const st = await stats(s, 'slow');
    // Warm-up runs are not requests; only the two blockers ran as requests.
    expect(st.inference_count).toBe(3 * 1024);
    const text = await (await fetch(`${s.url}/metrics`)).text();
    expect(text).toMatch(/runway_server_timed_out_total\{[^}]*\} 2/);
  });

  it('answers health checks within milliseconds while long batches run', async () => {
    const s = await serve({ ...opts, name: 'busy' });
    const t0 = performance.now();
    const load = Promise.all(Array.from({ length: 4 }, () => infer(s, 'busy', [features(big)])));
    let done = false;
    void load.then(() => (done = true));
    const latencies: number[] = [];
    await new Promise((r) => setTimeout(r, 10));
    while (!done) {
      const t = performance.now();
      const res = await fetch(`${s.url}/v2/health/ready`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 2));
    }
    const elapsed = performance.now() - t0;
    expect((await load).every((a) => a.status === 200)).toBe(true);
    latencies.sort((a, b) => a - b);
    // Compute took long enough to probe several times, and the median probe stayed fast.
    expect(latencies.length, `batches took ${elapsed.toFixed(0)} ms`).toBeGreaterThanOrEqual(5);
    expect(latencies[Math.floor(latencies.length / 2)]!).toBeLessThan(50);
  });
});
