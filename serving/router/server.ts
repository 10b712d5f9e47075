/**
 * The runway router: the front door of a model's variants. It splits Open Inference Protocol
 * traffic by weight (or sticky unit), mirrors a share to a shadow, remembers who served what for
 * feedback, and counts everything per variant for the analysis. Routes change through the admin
 * API; each change replaces one immutable object, so no request ever sees half a route.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, type Logger } from '../../common/log';
import { type ActiveRoute, type ActiveVariant, failoverTarget, previewTarget } from './active';
import { errorReason, failingStatus } from './failures';
import { cumulative, stickyPoint, variantAt } from './assign';
import { AssignmentMemory } from './assignments';
import { compareOutputs, type Answer } from './compare';
import { feedbackDesk } from './feedback';
import {
  defaultEjection,
  type EjectionPolicy,
  Endpoint,
  EndpointRegistry,
  normalize,
  pickEndpoint,
  saturatedMessage,
} from './endpoints';
import {
  answerJson,
  type Exchange,
  HttpError,
  nodeExchange,
  parseJson,
  readBody,
  responseHeaders,
  scanHeaders,
  sendJson,
} from './http';
import { plainLane } from '../http/plain-lane';
import { codeClass, RouterMetrics } from './metrics';
import type { Route } from './route';
import { DEFAULT_STICKY_HEADER, isValidModelName, parseRoute, RouteValidationError } from './schema';
import { loadRoutes, saveRoutes } from './store';
import { startGrpcFrontDoor, type GrpcFrontDoor } from './grpc';
import { AccessGate, presentedKey } from './access';

export const VARIANT_HEADER = 'x-runway-variant';
export const SHADOW_HEADER = 'x-runway-shadow';

export interface RouterOptions {
  host?: string;
  /** 0 picks a free port. Default 8080. */
  port?: number;
  /** Bearer token for /admin; required when `host` is not loopback. Never logged. */
  adminToken?: string;
  /** Routes load from here at start and are rewritten on every change. */
  routesFile?: string;
  /**
   * Port of the OIP gRPC front door (0 picks a free one; unset: HTTP only). It reaches each
   * replica's gRPC service at the `grpc_port` the replica names in its `GET /v2`.
   */
  grpcPort?: number;
  /** Upstream header and body timeouts in ms (default 30 000). Exceeded → 504. */
  upstreamTimeoutMs?: number;
  /** Shadow copies in flight at most (default 64); excess copies are dropped and counted. */
  mirrorConcurrency?: number;
  /** Numeric tolerance when comparing shadow and primary outputs (default 1e-4, abs or rel). */
  shadowTolerance?: number;
  /** Largest request body accepted (default 64 MiB). */
  maxBodyBytes?: number;
  /**
   * API keys file (api-keys.ts): when set, every `/v2/models/...` request and model-scoped gRPC
   * call needs a key from it, within its models and rate limits. Reread when it changes.
   */
  apiKeysFile?: string;
  ejection?: Partial<EjectionPolicy>;
  /**
   * Requests in flight to one replica at most (default 256, also its connection pool's size).
   * Beyond it the router answers 503 at once instead of queueing in front of the replica's queue.
   */
  maxInFlightPerReplica?: number;
  /**
   * Memory of recent assignments for feedback (default 200 000 keys, 1 h): feedback is accepted
   * within `ttlMs` of the request, and a unit earns one reward per `ttlMs` window (assignments.ts).
   */
  feedback?: { capacity?: number; ttlMs?: number };
  logger?: Logger;
}

export interface RunningRouter {
  /** Base URL of the front door, e.g. http://127.0.0.1:8080 */
  url: string;
  /** Base URL of the admin API (`${url}/admin`); routes live under `${adminUrl}/routes`. */
  adminUrl: string;
  /** `host:port` of the gRPC front door, when `grpcPort` is set. */
  grpcAddress?: string;
  /** The metrics registry (tests read it directly). */
  metrics: RouterMetrics;
  /**
   * Replaces the whole route table at once (routes watched from a ConfigMap). The routes must be
   * validated already (parseRoute); unchanged Route objects keep their compiled state.
   */
  replaceRoutes(next: ReadonlyMap<string, Route>): Promise<void>;
  /** Rereads the API keys file (SIGHUP); false when it was refused. Undefined without one. */
  reloadApiKeys?(): Promise<boolean>;
  close(): Promise<void>;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

const SMALL_BODY = 256 * 1024;
const QUICK_ID = /^\s*\{\s*"id"\s*:\s*"((?:[^"\\]|\\.){1,256})"/;
const MAX_ID_PARSE_BYTES = 1 << 20;

/** The OIP request id: the `x-request-id` header, else the body's top-level `id`. */
function requestIdOf(h: string | undefined, hl: string | undefined, body: Buffer): string | undefined {
  if (h !== undefined && h !== '') return h;
  if (body.length === 0) return undefined;
  const jsonEnd = typeof hl === 'string' ? Number(hl) : body.length;
  if (!Number.isInteger(jsonEnd) || jsonEnd <= 0 || jsonEnd > body.length) return undefined;
  const head = body.toString('utf8', 0, Math.min(jsonEnd, 512));
  const quick = QUICK_ID.exec(head);
  if (quick) {
    try {
      return JSON.parse(`"${quick[1]}"`) as string;
    } catch {
      return undefined;
    }
  }
  if (jsonEnd > MAX_ID_PARSE_BYTES || body.indexOf('"id"') < 0) return undefined;
  try {
    const doc = JSON.parse(body.toString('utf8', 0, jsonEnd)) as { id?: unknown };
    return typeof doc?.id === 'string' && doc.id !== '' ? doc.id : undefined;
  } catch {
    return undefined;
  }
}

function tokenMatches(expected: string, header: string | undefined): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  // Hash both sides so the comparison is constant-time regardless of length.
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(header.slice(7).trim()).digest();
  return timingSafeEqual(a, b);
}

export async function startRouter(options: RouterOptions = {}): Promise<RunningRouter> {
  const host = options.host ?? '127.0.0.1';
  const token = options.adminToken?.trim() || undefined;
  if (!isLoopback(host) && !token) {
    throw new Error(
      `refusing to listen on non-loopback host ${host} without an admin token (--admin-token-file or RUNWAY_ROUTER_TOKEN)`,
    );
  }
  const log = options.logger ?? createLogger('router');
  const timeoutMs = options.upstreamTimeoutMs ?? 30_000;
  const mirrorConcurrency = options.mirrorConcurrency ?? 64;
  const tolerance = options.shadowTolerance ?? 1e-4;
  const maxBody = options.maxBodyBytes ?? 64 * 1024 * 1024;
  const metrics = new RouterMetrics();
  const endpoints = new EndpointRegistry(
    { ...defaultEjection, ...options.ejection },
    Date.now,
    options.maxInFlightPerReplica,
  );
  const memory = new AssignmentMemory(options.feedback?.capacity, options.feedback?.ttlMs);

  // The published routes: replaced entry by entry, never mutated in place.
  let routes = new Map<string, Route>();
  const table = new Map<string, ActiveRoute>();
  let mirrorInFlight = 0;
  let changeQueue: Promise<unknown> = Promise.resolve();

  function compile(model: string, route: Route): ActiveRoute {
    const variants = new Map<string, ActiveVariant>();
    for (const v of route.variants) {
      metrics.initVariant(model, v.name);
      variants.set(v.name, {
        name: v.name,
        instruments: metrics.instruments(model, v.name),
        endpoints: v.endpoints.map((u) => endpoints.get(u)),
        next: 0,
      });
    }
    const active: ActiveRoute = {
      route,
      boundaries: cumulative(route),
      variants,
      stickyHeader: (route.sticky?.header ?? DEFAULT_STICKY_HEADER).toLowerCase(),
    };
    if (route.preview) {
      active.preview = {
        variant: variants.get(route.preview.variant)!,
        header: route.preview.header.toLowerCase(),
        ...(route.preview.value !== undefined ? { value: route.preview.value } : {}),
      };
    }
    if (route.mirror && route.mirror.percent > 0) {
      active.mirror = {
        variant: variants.get(route.mirror.variant)!,
        percent: route.mirror.percent,
        tolerance: route.mirror.tolerance,
        threshold: route.mirror.threshold,
      };
      metrics.initShadow(model, route.mirror.variant);
    }
    return active;
  }

  function publish(next: Map<string, Route>): void {
    for (const [model, route] of next)
      if (routes.get(model) !== route) table.set(model, compile(model, route));
    for (const model of table.keys()) if (!next.has(model)) table.delete(model);
    routes = next;
    const inUse = new Set<string>();
    for (const r of next.values())
      for (const v of r.variants) for (const u of v.endpoints) inUse.add(normalize(u));
    endpoints.retainOnly(inUse);
  }

  /** Applies one change: persisted first, then published, so a failed write changes nothing. */
  function change(mutate: (current: Map<string, Route>) => Map<string, Route>): Promise<void> {
    const run = changeQueue.then(async () => {
      const next = mutate(new Map(routes));
      if (options.routesFile) await saveRoutes(options.routesFile, next);
      publish(next);
    });
    changeQueue = run.catch(() => undefined);
    return run;
  }

  // A bad keys file stops the start: a router meant to be locked must never come up open.
  const gate = options.apiKeysFile
    ? await AccessGate.open({ file: options.apiKeysFile, metrics, log: log.child('access') })
    : undefined;
  gate?.watch();

  if (options.routesFile) {
    const loaded = await loadRoutes(options.routesFile);
    publish(loaded);
    log.info('routes loaded', { file: options.routesFile, models: loaded.size });
  }

  // ---- front door -------------------------------------------------------------------------

  async function proxy(ex: Exchange, model: string, path: string): Promise<void> {
    const active = table.get(model);
    if (gate) {
      const verdict = gate.admit(
        presentedKey(ex.header('authorization'), ex.header('x-api-key')),
        model,
        !!active,
      );
      if (!verdict.ok) {
        // Refused before the body is read: a refusal costs the router as little as it can.
        ex.discard();
        answerJson(
          ex,
          verdict.status,
          { error: verdict.message },
          verdict.status === 401
            ? { 'www-authenticate': 'Bearer realm="runway"' }
            : verdict.retryAfterS !== undefined
              ? { 'retry-after': String(verdict.retryAfterS) }
              : {},
        );
        return;
      }
    }
    if (!active) {
      ex.discard();
      answerJson(ex, 404, { error: `no route for model "${model}"` });
      return;
    }
    const started = performance.now();
    // The client's key is for this door only: replicas (and their logs) never see it.
    const scanned = scanHeaders(ex.rawHeaders, active.stickyHeader, active.preview?.header, !!gate);
    const read = ex.body(maxBody, scanned.contentLength);
    const body = read instanceof Buffer ? read : await read;

    const unit = scanned.unit;
    const unitValue = unit !== undefined && unit !== '' ? unit : undefined;
    const preview = active.preview ? previewTarget(active, scanned.preview) : undefined;
    const point = unitValue !== undefined ? stickyPoint(unitValue) : Math.random() * 100;
    let variant = preview ?? active.variants.get(variantAt(active.boundaries, point)!)!;
    let variantName = variant.name;
    let labels = { model, variant: variantName };

    const finish = (status: number): void => {
      variant.instruments.requests[codeClass(status)].inc();
      variant.instruments.duration.observe((performance.now() - started) / 1000);
    };

    const method = ex.method;
    // Only inference is mirrored: metadata and readiness answers say nothing about the shadow's quality.
    const isInfer = method === 'POST' && (path.endsWith('/infer') || path.includes('/infer?'));
    // A preview request already goes to the candidate: copying it there too would count it twice.
    const mirrorTo =
      isInfer && !preview && active.mirror && Math.random() * 100 < active.mirror.percent
        ? active.mirror
        : undefined;
    const headers = scanned.forward;
    // Inference is a pure function of its inputs, so an attempt that produced no answer (the
    // replica was gone, or died mid-request) may be sent again without changing any result.
    const retrySafe = isInfer || method === 'GET' || method === 'HEAD';
    let tried: Set<Endpoint> | undefined; // only a failed attempt allocates it: the hot path stays bare
    let endpoint = pickEndpoint(variant.endpoints, variant.next++);
    let upstream: Awaited<ReturnType<Endpoint['pool']['request']>> | undefined;
    while (!upstream) {
      let failure: { reason: string; status: number; message: string };
      if (!endpoint) {
        failure = {
          reason: 'no_endpoint',
          status: 503,
          message: `variant "${variantName}" of model "${model}" has no healthy endpoint`,
        };
      } else if (endpoint.full()) {
        // The least loaded replica is full: refuse now, like the replica's own full queue would.
        // Not a failure of the replica (no ejection) and not retried elsewhere (no overload spill).
        metrics.upstreamErrors.inc({ ...labels, reason: 'saturated' });
        finish(503);
        answerJson(
          ex,
          503,
          { error: saturatedMessage(variantName, model, endpoint.maxInFlight) },
          { [VARIANT_HEADER]: variantName },
        );
        return;
      } else {
        endpoint.outstanding++;
        try {
          upstream = await endpoint.pool.request({
            path,
            method,
            rawHeaders: headers,
            body: body.length > 0 ? body : null,
            headersTimeout: timeoutMs,
            bodyTimeout: timeoutMs,
          });
          break;
        } catch (err) {
          endpoint.outstanding--;
          endpoint.failed();
          (tried ??= new Set()).add(endpoint);
          const { reason, status } = errorReason(err);
          log.debug('upstream failed', { model, variant: variantName, endpoint: endpoint.url, reason, err });
          failure = {
            reason,
            status,
            message:
              status === 504
                ? `variant "${variantName}" of model "${model}" did not answer within ${timeoutMs} ms`
                : `variant "${variantName}" of model "${model}" failed: ${reason} (${(err as Error).message})`,
          };
        }
      }
      metrics.upstreamErrors.inc({ ...labels, reason: failure.reason });
      // The failed attempt counts against its variant (the SLO guard must see a dead candidate),
      // whether or not another replica or variant then answers the client.
      finish(failure.status);
      const next =
        retrySafe && failure.reason !== 'timeout' && failure.reason !== 'other' && (tried?.size ?? 0) < 3
          ? failoverTarget(active, variant, tried ?? new Set())
          : undefined;
      if (!next) {
        answerJson(ex, failure.status, { error: failure.message }, { [VARIANT_HEADER]: variantName });
        return;
      }
      metrics.failovers.inc({ model, from: variantName, to: next.variant.name, reason: failure.reason });
      variant = next.variant;
      variantName = variant.name;
      labels = { model, variant: variantName };
      endpoint = next.endpoint;
    }
    memory.served(
      model,
      requestIdOf(scanned.requestId, scanned.inferenceHeaderLength, body),
      unitValue,
      variantName,
    );
    if (!endpoint) throw new Error('unreachable: an answer without an endpoint');

    const status = upstream.statusCode;
    if (failingStatus(status)) endpoint.failed();
    else endpoint.succeeded();
    let released = false;
    const release = (): void => {
      if (!released) endpoint.outstanding--;
      released = true;
    };
    // A whole answer in one write, its exact length known (no chunked framing); HEAD has no body.
    const sendWhole = (answer: Buffer): void => {
      ex.send(
        status,
        method === 'HEAD'
          ? responseHeaders(upstream.headers, true, VARIANT_HEADER, variantName)
          : responseHeaders(
              upstream.headers,
              false,
              'content-length',
              String(answer.length),
              VARIANT_HEADER,
              variantName,
            ),
        answer,
      );
    };
    try {
      if (mirrorTo) {
        // Buffered: the shadow's answer is compared with exactly these bytes.
        const answer = await upstream.body.buffer();
        release();
        sendWhole(answer);
        finish(status);
        const hl = upstream.headers['inference-header-content-length'];
        sendShadow(
          model,
          mirrorTo.variant,
          method,
          path,
          headers,
          body,
          { status, headerLength: typeof hl === 'string' ? Number(hl) : undefined, body: answer },
          mirrorTo.tolerance ?? tolerance,
          mirrorTo.threshold,
        );
        return;
      }
      const length = Number(upstream.headers['content-length']);
      if (length >= 0 && length <= SMALL_BODY) {
        // Small answers (the usual inference result): one buffer, one write; cheaper than a stream
        // pipeline. Its exact length is known, so the answer goes out without chunked framing.
        sendWhole(upstream.body.whole() ?? (await upstream.body.buffer()));
      } else {
        await ex.stream(
          status,
          responseHeaders(upstream.headers, true, VARIANT_HEADER, variantName),
          upstream.body.stream(),
        );
      }
      release();
      finish(status);
    } catch (err) {
      release();
      upstream.body.destroy();
      const { reason, status: errStatus } = errorReason(err);
      if (!ex.headersSent) {
        metrics.upstreamErrors.inc({ ...labels, reason });
        answerJson(ex, errStatus, {
          error: `variant "${variantName}" of model "${model}" failed mid-answer: ${reason}`,
        });
        finish(errStatus);
      } else {
        // Headers are gone: the only honest signal left is a cut connection.
        const clientGone = ex.aborted;
        ex.destroy();
        if (!clientGone) metrics.upstreamErrors.inc({ ...labels, reason });
        finish(status);
      }
    }
  }

  function sendShadow(
    model: string,
    shadow: ActiveVariant,
    method: string,
    path: string,
    headers: string,
    body: Buffer,
    primary: Answer,
    routeTolerance: number,
    threshold: number | undefined,
  ): void {
    const labels = { model, variant: shadow.name };
    if (mirrorInFlight >= mirrorConcurrency) {
      metrics.mirrorDropped.inc(labels);
      return;
    }
    metrics.mirrored.inc(labels);
    const endpoint = pickEndpoint(shadow.endpoints, shadow.next++);
    if (!endpoint) {
      metrics.upstreamErrors.inc({ ...labels, reason: 'no_endpoint' });
      metrics.shadowComparisons.inc({ ...labels, result: 'error' });
      return;
    }
    mirrorInFlight++;
    endpoint.outstanding++;
    const started = performance.now();
    endpoint.pool
      .request({
        path,
        method,
        rawHeaders: `${headers}${SHADOW_HEADER}: 1\r\n`,
        body: body.length > 0 ? body : null,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      })
      .then(async (r) => {
        const answer = await r.body.buffer();
        metrics.shadowDuration.observe(labels, (performance.now() - started) / 1000);
        if (failingStatus(r.statusCode)) endpoint.failed();
        else endpoint.succeeded();
        const hl = r.headers['inference-header-content-length'];
        metrics.countShadow(
          labels,
          compareOutputs(
            primary,
            {
              status: r.statusCode,
              headerLength: typeof hl === 'string' ? Number(hl) : undefined,
              body: answer,
            },
            routeTolerance,
            threshold,
          ),
        );
      })
      .catch((err: unknown) => {
        endpoint.failed();
        metrics.shadowDuration.observe(labels, (performance.now() - started) / 1000);
        metrics.upstreamErrors.inc({ ...labels, reason: errorReason(err).reason });
        metrics.shadowComparisons.inc({ ...labels, result: 'error' });
      })
      .finally(() => {
        mirrorInFlight--;
        endpoint.outstanding--;
      });
  }

  // ---- feedback ------------------------------------------------------------------------------

  const desk = feedbackDesk((model) => routes.get(model), memory, metrics);

  async function feedback(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let doc: unknown;
    try {
      doc = parseJson(await readBody(req, 64 * 1024));
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      const answer = desk.malformed(err.message);
      sendJson(res, err.status, answer.body);
      return;
    }
    const answer = desk.receive(doc, req.headers);
    sendJson(res, answer.status, answer.body);
  }

  // ---- admin -----------------------------------------------------------------------------------

  async function admin(req: http.IncomingMessage, res: http.ServerResponse, rest: string): Promise<void> {
    if (token && !tokenMatches(token, req.headers.authorization)) {
      req.resume();
      throw new HttpError(
        401,
        'admin API needs "Authorization: Bearer <token>" with the router\'s admin token',
      );
    }
    if (rest === '/routes' || rest === '/routes/') {
      if (req.method !== 'GET')
        throw new HttpError(405, 'use GET /admin/routes or PUT/GET/DELETE /admin/routes/{model}');
      sendJson(res, 200, { routes: Object.fromEntries(routes) });
      return;
    }
    if (!rest.startsWith('/routes/')) throw new HttpError(404, `no admin resource ${rest}`);
    let model: string;
    try {
      model = decodeURIComponent(rest.slice('/routes/'.length));
    } catch {
      throw new HttpError(400, 'model name in the path is not valid percent-encoding');
    }
    if (!isValidModelName(model)) {
      throw new HttpError(400, `model name "${model}" is invalid: expected letters, digits, ".", "_" or "-"`);
    }
    switch (req.method) {
      case 'GET': {
        const route = routes.get(model);
        if (!route) throw new HttpError(404, `no route for model "${model}"`);
        sendJson(res, 200, route);
        return;
      }
      case 'PUT': {
        let route: Route;
        try {
          route = parseRoute(parseJson(await readBody(req, 1024 * 1024)));
        } catch (err) {
          if (err instanceof RouteValidationError)
            throw new HttpError(400, err.message, { issues: err.issues });
          throw err;
        }
        await change((m) => m.set(model, route));
        log.info('route set', {
          model,
          weights: route.variants.map((v) => `${v.name}=${v.weight}`).join(','),
          mirror: route.mirror ? `${route.mirror.variant}:${route.mirror.percent}%` : undefined,
        });
        sendJson(res, 200, route);
        return;
      }
      case 'DELETE': {
        req.resume();
        const existed = routes.has(model);
        if (existed) await change((m) => (m.delete(model), m));
        if (existed) log.info('route deleted', { model });
        sendJson(res, 200, { model, deleted: existed });
        return;
      }
      default:
        req.resume();
        throw new HttpError(405, `method ${req.method} not allowed on /admin/routes/{model}`);
    }
  }

  // ---- dispatch ----------------------------------------------------------------------------

  /** `/v2/models/{model}/...`: the model's variants answer, by either lane. */
  // Not async: proxy's promise is the answer's, without a second one wrapped around it.
  function inference(ex: Exchange): Promise<void> {
    const raw = ex.url;
    const q = raw.indexOf('?');
    const pathname = q < 0 ? raw : raw.slice(0, q);
    const end = pathname.indexOf('/', 11);
    const segment = end < 0 ? pathname.slice(11) : pathname.slice(11, end);
    let model = segment;
    try {
      if (segment.includes('%')) model = decodeURIComponent(segment);
    } catch {
      ex.discard();
      return Promise.reject(new HttpError(400, 'model name in the path is not valid percent-encoding'));
    }
    if (model === '') return Promise.reject(new HttpError(400, 'no model name in the path'));
    return proxy(ex, model, raw);
  }

  function failed(ex: Exchange, err: unknown): void {
    if (err instanceof HttpError) {
      answerJson(ex, err.status, { error: err.message, ...err.extra });
      return;
    }
    log.error('request failed', { path: ex.url, err });
    answerJson(ex, 500, { error: `router error: ${(err as Error)?.message ?? String(err)}` });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const pathname = q < 0 ? raw : raw.slice(0, q);
    if (pathname.startsWith('/v2/models/')) {
      await inference(nodeExchange(req, res));
      return;
    }
    if (pathname === '/v2/health/live' || pathname === '/v2/health/ready') {
      req.resume();
      res.writeHead(200, { 'content-length': 0 });
      res.end();
      return;
    }
    if (pathname === '/v2') {
      req.resume();
      sendJson(res, 200, { name: 'runway-router', version: '0.1.0', extensions: ['binary_tensor_data'] });
      return;
    }
    if (pathname === '/metrics' && req.method === 'GET') {
      req.resume();
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      res.end(text);
      return;
    }
    if (pathname === '/v1/feedback') {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST /v1/feedback');
      await feedback(req, res);
      return;
    }
    if (pathname.startsWith('/admin/')) {
      await admin(req, res, pathname.slice('/admin'.length));
      return;
    }
    req.resume();
    throw new HttpError(404, `no such path ${pathname}`);
  }

  // node:http answers everything the plain lane hands it: admin, feedback, metrics, and any
  // request the lane will not frame itself (serving/http/plain-lane.ts). It never listens on its own.
  const fallback = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    handle(req, res).catch((err: unknown) => failed(nodeExchange(req, res), err));
  });
  fallback.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  const lane = plainLane({
    fallback,
    accepts: (_method, target) => target.startsWith('/v2/models/'),
    handle: (ex) => void inference(ex).catch((err: unknown) => failed(ex, err)),
    maxBodyBytes: maxBody,
    keepAliveTimeoutMs: 65_000,
  });
  const server = lane.server;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let grpcDoor: GrpcFrontDoor | undefined;
  if (options.grpcPort !== undefined) {
    try {
      grpcDoor = await startGrpcFrontDoor({
        host,
        port: options.grpcPort,
        maxMessageBytes: maxBody,
        timeoutMs,
        tolerance,
        table,
        metrics,
        memory,
        ...(gate ? { gate } : {}),
        takeMirrorSlot: () => (mirrorInFlight < mirrorConcurrency ? (mirrorInFlight++, true) : false),
        releaseMirrorSlot: () => void mirrorInFlight--,
        log: log.child('grpc'),
      });
    } catch (err) {
      server.close();
      gate?.close();
      await endpoints.close();
      throw err;
    }
  }
  const url = `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  log.info('router listening', {
    url,
    grpc: grpcDoor?.address,
    admin: token ? 'token' : 'open (loopback)',
    apiKeys: gate ? options.apiKeysFile : 'off',
    routesFile: options.routesFile,
  });

  let closing: Promise<void> | undefined;
  return {
    url,
    adminUrl: `${url}/admin`,
    ...(grpcDoor ? { grpcAddress: grpcDoor.address } : {}),
    metrics,
    replaceRoutes: (next) => change(() => new Map(next)),
    ...(gate ? { reloadApiKeys: () => gate.reload('SIGHUP') } : {}),
    close(): Promise<void> {
      closing ??= (async () => {
        gate?.close();
        const grpcClosed = grpcDoor?.close();
        await lane.close(2_000);
        await grpcClosed;
        await changeQueue;
        await endpoints.close();
      })();
      return closing;
    },
  };
}
