/**
 * `npm run bench:serving`: what dynamic batching buys, measured side by side on this machine.
 * For the tiny fraud model and the weight-heavy demo model:
 *   (a) raw onnxruntime-node in this process at the batch sizes the batcher forms,
 *   (b) the model server with batching off (max batch size 1),
 *   (c) the model server with dynamic batching,
 *   (d) a bare node:http server answering a fixed body of the same size (the HTTP ceiling).
 * A closed-loop load generator runs in a separate process (its own event loop) at several
 * concurrencies. Writes bench/results/serving-<date>.json and a markdown table next to it.
 *
 * And for two 3×48×192 FP32 image classifiers (demo/image-model.ts, large input tensors): the
 * light image-cnn (11 M multiply-adds, where per-request cost is the floor) and the CNN-sized
 * image-resnet (119 M): raw onnxruntime at batch 1 and 16 beside the batching server fed binary
 * tensors, JSON tensors and gRPC raw contents, at concurrency 1 and 16 (JSON vs binary is the
 * large-tensor figure, binary vs raw onnxruntime the serving overhead). The binary and JSON bodies
 * are also sent by wrk at c=16 (bench/wrk.ts; `npm run bench:serving` installs it), side by side
 * in the same rounds: its CPU per request is a fraction of the Node generator's.
 *
 * Flags: --duration-ms N (per point, default 3000), --concurrency 1,8,64,
 * --models fraud-v1,heavy,image-cnn,image-resnet, --rounds 3 (image models: interleaved rounds that
 * share the duration), --label NAME (results go to serving-<date>-NAME.*)
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import * as grpc from '@grpc/grpc-js';
import { Pool } from 'undici';
import { projectRoot } from '../common/paths';
import { IMAGE_MODELS, multiplyAdds, type ImageModel } from '../demo/image-model';
import { startModelServer } from '../serving/server';
import { oipService } from '../serving/server/grpc-messages';
import { onPath, runWrk } from './wrk';

interface LoadJob {
  url: string;
  path: string;
  body: string;
  /** The body is base64 (binary tensors, or a serialized gRPC message). */
  base64?: boolean;
  headers?: Record<string, string>;
  /** `host:port` and method path: unary gRPC calls with `body` as the serialized request. */
  grpc?: { address: string; method: string };
  concurrency: number;
  durationMs: number;
  warmupMs: number;
}

interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  throughput: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Requests the generator completed, warm-up included, and the CPU it spent on them (µs). */
  sent: number;
  generatorCpuUs: number;
}

const quantile = (sorted: number[], q: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** One request of a load job: HTTP over an undici pool, or a unary gRPC call. */
function requester(job: LoadJob): { send: () => Promise<void>; close: () => Promise<void> } {
  // Encoded once: the generator must not spend per request what the server is measured on.
  const body = job.base64 ? Buffer.from(job.body, 'base64') : Buffer.from(job.body);
  if (job.grpc) {
    const { address, method } = job.grpc;
    const raw = body;
    const identity = (b: Buffer): Buffer => b;
    const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
    return {
      send: () =>
        new Promise<void>((resolve, reject) =>
          client.makeUnaryRequest(method, identity, identity, raw, (err) => (err ? reject(err) : resolve())),
        ),
      close: async () => client.close(),
    };
  }
  const pool = new Pool(job.url, { connections: job.concurrency, pipelining: 1 });
  const headers = { 'content-type': 'application/json', ...job.headers };
  return {
    send: async () => {
      const res = await pool.request({ path: job.path, method: 'POST', body, headers });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) throw new Error(String(res.statusCode));
    },
    close: () => pool.close(),
  };
}

/** The load generator (child process): C closed-loop clients over keep-alive connections. */
async function loadgen(job: LoadJob): Promise<LoadResult> {
  const cpu0 = process.cpuUsage();
  const target = requester(job);
  let sent = 0;
  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  const client = async (): Promise<void> => {
    while (!stop) {
      const t = performance.now();
      try {
        await target.send();
        sent++;
        if (measuring) latencies.push(performance.now() - t);
      } catch {
        if (measuring) errors++;
      }
    }
  };
  const clients = Array.from({ length: job.concurrency }, client);
  await new Promise((r) => setTimeout(r, job.warmupMs));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, job.durationMs));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(clients);
  const cpu = process.cpuUsage(cpu0);
  await target.close();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    seconds,
    throughput: latencies.length / seconds,
    p50Ms: quantile(latencies, 0.5),
    p95Ms: quantile(latencies, 0.95),
    p99Ms: quantile(latencies, 0.99),
    sent,
    generatorCpuUs: cpu.user + cpu.system,
  };
}

function runLoad(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--loadgen'], { stdio: 'inherit' });
    child.once('message', (m: LoadResult) => {
      resolve(m);
      child.kill();
    });
    child.once('error', reject);
    child.once(
      'exit',
      (code) => code !== 0 && code !== null && reject(new Error(`load generator exited ${code}`)),
    );
    child.send(job);
  });
}

/** (a) rows per second of session.run in this process at a given batch size. */
async function rawOrt(file: string, batch: number, durationMs: number): Promise<number> {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const x = new ort.Tensor(
    'float32',
    Float32Array.from({ length: batch * 8 }, (_, i) => Math.sin(i)),
    [batch, 8],
  );
  for (let i = 0; i < 5; i++) await session.run({ features: x });
  let rows = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < durationMs) {
    await session.run({ features: x });
    rows += batch;
  }
  const rate = rows / ((performance.now() - t0) / 1000);
  await session.release();
  return rate;
}

async function bareHttp(body: Buffer): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

type Stats = {
  model_stats: {
    inference_count: number;
    execution_count: number;
    batch_stats: {
      compute_input: { ns: number };
      compute_infer: { ns: number };
      compute_output: { ns: number };
    }[];
  }[];
};

/** Nanoseconds the instance spent computing batches, from Triton-shaped statistics. */
const computeNs = (s: Stats): number =>
  s.model_stats[0]!.batch_stats.reduce(
    (n, b) => n + b.compute_input.ns + b.compute_infer.ns + b.compute_output.ns,
    0,
  );

/** Inputs sent by the forked undici/grpc-js generator. */
type GeneratorVariant = 'binary' | 'json' | 'grpc';
/** The same binary and JSON bodies sent by wrk, the cheapest generator, at c=16 (when installed). */
type WrkVariant = 'binary-wrk' | 'json-wrk';
type LargeVariant = GeneratorVariant | WrkVariant;

// Looked up by the parent only: the forked generator never runs wrk.
const WRK = process.argv.includes('--loadgen') ? undefined : onPath('wrk');

/** The image points, in the order each round measures them. */
const LARGE_POINTS: [LargeVariant, number][] = [
  ['binary', 1],
  ['binary', 16],
  ['json', 1],
  ['json', 16],
  ['grpc', 1],
  ['grpc', 16],
  ...(WRK
    ? ([
        ['binary-wrk', 16],
        ['json-wrk', 16],
      ] as [LargeVariant, number][])
    : []),
];

interface LargePoint extends LoadResult {
  variant: LargeVariant;
  concurrency: number;
  meanBatchSize: number;
}

/** Float32 pixels as a client holds them (x/255 − 0.5), the same for every request. */
function imagePixels(model: ImageModel): Float32Array {
  const n = model.dims.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, i) => Math.fround(((i * 37) % 256) / 255 - 0.5));
}

interface LargeResult {
  model: ImageModel['name'];
  multiplyAdds: number;
  raw: { batch: number; rowsPerSecond: number; perRound: number[] }[];
  points: (LargePoint & {
    perRound: number[];
    serverCpuMsPerRequest: number;
    generatorCpuMsPerRequest: number;
  })[];
  ratios: Record<string, number>;
  /** json/binary at concurrency 16, round by round: the spread the pooled ratio hides. */
  jsonBinaryPerRound: number[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? NaN
    : s.length % 2
      ? s[s.length >> 1]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** One image model's server, session and prepared request bodies, kept for every round. */
interface ImageRig {
  model: ImageModel;
  session: ort.InferenceSession;
  tensors: Map<number, ort.Tensor>;
  server: Awaited<ReturnType<typeof startModelServer>>;
  jobs: Record<GeneratorVariant, (concurrency: number, durationMs: number) => LoadJob>;
  /** wrk Lua scripts that send the binary and JSON bodies (files beside them in `scriptDir`). */
  wrkScripts: Record<WrkVariant, string>;
  /** A temporary directory, removed with the rig. */
  scriptDir: string;
}

/** A wrk script that POSTs the bytes of `bodyFile` with `headers`, read once at start. */
function wrkBodyScript(dir: string, name: string, body: Buffer, headers: Record<string, string>): string {
  const bodyFile = path.join(dir, `${name}.body`);
  fs.writeFileSync(bodyFile, body);
  const script = path.join(dir, `${name}.lua`);
  fs.writeFileSync(
    script,
    [
      `local f = assert(io.open(${JSON.stringify(bodyFile)}, "rb"))`,
      'wrk.body = f:read("*all")',
      'f:close()',
      'wrk.method = "POST"',
      ...Object.entries(headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`),
      '',
    ].join('\n'),
  );
  return script;
}

async function imageRig(model: ImageModel): Promise<ImageRig> {
  const name = model.name;
  const file = path.join(projectRoot, 'demo/models', model.file);
  const pixels = imagePixels(model);
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const tensors = new Map<number, ort.Tensor>();
  for (const batch of [1, 16]) {
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: batch * pixels.length }, (_, i) => pixels[i % pixels.length]!),
      [batch, ...model.dims],
    );
    for (let i = 0; i < 5; i++) await session.run({ [model.input]: x });
    tensors.set(batch, x);
  }
  const shape = [1, ...model.dims];
  const input = { name: model.input, datatype: 'FP32', shape };
  // As tritonclient sends them: JSON numbers are the float32 values printed as doubles.
  const json = JSON.stringify({ inputs: [{ ...input, data: Array.from(pixels) }] });
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ ...input, parameters: { binary_data_size: pixels.byteLength } }],
      outputs: [{ name: model.output, parameters: { binary_data: true } }],
    }),
  );
  const binaryBytes = Buffer.concat([header, Buffer.from(pixels.buffer)]);
  const binary = binaryBytes.toString('base64');
  const scriptDir = fs.mkdtempSync(path.join(os.tmpdir(), `runway-bench-${name}-`));
  const wrkScripts: Record<WrkVariant, string> = {
    'binary-wrk': wrkBodyScript(scriptDir, 'binary', binaryBytes, {
      'Content-Type': 'application/octet-stream',
      'Inference-Header-Content-Length': String(header.length),
    }),
    'json-wrk': wrkBodyScript(scriptDir, 'json', Buffer.from(json), { 'Content-Type': 'application/json' }),
  };
  const grpcBody = oipService()
    .ModelInfer!.requestSerialize({
      model_name: name,
      inputs: [input],
      raw_input_contents: [Buffer.from(pixels.buffer)],
    })
    .toString('base64');
  const server = await startModelServer({
    model: file,
    name,
    port: 0,
    grpcPort: 0,
    threads: 1,
    instances: 1,
    maxBatchSize: 64,
    preferredBatchSizes: [],
    maxQueueDelayMs: 2,
    maxQueueSize: 4096,
    logSink: () => undefined,
  });
  const base = (concurrency: number, durationMs: number) => ({
    url: server.url,
    path: `/v2/models/${name}/infer`,
    concurrency,
    durationMs,
    warmupMs: 500,
  });
  return {
    model,
    session,
    tensors,
    server,
    wrkScripts,
    scriptDir,
    jobs: {
      binary: (c, ms) => ({
        ...base(c, ms),
        body: binary,
        base64: true,
        headers: {
          'content-type': 'application/octet-stream',
          'inference-header-content-length': String(header.length),
        },
      }),
      json: (c, ms) => ({ ...base(c, ms), body: json }),
      grpc: (c, ms) => ({
        ...base(c, ms),
        body: grpcBody,
        base64: true,
        grpc: { address: server.grpc!.address, method: '/inference.GRPCInferenceService/ModelInfer' },
      }),
    },
  };
}

/** A wrk point, in the forked generator's terms (wrk gives no p95; its CPU is its own). */
async function wrkLoad(
  url: string,
  script: string,
  concurrency: number,
  durationMs: number,
): Promise<LoadResult> {
  const w = await runWrk(WRK!, url, {
    connections: concurrency,
    seconds: Math.max(1, Math.round(durationMs / 1000)),
    script,
  });
  return {
    requests: w.requests,
    errors: w.errors,
    seconds: w.seconds,
    throughput: w.requests / w.seconds,
    p50Ms: w.p50Ms,
    p95Ms: NaN,
    p99Ms: w.p99Ms,
    sent: w.requests,
    generatorCpuUs: w.cpuS * 1e6,
  };
}

/**
 * The image classifiers: raw onnxruntime, then each server with binary, JSON and gRPC inputs.
 * The machine is shared, so its load drifts within a run: the measurements go in `rounds`
 * interleaved rounds (every model, raw and every variant in each), pooled at the end, so that a
 * change of load hits every figure of a ratio alike instead of one side of it.
 */
async function largeTensors(
  models: ImageModel[],
  durationMs: number,
  rounds: number,
): Promise<LargeResult[]> {
  const rigs: ImageRig[] = [];
  const slice = Math.max(500, Math.round(durationMs / rounds));
  type Acc = {
    n: number;
    seconds: number;
    perRound: number[];
    p50: number[];
    p95: number[];
    p99: number[];
    serverCpuUs: number;
    generatorCpuUs: number;
    sent: number;
    errors: number;
    inferences: number;
    executions: number;
  };
  const raws = new Map<string, { rows: number; seconds: number; perRound: number[] }>();
  const accs = new Map<string, Acc>();
  try {
    for (const model of models) rigs.push(await imageRig(model));
    for (let round = 0; round < rounds; round++) {
      for (const rig of rigs) {
        const name = rig.model.name;
        for (const [batch, x] of rig.tensors) {
          let rows = 0;
          const t0 = performance.now();
          while (performance.now() - t0 < slice) {
            await rig.session.run({ [rig.model.input]: x });
            rows += batch;
          }
          const seconds = (performance.now() - t0) / 1000;
          const key = `${name}/${batch}`;
          const r = raws.get(key) ?? { rows: 0, seconds: 0, perRound: [] };
          r.rows += rows;
          r.seconds += seconds;
          r.perRound.push(rows / seconds);
          raws.set(key, r);
          console.error(
            `(a) ${name} raw ort batch ${batch}, round ${round + 1}: ${(rows / seconds).toFixed(0)} rows/s`,
          );
        }
        for (const [variant, concurrency] of LARGE_POINTS) {
          const stats = async (): Promise<Stats> =>
            (await (await fetch(`${rig.server.url}/v2/models/${name}/stats`)).json()) as Stats;
          const before = await stats();
          // The servers run in this process, which does nothing else during a point: their CPU.
          const cpu0 = process.cpuUsage();
          const r =
            variant === 'binary-wrk' || variant === 'json-wrk'
              ? await wrkLoad(
                  `${rig.server.url}/v2/models/${name}/infer`,
                  rig.wrkScripts[variant],
                  concurrency,
                  slice,
                )
              : await runLoad(rig.jobs[variant](concurrency, slice));
          const cpu = process.cpuUsage(cpu0);
          const after = await stats();
          const d = (k: 'inference_count' | 'execution_count'): number =>
            after.model_stats[0]![k] - before.model_stats[0]![k];
          const key = `${name}/${variant}/${concurrency}`;
          const a: Acc = accs.get(key) ?? {
            n: 0,
            seconds: 0,
            perRound: [],
            p50: [],
            p95: [],
            p99: [],
            serverCpuUs: 0,
            generatorCpuUs: 0,
            sent: 0,
            errors: 0,
            inferences: 0,
            executions: 0,
          };
          a.n += r.requests;
          a.seconds += r.seconds;
          a.perRound.push(r.throughput);
          a.p50.push(r.p50Ms);
          a.p95.push(r.p95Ms);
          a.p99.push(r.p99Ms);
          a.errors += r.errors;
          a.serverCpuUs += cpu.user + cpu.system;
          a.generatorCpuUs += r.generatorCpuUs;
          a.sent += r.sent;
          a.inferences += d('inference_count');
          a.executions += d('execution_count');
          accs.set(key, a);
          console.error(
            `(${variant}) ${name} c=${concurrency}, round ${round + 1}: ${r.throughput.toFixed(0)} req/s p50 ${r.p50Ms.toFixed(2)} ms p99 ${r.p99Ms.toFixed(2)} ms errors ${r.errors}`,
          );
        }
      }
    }
  } finally {
    for (const rig of rigs) {
      await rig.server.close();
      await rig.session.release();
      fs.rmSync(rig.scriptDir, { recursive: true, force: true });
    }
  }
  return models.map((model) => {
    const name = model.name;
    const raw = [1, 16].map((batch) => {
      const r = raws.get(`${name}/${batch}`)!;
      return { batch, rowsPerSecond: r.rows / r.seconds, perRound: r.perRound };
    });
    const points = LARGE_POINTS.map(([variant, concurrency]) => {
      const a = accs.get(`${name}/${variant}/${concurrency}`)!;
      return {
        variant,
        concurrency,
        requests: a.n,
        errors: a.errors,
        seconds: a.seconds,
        throughput: a.n / a.seconds,
        // Latency quantiles: the median of the rounds' own.
        p50Ms: median(a.p50),
        p95Ms: median(a.p95),
        p99Ms: median(a.p99),
        meanBatchSize: a.inferences / Math.max(1, a.executions),
        perRound: a.perRound,
        // CPU per request, warm-up included on both sides: unlike req/s, it does not fall
        // when other work on the machine takes the cores.
        sent: a.sent,
        generatorCpuUs: a.generatorCpuUs,
        serverCpuMsPerRequest: a.serverCpuUs / 1000 / Math.max(1, a.inferences),
        generatorCpuMsPerRequest: a.generatorCpuUs / 1000 / Math.max(1, a.sent),
      };
    });
    const at = (v: LargeVariant, c: number): number =>
      points.find((p) => p.variant === v && p.concurrency === c)?.throughput ?? NaN;
    const rawAt = (b: number): number => raw.find((r) => r.batch === b)?.rowsPerSecond ?? NaN;
    const ratios = {
      [`${name}: json/binary at 16`]: at('json', 16) / at('binary', 16),
      [`${name}: binary/a(batch 16) at 16`]: at('binary', 16) / rawAt(16),
      [`${name}: grpc/a(batch 16) at 16`]: at('grpc', 16) / rawAt(16),
      [`${name}: json/binary at 1`]: at('json', 1) / at('binary', 1),
      [`${name}: binary/a(batch 1) at 1`]: at('binary', 1) / rawAt(1),
      ...(WRK
        ? {
            [`${name}: json/binary at 16, wrk`]: at('json-wrk', 16) / at('binary-wrk', 16),
            [`${name}: binary/a(batch 16) at 16, wrk`]: at('binary-wrk', 16) / rawAt(16),
          }
        : {}),
    };
    const per = (v: LargeVariant): number[] =>
      points.find((p) => p.variant === v && p.concurrency === 16)!.perRound;
    const jsonBinaryPerRound = per('json').map((j, i) => j / per('binary')[i]!);
    return { model: name, multiplyAdds: multiplyAdds(model), raw, points, ratios, jsonBinaryPerRound };
  });
}

interface Point extends LoadResult {
  model: string;
  variant: 'b-server-unbatched' | 'c-server-batched' | 'd-bare-http';
  concurrency: number;
  meanBatchSize?: number;
  /** Share of the measured wall time the model instance spent computing (1 = never idle). */
  instanceBusy?: number;
}

const mMac = (n: number): string => `${(n / 1e6).toFixed(1)} M`;

/** The image classifiers side by side, then each one's points and raw onnxruntime rates. */
function largeTable(large: LargeResult[], rounds: number): string[] {
  if (large.length === 0) return [];
  const first = IMAGE_MODELS.find((m) => m.name === large[0]!.model)!;
  const lines = [
    `Image classifiers (demo/image-model.ts, input [1, ${first.dims.join(', ')}] FP32: ${(imagePixels(first).byteLength / 1024).toFixed(0)} kB binary, JSON as float32 values printed in full), batching server, 1 instance, 1 thread; raw onnxruntime in this process, same run. Measured in ${rounds} interleaved rounds (each model raw, then every input and concurrency), pooled; latencies are the median of the rounds' own:`,
    '',
    '| model | multiply-adds / image | raw ort batch 16 rows/s | binary c=16 req/s | json c=16 req/s | grpc c=16 req/s | json/binary | binary/raw ort | grpc/raw ort | server CPU per request, binary/json | binary c=16, wrk | json c=16, wrk | json/binary, wrk | binary, wrk / raw ort |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const l of large) {
    const at = (v: LargeVariant): number =>
      l.points.find((p) => p.variant === v && p.concurrency === 16)?.throughput ?? NaN;
    const raw16 = l.raw.find((r) => r.batch === 16)?.rowsPerSecond ?? NaN;
    const cpu = (v: LargeVariant): number =>
      l.points.find((p) => p.variant === v && p.concurrency === 16)?.serverCpuMsPerRequest ?? NaN;
    lines.push(
      `| ${l.model} | ${mMac(l.multiplyAdds)} | ${raw16.toFixed(0)} | ${at('binary').toFixed(0)} | ${at('json').toFixed(0)} | ${at('grpc').toFixed(0)} | ${(at('json') / at('binary')).toFixed(2)} | ${(at('binary') / raw16).toFixed(2)} | ${(at('grpc') / raw16).toFixed(2)} | ${(cpu('binary') / cpu('json')).toFixed(2)} | ${at('binary-wrk').toFixed(0)} | ${at('json-wrk').toFixed(0)} | ${(at('json-wrk') / at('binary-wrk')).toFixed(2)} | ${(at('binary-wrk') / raw16).toFixed(2)} |`,
    );
  }
  lines.push(
    '',
    'Server CPU per request is the CPU of this process (both servers, nothing else runs) over the requests it answered: where the server is CPU-bound, binary/json of it is the JSON share of the binary rate a quiet machine would give.',
    '',
    WRK
      ? `The wrk columns send the same binary and JSON bodies with wrk (${WRK}, one C thread, c=16) instead of the forked Node generator (undici), in the same rounds: on 2 shared cores every µs the generator spends per request is taken from the server, and the Node generator spends several times what wrk does (generator CPU per request in the tables below).`
      : 'wrk is not installed (`bash scripts/tools.sh wrk`): the wrk columns are empty.',
    '',
    ...large.map(
      (l) =>
        `${l.model} json/binary at c=16 round by round: ${l.jsonBinaryPerRound.map((r) => r.toFixed(2)).join(', ')}.`,
    ),
    '',
  );
  for (const l of large) {
    lines.push(
      `${l.model} (${mMac(l.multiplyAdds)} multiply-adds per image):`,
      '',
      '| input | concurrency | req/s | p50 ms | p99 ms | mean batch | server CPU ms / request | generator CPU ms / request | errors |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...l.points.map(
        (p) =>
          `| ${p.variant} | ${p.concurrency} | ${p.throughput.toFixed(0)} | ${p.p50Ms.toFixed(2)} | ${p.p99Ms.toFixed(2)} | ${p.meanBatchSize.toFixed(1)} | ${p.serverCpuMsPerRequest.toFixed(3)} | ${p.generatorCpuMsPerRequest.toFixed(3)} | ${p.errors} |`,
      ),
      '',
      `| ${l.model} (a) raw ort batch | rows/s |`,
      '| ---: | ---: |',
      ...l.raw.map((r) => `| ${r.batch} | ${r.rowsPerSecond.toFixed(0)} |`),
      '',
    );
  }
  return lines;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

async function main(): Promise<void> {
  const durationMs = Number(arg('--duration-ms', '3000'));
  const concurrencies = arg('--concurrency', '1,8,64').split(',').map(Number);
  const requested = arg('--models', 'fraud-v1,heavy,image-cnn,image-resnet').split(',');
  const images = IMAGE_MODELS.filter((m) => requested.includes(m.name));
  const models = requested.filter((m) => !images.some((i) => i.name === m));
  const label = arg('--label', '');
  const rounds = Number(arg('--rounds', '3'));
  const maxBatch = Math.max(...concurrencies);
  const points: Point[] = [];
  const raw: { model: string; batch: number; rowsPerSecond: number }[] = [];
  const row = Array.from({ length: 8 }, (_, k) => Math.sin(k) * 0.8);
  const body = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: row }] });

  for (const name of models) {
    const file = path.join(projectRoot, 'demo/models', `${name}.onnx`);
    for (const batch of [...new Set([1, 8, maxBatch])]) {
      const rowsPerSecond = await rawOrt(file, batch, durationMs);
      raw.push({ model: name, batch, rowsPerSecond });
      console.error(`(a) ${name} raw ort batch ${batch}: ${rowsPerSecond.toFixed(0)} rows/s`);
    }
    let fixedBody = Buffer.alloc(0);
    for (const variant of ['b-server-unbatched', 'c-server-batched'] as const) {
      const server = await startModelServer({
        model: file,
        name,
        port: 0,
        threads: 1,
        instances: 1,
        maxBatchSize: variant === 'c-server-batched' ? maxBatch : 1,
        preferredBatchSizes: [],
        maxQueueDelayMs: variant === 'c-server-batched' ? 2 : 0,
        maxQueueSize: 4096,
      });
      try {
        const probe = await fetch(`${server.url}/v2/models/${name}/infer`, { method: 'POST', body });
        fixedBody = Buffer.from(await probe.arrayBuffer());
        for (const concurrency of concurrencies) {
          const before = (await (await fetch(`${server.url}/v2/models/${name}/stats`)).json()) as Stats;
          const t0 = performance.now();
          const r = await runLoad({
            url: server.url,
            path: `/v2/models/${name}/infer`,
            body,
            concurrency,
            durationMs,
            warmupMs: 500,
          });
          const after = (await (await fetch(`${server.url}/v2/models/${name}/stats`)).json()) as Stats;
          const d = (k: 'inference_count' | 'execution_count'): number =>
            after.model_stats[0]![k] - before.model_stats[0]![k];
          const meanBatchSize = d('inference_count') / Math.max(1, d('execution_count'));
          // Includes the load generator's warm-up: a share of busy time, not an exact figure.
          const instanceBusy = (computeNs(after) - computeNs(before)) / 1e6 / (performance.now() - t0);
          points.push({ model: name, variant, concurrency, ...r, meanBatchSize, instanceBusy });
          console.error(
            `(${variant[0]}) ${name} c=${concurrency}: ${r.throughput.toFixed(0)} req/s p50 ${r.p50Ms.toFixed(2)} ms p99 ${r.p99Ms.toFixed(2)} ms batch ${meanBatchSize.toFixed(1)} busy ${(instanceBusy * 100).toFixed(0)}% errors ${r.errors}`,
          );
        }
      } finally {
        await server.close();
      }
    }
    const bare = await bareHttp(fixedBody);
    try {
      for (const concurrency of concurrencies) {
        const r = await runLoad({ url: bare.url, path: '/', body, concurrency, durationMs, warmupMs: 500 });
        points.push({ model: name, variant: 'd-bare-http', concurrency, ...r });
        console.error(
          `(d) ${name} c=${concurrency}: ${r.throughput.toFixed(0)} req/s p50 ${r.p50Ms.toFixed(2)} ms`,
        );
      }
    } finally {
      await bare.close();
    }
  }

  const large = images.length > 0 ? await largeTensors(images, durationMs, rounds) : [];

  const at = (model: string, variant: Point['variant'], c: number): number =>
    points.find((p) => p.model === model && p.variant === variant && p.concurrency === c)?.throughput ?? NaN;
  const rawAt = (model: string, batch: number): number =>
    raw.find((r) => r.model === model && r.batch === batch)?.rowsPerSecond ?? NaN;
  const ratios: Record<string, number> = {};
  for (const m of models) {
    ratios[`${m}: c/b at ${maxBatch}`] =
      at(m, 'c-server-batched', maxBatch) / at(m, 'b-server-unbatched', maxBatch);
    ratios[`${m}: c/a(batch ${maxBatch}) at ${maxBatch}`] =
      at(m, 'c-server-batched', maxBatch) / rawAt(m, maxBatch);
    ratios[`${m}: c/d at ${maxBatch}`] = at(m, 'c-server-batched', maxBatch) / at(m, 'd-bare-http', maxBatch);
    for (const c of concurrencies)
      ratios[`${m}: c/b at ${c}`] = at(m, 'c-server-batched', c) / at(m, 'b-server-unbatched', c);
  }

  const date = new Date().toISOString().slice(0, 10);
  const outDir = path.join(projectRoot, 'bench/results');
  fs.mkdirSync(outDir, { recursive: true });
  const machine = {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    node: process.version,
    loadavg: os.loadavg(),
  };
  for (const l of large) Object.assign(ratios, l.ratios);
  const result = {
    date: new Date().toISOString(),
    machine,
    durationMs,
    concurrencies,
    raw,
    points,
    images: large.map(({ ratios: _, ...l }) => l),
    ratios,
  };
  const stem = `serving-${date}${label ? `-${label}` : ''}`;
  fs.writeFileSync(path.join(outDir, `${stem}.json`), JSON.stringify(result, null, 2) + '\n');

  const lines = [
    `# Serving benchmark ${date}`,
    '',
    `${machine.cpus} CPUs (${machine.model}), Node ${machine.node}, load average at the end ${machine.loadavg.map((l) => l.toFixed(1)).join(' ')}; ${durationMs} ms per point, 1 row per request, ort intra-op threads 1, 1 instance.`,
    '',
    // Only the image models asked for (--models): no empty tables for the small ones.
    ...(points.length > 0
      ? [
          '| model | variant | concurrency | req/s | p50 ms | p95 ms | p99 ms | mean batch | instance busy | errors |',
          '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
          ...points.map(
            (p) =>
              `| ${p.model} | ${p.variant} | ${p.concurrency} | ${p.throughput.toFixed(0)} | ${p.p50Ms.toFixed(2)} | ${p.p95Ms.toFixed(2)} | ${p.p99Ms.toFixed(2)} | ${p.meanBatchSize?.toFixed(1) ?? ''} | ${p.instanceBusy === undefined ? '' : `${(p.instanceBusy * 100).toFixed(0)}%`} | ${p.errors} |`,
          ),
          '',
          '| model | (a) raw ort batch | rows/s |',
          '| --- | ---: | ---: |',
          ...raw.map((r) => `| ${r.model} | ${r.batch} | ${r.rowsPerSecond.toFixed(0)} |`),
          '',
        ]
      : []),
    ...largeTable(large, rounds),
    '| ratio | value |',
    '| --- | ---: |',
    ...Object.entries(ratios).map(([k, v]) => `| ${k} | ${v.toFixed(2)} |`),
    '',
  ];
  fs.writeFileSync(path.join(outDir, `${stem}.md`), lines.join('\n'));
  console.log(lines.join('\n'));
}

if (process.argv.includes('--loadgen')) {
  process.once('message', (job: LoadJob) => {
    loadgen(job).then(
      (r) => process.send!(r),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
