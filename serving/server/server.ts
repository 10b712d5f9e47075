/**
 * The model server: Open Inference Protocol v2 over node:http in front of the dynamic batcher
 * and the session workers. `startModelServer` resolves once the model is loaded and warmed up
 * and the port is bound; `close()` drains queued and running work first.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { digestFile } from '../../common/digest';
import { createLogger, type Logger } from '../../common/log';
import { Batcher, type BatchResult } from './batcher';
import { DATATYPES, elementCount, type Tensor } from './datatypes';
import { badRequest, InferenceError, ModelRefusedError } from './errors';
import { createModelMetrics, type ModelMetrics } from './metrics';
import { RequestLog } from './request-log';
import { resolveServerOptions, type ModelServerOptions, type ResolvedServerOptions } from './options';
import { SessionPool } from './pool';
import type { Device, NamedTensor } from './protocol';
import { DriftHistograms, parseDriftReference } from './drift';
import { parseInferRequest, type ParsedRequest } from './request';
import { encodeInferResponse } from './response';
import { signatureFromMetadata, type Signature } from './signature';
import { ModelStats } from './stats';
import { startGrpcService, type GrpcService } from './grpc';
import { answerJson, nodeExchange, type Exchange } from '../http/exchange';
import { plainLane } from '../http/plain-lane';

export const SERVER_NAME = 'runway';
export const SERVER_VERSION = '0.1.0';
/** Protocol extensions this server implements, as `GET /v2` lists them. */
export const EXTENSIONS = ['binary_tensor_data', 'statistics'];
/** Request header with a per-request queue timeout in microseconds (like `parameters.timeout`). */
export const TIMEOUT_HEADER = 'inference-timeout-us';

export interface ModelServer {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  signature: Signature;
  /** Execution provider in use (`cpu` after a CUDA fallback). */
  provider: Device;
  metrics: ModelMetrics;
  /** The OIP gRPC service, when `grpcPort` is set. */
  grpc?: { address: string; port: number; tls: boolean };
  /** Not ready, refuse new inference, drain queued and running work, stop. Idempotent. */
  close(): Promise<void>;
}

/** onnxruntime's words for a file that is not an ONNX model at all. */
const NOT_ONNX = /Protobuf parsing failed|INVALID_PROTOBUF|does not have a graph|No graph was found/i;

/** A request the batcher answered, with what its log line and metrics need. */
interface Executed {
  result: BatchResult;
  byName: Map<string, NamedTensor>;
  logInputs?: Record<string, unknown>[];
}

async function checkArtifact(opts: ResolvedServerOptions): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(opts.model);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelRefusedError(
      `${opts.model}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  if (!stat.isFile()) throw new ModelRefusedError(`${opts.model}: not a regular file`);
  if (opts.sha256) {
    const digest = (await digestFile(opts.model)).sha256;
    if (digest !== opts.sha256.toLowerCase()) {
      throw new ModelRefusedError(
        `${opts.model}: sha256 is ${digest}, expected ${opts.sha256.toLowerCase()}; refusing to load`,
      );
    }
  }
}

function warmupTensor(spec: Signature['inputs'][number], rows: number | undefined): Tensor {
  const dims = spec.shape.map((d, i) => (i === 0 && rows !== undefined ? rows : d === -1 ? 1 : d));
  const n = elementCount(dims);
  const info = DATATYPES[spec.datatype];
  const data = spec.datatype === 'BYTES' ? Array.from({ length: n }, () => '') : info.make(n);
  return { type: info.ort, dims, data };
}

/** One run per preferred batch size on every instance, so the first requests meet a warm model. */
async function warmUp(
  pool: SessionPool,
  sig: Signature,
  opts: ResolvedServerOptions,
  log: Logger,
): Promise<void> {
  const sizes = sig.batched
    ? [...new Set([1, ...opts.preferredBatchSizes.filter((s) => s <= opts.maxBatchSize)])]
    : [undefined];
  const outputs = sig.outputs.map((o) => o.name);
  for (const rows of sizes) {
    const runs = Array.from({ length: pool.size }, () =>
      pool.run(
        sig.inputs.map((spec) => ({ name: spec.name, tensor: warmupTensor(spec, rows) })),
        outputs,
      ),
    );
    const results = await Promise.allSettled(runs);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      // A model may legitimately reject all-zero inputs; it still serves real ones.
      log.warn('warm-up run failed', { rows, error: (failed as PromiseRejectedResult).reason });
    }
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const sendError = (res: http.ServerResponse, status: number, message: string): void =>
  sendJson(res, status, { error: message });

/** Reads the whole body, refusing more than `limit` bytes. */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(
      badRequest(`request body of ${declared} bytes exceeds the limit of ${limit} bytes`),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(badRequest(`request body exceeds the limit of ${limit} bytes`));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

/** tritonclient can compress requests (gzip or deflate); the limit applies to the inflated body. */
function decodeBody(body: Buffer, encoding: string | undefined, limit: number): Buffer {
  if (encoding === undefined || encoding === 'identity') return body;
  const inflate =
    encoding === 'gzip' ? zlib.gunzipSync : encoding === 'deflate' ? zlib.inflateSync : undefined;
  if (!inflate) throw badRequest(`Content-Encoding ${encoding} is not supported; use gzip, deflate or none`);
  try {
    return inflate(body, { maxOutputLength: limit });
  } catch (err) {
    if (err instanceof RangeError)
      throw badRequest(`decompressed request body exceeds the limit of ${limit} bytes`);
    throw badRequest(`cannot decode ${encoding} request body: ${(err as Error).message}`);
  }
}

function headerInt(value: string | string[] | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value[0]! : value;
  if (!/^\d+$/.test(text.trim()))
    throw badRequest(`${name} header must be a non-negative integer, got ${JSON.stringify(text)}`);
  return Number(text.trim());
}

export async function startModelServer(options: ModelServerOptions): Promise<ModelServer> {
  const opts = resolveServerOptions(options);
  const log = createLogger('server', opts.logSink).child(opts.name);
  const loadStart = process.hrtime.bigint();
  await checkArtifact(opts);

  const threads = opts.threads ?? Math.max(1, Math.floor(os.availableParallelism() / opts.instances));
  let started: Awaited<ReturnType<typeof SessionPool.start>>;
  try {
    started = await SessionPool.start({
      modelPath: opts.model,
      device: opts.device,
      threads,
      spinWait: opts.spinWait,
      instances: opts.instances,
    });
  } catch (err) {
    const message = (err as Error).message;
    // Bytes that are not an ONNX model will never load: refuse them (exit 3) so a fleet does not
    // retry; other load failures (memory, a busy GPU) may pass on another try.
    if (NOT_ONNX.test(message)) {
      const why = message.replace(/^Load model from .* failed:/, '').replace(/^\S+:\d+ \S+.*\) /, '');
      throw new ModelRefusedError(
        `${opts.model}: not a loadable ONNX model (${why.trim()}); refusing to serve it`,
      );
    }
    throw new Error(`${opts.model}: cannot load model: ${message}`);
  }
  const { pool, info } = started;
  let sig: Signature;
  try {
    sig = signatureFromMetadata(info.inputs, info.outputs, opts.model);
  } catch (err) {
    await pool.close();
    throw new ModelRefusedError((err as Error).message);
  }
  if (info.fallback !== undefined) {
    log.warn('CUDA execution provider unavailable, falling back to CPU', { reason: info.fallback });
  }
  const metrics = createModelMetrics(opts.name, opts.version);
  metrics.provider(info.provider);
  const requestLog = new RequestLog(log.child('requests'), {
    model: opts.name,
    version: opts.version,
    sample: opts.requestLogSample,
    inputs: opts.requestLogInputs,
    count: (outcome) => metrics.requestLogLine(outcome),
  });
  const stats = new ModelStats(opts.name, opts.version);
  let drift: DriftHistograms | undefined;
  if (opts.driftReference) {
    try {
      drift = new DriftHistograms(
        parseDriftReference(opts.driftReference),
        sig,
        opts.name,
        opts.version,
        metrics.registry,
      );
    } catch (err) {
      await pool.close();
      throw err;
    }
  }
  const maxBatchSize = sig.batched ? opts.maxBatchSize : 1;
  const batcher = new Batcher(
    pool,
    {
      batched: sig.batched,
      inputNames: sig.inputs.map((i) => i.name),
      maxBatchSize,
      preferredBatchSizes: opts.preferredBatchSizes.filter((s) => s <= maxBatchSize),
      maxQueueDelayMs: opts.maxQueueDelayMs,
      maxQueueSize: opts.maxQueueSize,
      strictQueueDelay: opts.strictQueueDelay,
    },
    {
      onBatch: (rows, _requests, times, ok) => {
        if (!ok) return;
        stats.batch(rows, times);
        metrics.batchSize(rows);
        metrics.computeSeconds((times.inputNs + times.inferNs + times.outputNs) / 1e9);
      },
      onQueueDepth: (n) => metrics.queueDepth(n),
      onRejected: () => metrics.rejected(),
      onTimedOut: () => metrics.timedOut(),
      arriving: () => arriving,
    },
  );
  try {
    await warmUp(pool, sig, opts, log);
  } catch (err) {
    await pool.close();
    throw new ModelRefusedError((err as Error).message);
  }

  let state: 'ready' | 'draining' | 'closed' = 'ready';
  let admitted = 0;
  /** Admitted requests not yet handed to the batcher. */
  let arriving = 0;
  const admittedDone: (() => void)[] = [];
  const defaultTimeoutUs = opts.requestTimeoutMs > 0 ? opts.requestTimeoutMs * 1000 : undefined;
  const parameters = {
    execution_provider: info.provider,
    max_batch_size: maxBatchSize,
    preferred_batch_sizes: sig.batched ? opts.preferredBatchSizes.filter((s) => s <= maxBatchSize) : [],
    max_queue_delay_ms: opts.maxQueueDelayMs,
    max_queue_size: opts.maxQueueSize,
    instances: opts.instances,
    dynamic_batching: sig.batched && maxBatchSize > 1,
  };
  const modelMetadata = {
    name: opts.name,
    versions: [opts.version],
    platform: 'onnxruntime_onnx',
    inputs: sig.inputs,
    outputs: sig.outputs,
    parameters,
  };
  const serverMetadata = { name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS };
  /** Over HTTP the server metadata also names the gRPC port: the router finds replicas' gRPC doors by it. */
  let httpServerMetadata: Record<string, unknown> = serverMetadata;

  /**
   * Admission, shared by HTTP and gRPC: refused while draining, or when the queue plus the bodies
   * still arriving already fill it. An admitted request is drained on SIGTERM; `release` it once.
   */
  function admit(): void {
    if (state !== 'ready') {
      throw new InferenceError(503, 'the server is shutting down and accepts no new inference');
    }
    if (batcher.depth + arriving >= opts.maxQueueSize) {
      metrics.rejected();
      throw new InferenceError(
        503,
        `the queue is full (${opts.maxQueueSize} requests waiting or arriving); retry later`,
      );
    }
    admitted++;
  }

  function release(): void {
    if (--admitted === 0) for (const w of admittedDone.splice(0)) w();
  }

  /** Runs a parsed request through the batcher; the caller encodes the answer, then calls `succeeded`. */
  async function execute(parsed: ParsedRequest): Promise<Executed> {
    // Sampled now: the input buffers move to a session worker on submit and cannot be read after.
    const logInputs = requestLog.wants(200)
      ? requestLog.describeInputs(
          parsed.inputs.map((tensor, i) => ({
            name: sig.inputs[i]!.name,
            datatype: sig.inputs[i]!.datatype,
            tensor,
          })),
        )
      : undefined;
    // Counted now too, for the same reason; only bin counts are kept (serving/server/drift.ts).
    const sampled = drift?.sample(parsed.inputs) ?? false;
    const result = await batcher.submit(parsed, defaultTimeoutUs);
    const byName = new Map<string, NamedTensor>(result.outputs.map((o) => [o.name, o]));
    if (sampled) drift?.predicted(byName, parsed.rows);
    return { result, byName, logInputs };
  }

  function succeeded(parsed: ParsedRequest, done: Executed, t0: bigint): void {
    const totalNs = Number(process.hrtime.bigint() - t0);
    if (done.logInputs) {
      requestLog.write({
        id: parsed.id,
        status: 200,
        ms: totalNs / 1e6,
        rows: parsed.rows,
        inputs: done.logInputs,
        outputs: parsed.outputs.map((o) => ({
          name: o.name,
          datatype: sig.outputs.find((x) => x.name === o.name)?.datatype ?? 'unknown',
          shape: done.byName.get(o.name)!.tensor.dims,
        })),
      });
    }
    stats.success(totalNs, parsed.rows, done.result.queueNs, done.result.times);
    metrics.success();
    metrics.requestSeconds(totalNs / 1e9);
    metrics.queueSeconds(done.result.queueNs / 1e9);
  }

  /** Logs (rate-limited, redacted) and counts a failed inference; returns what to answer. */
  function failed(err: unknown, t0: bigint, rows: number): { status: number; message: string } {
    const status = err instanceof InferenceError ? err.status : 500;
    const message = err instanceof Error ? err.message : String(err);
    // Failures are logged rate-limited; the message names the field, never echoes the values.
    if (requestLog.wants(status)) {
      const error = err instanceof InferenceError && !opts.requestLogInputs ? err.redacted : message;
      requestLog.write({ status, ms: Number(process.hrtime.bigint() - t0) / 1e6, rows, error });
    }
    const totalNs = Number(process.hrtime.bigint() - t0);
    stats.failure(totalNs);
    metrics.failure();
    metrics.requestSeconds(totalNs / 1e9);
    return { status, message };
  }

  const shedMessage = `the queue is full (${opts.maxQueueSize} requests waiting or arriving); retry later`;
  const shedBody = Buffer.from(JSON.stringify({ error: shedMessage }));
  const shedHeaders = ['content-type', 'application/json', 'content-length', String(shedBody.length)];
  /**
   * The overload path, as cheap as an answer can be: no error object (its stack trace), no body
   * read, a prepared answer. Under 3× overload two requests in three end here, on the same event
   * loop that feeds the batcher, so every microsecond here is taken from accepted work.
   */
  function shed(ex: Exchange, t0: bigint): void {
    metrics.rejected();
    ex.discard();
    ex.send(503, shedHeaders, shedBody);
    const totalNs = Number(process.hrtime.bigint() - t0);
    if (requestLog.wants(503))
      requestLog.write({ status: 503, ms: totalNs / 1e6, rows: 0, error: shedMessage });
    stats.failure(totalNs);
    metrics.failure();
    metrics.requestSeconds(totalNs / 1e9);
  }

  /** One inference, from either lane (node:http, or the plain lane for plain requests). */
  async function infer(ex: Exchange): Promise<void> {
    const t0 = process.hrtime.bigint();
    if (state === 'ready' && batcher.depth + arriving >= opts.maxQueueSize) return shed(ex, t0);
    let rows = 0;
    let admittedHere = false;
    let arrivingHere = false;
    try {
      try {
        admit();
      } catch (err) {
        // Shed at the door: refused before its body is read or parsed, so overload costs little CPU.
        ex.discard();
        throw err;
      }
      admittedHere = true;
      arriving++;
      arrivingHere = true;
      const read = ex.body(opts.maxBodyBytes);
      const body = decodeBody(
        read instanceof Buffer ? read : await read,
        ex.header('content-encoding'),
        opts.maxBodyBytes,
      );
      const headerLength = headerInt(
        ex.header('inference-header-content-length'),
        'Inference-Header-Content-Length',
      );
      const timeoutUs = headerInt(ex.header(TIMEOUT_HEADER), 'Inference-Timeout-Us');
      const parsed = parseInferRequest(body, headerLength, sig, { maxBatchSize });
      rows = parsed.rows;
      if (timeoutUs !== undefined && parsed.timeoutUs === undefined) parsed.timeoutUs = timeoutUs;
      arriving--;
      arrivingHere = false;
      const done = await execute(parsed);
      const encoded = encodeInferResponse(
        opts.name,
        opts.version,
        parsed.id,
        parsed.outputs.map((o) => ({
          name: o.name,
          tensor: done.byName.get(o.name)!.tensor,
          binary: o.binary,
        })),
      );
      ex.send(
        200,
        encoded.headerLength !== undefined
          ? [
              'content-type',
              'application/octet-stream',
              'inference-header-content-length',
              String(encoded.headerLength),
              'content-length',
              String(encoded.body.length),
            ]
          : ['content-type', 'application/json', 'content-length', String(encoded.body.length)],
        encoded.body,
      );
      succeeded(parsed, done, t0);
    } catch (err) {
      const { status, message } = failed(err, t0, rows);
      if (!ex.headersSent) {
        // After a refused oversized body the connection cannot be reused safely.
        answerJson(
          ex,
          status,
          { error: message },
          status === 400 && !ex.complete ? { connection: 'close' } : {},
        );
      }
    } finally {
      if (arrivingHere) arriving--;
      if (admittedHere) release();
    }
  }

  /** Routes `/v2/models/{m}[/versions/{v}][/action]`; undefined when the path is not one. */
  function modelRoute(parts: string[]): { action: string } | InferenceError | undefined {
    // parts: ['v2', 'models', m, ...rest]
    const name = decodeURIComponent(parts[2]!);
    let rest = parts.slice(3);
    if (name !== opts.name)
      return new InferenceError(404, `unknown model "${name}"; this server serves "${opts.name}"`);
    if (rest[0] === 'versions') {
      if (rest.length < 2) return undefined;
      const version = decodeURIComponent(rest[1]!);
      if (version !== opts.version) {
        return new InferenceError(
          404,
          `unknown version "${version}" of model "${name}"; served: "${opts.version}"`,
        );
      }
      rest = rest.slice(2);
    }
    if (rest.length > 1) return undefined;
    return { action: rest[0] ?? '' };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q >= 0 ? url.slice(0, q) : url;
    const parts = pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    const notFound = (): void => sendError(res, 404, `no such endpoint: ${method} ${pathname}`);
    const only = (m: string): boolean => {
      if (method === m) return true;
      res.setHeader('allow', m);
      sendError(res, 405, `${method} is not allowed on ${pathname}; use ${m}`);
      return false;
    };
    if (method !== 'POST') req.resume();

    if (parts[0] === 'metrics' && parts.length === 1) {
      if (!only('GET')) return;
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (parts[0] !== 'v2') return notFound();
    if (parts.length === 1) return only('GET') ? sendJson(res, 200, httpServerMetadata) : undefined;
    if (parts[1] === 'health' && parts.length === 3) {
      if (!only('GET')) return;
      if (parts[2] === 'live') return sendJson(res, 200, { live: true });
      if (parts[2] === 'ready')
        return sendJson(res, state === 'ready' ? 200 : 503, { ready: state === 'ready' });
      return notFound();
    }
    if (parts[1] !== 'models') return notFound();
    if (parts.length === 3 && parts[2] === 'stats') {
      return only('GET') ? sendJson(res, 200, { model_stats: [stats.snapshot()] }) : undefined;
    }
    if (parts.length < 3) return notFound();
    const route = modelRoute(parts);
    if (route === undefined) return notFound();
    if (route instanceof InferenceError) {
      if (method === 'POST') req.resume();
      return sendError(res, route.status, route.message);
    }
    switch (route.action) {
      case '':
        return only('GET') ? sendJson(res, 200, modelMetadata) : undefined;
      case 'ready':
        if (!only('GET')) return;
        return sendJson(res, state === 'ready' ? 200 : 503, { name: opts.name, ready: state === 'ready' });
      case 'stats':
        return only('GET') ? sendJson(res, 200, { model_stats: [stats.snapshot()] }) : undefined;
      case 'drift':
        if (!only('GET')) return;
        if (!drift)
          return sendError(
            res,
            404,
            `${opts.name} keeps no drift histograms (started without --drift-reference)`,
          );
        return sendJson(res, 200, drift.report());
      case 'infer':
        if (method !== 'POST') {
          req.resume();
          res.setHeader('allow', 'POST');
          return sendError(res, 405, `${method} is not allowed on ${pathname}; use POST`);
        }
        return infer(nodeExchange(req, res, readBody));
      default:
        return notFound();
    }
  }

  // node:http answers everything but plain inference requests, which the plain lane reads off
  // the socket (serving/http/plain-lane.ts): under overload two requests in three are refused,
  // and node:http's streams and header object per request are most of what a refusal costs.
  const fallback = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error('request handler failed', { error: err });
      if (!res.headersSent) sendError(res, 500, `internal error: ${(err as Error).message}`);
      else res.destroy();
    });
  });
  fallback.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy(err);
  });
  const inferTargets = new Set([
    `/v2/models/${encodeURIComponent(opts.name)}/infer`,
    `/v2/models/${encodeURIComponent(opts.name)}/versions/${encodeURIComponent(opts.version)}/infer`,
  ]);
  const lane = plainLane({
    fallback,
    accepts: (method, target) => method === 'POST' && inferTargets.has(target),
    handle: (ex) =>
      void infer(ex).catch((err: unknown) => {
        log.error('request handler failed', { error: err });
        answerJson(ex, 500, { error: `internal error: ${(err as Error).message}` });
      }),
    maxBodyBytes: opts.maxBodyBytes,
    keepAliveTimeoutMs: 65_000,
  });
  const server = lane.server;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await pool.close();
    throw new Error(`cannot listen on ${opts.host}:${opts.port}: ${(err as Error).message}`);
  }
  const port = (server.address() as AddressInfo).port;
  let grpcService: GrpcService | undefined;
  if (opts.grpcPort !== undefined) {
    try {
      grpcService = await startGrpcService(
        {
          name: opts.name,
          version: opts.version,
          signature: sig,
          maxBatchSize,
          ready: () => state === 'ready',
          serverMetadata,
          platform: modelMetadata.platform,
          admit,
          release,
          execute,
          succeeded,
          failed,
          log,
        },
        {
          host: opts.grpcHost ?? opts.host,
          port: opts.grpcPort,
          maxMessageBytes: opts.maxBodyBytes,
          ...(opts.grpcTlsCert !== undefined && opts.grpcTlsKey !== undefined
            ? { tls: { certFile: opts.grpcTlsCert, keyFile: opts.grpcTlsKey } }
            : {}),
        },
      );
    } catch (err) {
      server.close();
      await pool.close();
      throw err;
    }
    httpServerMetadata = { ...serverMetadata, grpc_port: grpcService.port, grpc_tls: grpcService.tls };
  }
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `http://${host}:${port}`;
  const loadSeconds = Number(process.hrtime.bigint() - loadStart) / 1e9;
  metrics.loadSeconds(loadSeconds);
  log.info('model ready', {
    url,
    grpc: grpcService?.address,
    model: opts.model,
    version: opts.version,
    provider: info.provider,
    batched: sig.batched,
    maxBatchSize,
    instances: opts.instances,
    threads,
    spinWait: opts.spinWait,
    loadMs: Math.round(loadSeconds * 1000),
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      state = 'draining';
      log.info('draining', { queued: batcher.depth, running: batcher.inFlight });
      if (admitted > 0) await new Promise<void>((resolve) => admittedDone.push(resolve));
      await batcher.drain();
      // Responses to the drained work are written synchronously after their batch resolves;
      // server.close waits for active requests, then closes idle keep-alive connections.
      const grpcClosed = grpcService?.close();
      // Idle connections close at once, busy ones after their answer; the rest are cut at 5 s.
      await lane.close(5_000);
      await grpcClosed;
      await pool.close();
      state = 'closed';
      log.info('stopped');
    })();
    return closing;
  };

  return {
    url,
    port,
    signature: sig,
    provider: info.provider,
    metrics,
    ...(grpcService
      ? { grpc: { address: grpcService.address, port: grpcService.port, tls: grpcService.tls } }
      : {}),
    close,
  };
}
