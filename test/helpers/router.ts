/**
 * Routers for tests: in process (`startTestRouter`, port 0) or as a real `runway router` child
 * process (`spawnRouterProcess`, needs a build). Plus a small OIP stub model server for the pure
 * routing-mechanics tests, whose answers and delays a test controls. Everything started here is
 * registered for cleanup; call `closeAll()` from afterAll (idempotent, safe after failures).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import readline from 'node:readline';
import { request } from 'undici';
import { runwayBin } from '../../common/paths';
import type { Route } from '../../serving/router/route';
import { startRouter, type RouterOptions, type RunningRouter } from '../../serving/router/server';

const cleanups: (() => Promise<void>)[] = [];

export async function closeAll(): Promise<void> {
  const all = cleanups.splice(0).reverse();
  await Promise.allSettled(all.map((c) => c()));
}

/** Quiet logger unless RUNWAY_LOG_LEVEL asks otherwise. */
const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

export async function startTestRouter(options: RouterOptions = {}): Promise<RunningRouter> {
  const logger = process.env.RUNWAY_LOG_LEVEL ? undefined : quiet;
  const router = await startRouter({ host: '127.0.0.1', port: 0, ...(logger ? { logger } : {}), ...options });
  cleanups.push(() => router.close());
  return router;
}

export interface RouterProcess {
  url: string;
  /** `host:port` of the gRPC front door, when started with --grpc-port. */
  grpc?: string;
  child: ChildProcess;
  stderr: () => string;
  /** SIGTERM and wait for exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

/** Runs `runway router --port 0 <args>` from the compiled CLI and waits for its URL line. */
export async function spawnRouterProcess(
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<RouterProcess> {
  const child = spawn(process.execPath, [runwayBin, 'router', '--port', '0', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  cleanups.push(stop);
  const started = await new Promise<{ url: string; grpc?: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`router did not start in 20 s: ${stderr}`)), 20_000);
    readline.createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line) as { url: string; grpc?: string });
      } catch {
        reject(new Error(`unexpected router output: ${line}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`router exited with ${code}: ${stderr}`));
    });
  });
  return { ...started, child, stderr: () => stderr, stop };
}

export async function putRoute(
  baseUrl: string,
  model: string,
  route: unknown,
  token?: string,
): Promise<{ status: number; body: unknown }> {
  const res = await request(`${baseUrl}/admin/routes/${encodeURIComponent(model)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof route === 'string' ? route : JSON.stringify(route),
  });
  return { status: res.statusCode, body: await res.body.json() };
}

export async function getRoute(baseUrl: string, model: string, token?: string): Promise<Route | undefined> {
  const res = await request(`${baseUrl}/admin/routes/${encodeURIComponent(model)}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  const body = await res.body.json();
  return res.statusCode === 200 ? (body as Route) : undefined;
}

// ---- stub model server ------------------------------------------------------------------------

export interface StubBehaviour {
  /** Delay before answering, ms. */
  delayMs?: number;
  /** Answer this status with an {"error"} body instead of an inference result. */
  status?: number;
  /** The single FP32 output value (default 0.5). */
  score?: number;
  /** Close the socket without answering. */
  hangUp?: boolean;
}

export interface StubServer {
  url: string;
  /** Infer requests received (including ones answered with errors). */
  received: number;
  /** Request ids received in order (from `x-request-id` or the JSON body). */
  ids: string[];
  /** Headers of the last request. */
  lastHeaders?: http.IncomingHttpHeaders;
  behaviour: StubBehaviour;
  close(): Promise<void>;
}

/**
 * An OIP v2 look-alike: POST /v2/models/{m}/infer answers one FP32 output `score`. A body that
 * uses the binary tensor extension is echoed back byte for byte with its header, so tests can
 * check pass-through exactness.
 */
export async function startStubModelServer(behaviour: StubBehaviour = {}): Promise<StubServer> {
  const stub: StubServer = { url: '', received: 0, ids: [], behaviour, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const b = stub.behaviour;
      if (req.url?.startsWith('/v2/health')) {
        res.writeHead(200).end();
        return;
      }
      stub.received++;
      stub.lastHeaders = req.headers;
      const hl = req.headers['inference-header-content-length'];
      let id = typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : undefined;
      if (id === undefined && hl === undefined && body.length > 0) {
        try {
          id = (JSON.parse(body.toString()) as { id?: string }).id;
        } catch {
          /* not JSON: fine for a stub */
        }
      }
      if (id !== undefined) stub.ids.push(id);
      const answer = (): void => {
        if (b.hangUp) {
          req.socket.destroy();
          return;
        }
        if (b.status && b.status >= 400) {
          res
            .writeHead(b.status, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: 'stub failure' }));
          return;
        }
        if (typeof hl === 'string') {
          res.writeHead(200, {
            'content-type': 'application/octet-stream',
            'inference-header-content-length': hl,
          });
          res.end(body);
          return;
        }
        const model = decodeURIComponent(req.url?.split('/')[3] ?? '');
        const out = {
          model_name: model,
          ...(id !== undefined ? { id } : {}),
          outputs: [{ name: 'score', datatype: 'FP32', shape: [1, 1], data: [b.score ?? 0.5] }],
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
      };
      if (b.delayMs) setTimeout(answer, b.delayMs);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stub.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  cleanups.push(stub.close);
  return stub;
}

/** A JSON OIP infer request body for the demo models' input (8 features per row). */
export function inferBody(id?: string, rows = 1): string {
  const data = Array.from({ length: rows * 8 }, (_, i) => ((i * 37) % 100) / 100);
  return JSON.stringify({
    ...(id !== undefined ? { id } : {}),
    inputs: [{ name: 'features', datatype: 'FP32', shape: [rows, 8], data }],
  });
}
