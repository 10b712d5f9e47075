/**
 * The embedded local platform behind `runway up` and `runway demo`: the Temporal dev server (with
 * its UI), the router as a child process (so activity work never stalls traffic), and a worker
 * whose activities drive the local fleet, the file registry, the router and its metrics.
 *
 * Everything keeps its state under one directory (RUNWAY_HOME, default .runway/): the Temporal
 * database, registry, fleet state, routes and the router's admin token. A second `runway up` or
 * `runway demo` reuses what is running instead of starting twins.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createActivities, type ActivityDeps } from '../activities';
import { createWorkerMetrics } from '../activities/metrics';
import { createNotifier } from '../notifications/notifier';
import { servingOptions } from '../activities/fleet';
import type { ModelSpec } from '../specs/schema';
import { createLogger, type Logger } from '../common/log';
import { runwayBin, stateDir } from '../common/paths';
import { freePort, portFree } from '../common/ports';
import { pidAlive } from '../common/process';
import { createRegistry } from '../registry/factory';
import { createFleet } from '../serving/fleet/factory';
import { createMetricsSource } from '../serving/metrics/factory';
import { createTrafficRouter } from '../serving/traffic/factory';
import { loadPlatformConfig, type PlatformConfig } from './config';
import { keyringSource } from './keyring';
import { ensureTemporal, type TemporalEndpoint } from './temporal-server';
import { reconcileRoutes, type ReconcileResult } from './reconcile';
import { createRunwayWorker } from './worker';
import { serveWorkerMetrics, type MetricsEndpoint } from './metrics-endpoint';
import { loadRoutes, saveRoutes } from '../serving/router/store';
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';

export interface PlatformOptions {
  config?: PlatformConfig;
  /** Router port for a router this call starts (default 8080 when free). */
  routerPort?: number;
  logger?: Logger;
  /** Run a worker in this process (default true). */
  worker?: boolean;
}

/** What `runway up` found at start: replicas it brought back, variants it could not. */
export type RouteCheck = Pick<ReconcileResult, 'restarted' | 'unserved'>;

export interface RouterEndpoint {
  url: string;
  token: string;
  pid?: number;
  /** `started`: a child of this process; `reused`: one was running; `external`: configured. */
  mode: 'started' | 'reused' | 'external';
  stop(): Promise<void>;
}

export interface Platform {
  config: PlatformConfig;
  temporal: TemporalEndpoint;
  router: RouterEndpoint;
  deps: ActivityDeps;
  routes: RouteCheck;
  /** The worker's GET /metrics, when `worker.metricsListen` is set. */
  workerMetrics?: MetricsEndpoint;
  /** Resolves when the worker stops (after stop(), or on a fatal worker error). */
  workerDone: Promise<void>;
  stop(): Promise<void>;
}

interface RouterState {
  pid: number;
  url: string;
  /** The API keys file it was started with (router.apiKeysFile), absent when open. */
  apiKeysFile?: string;
}

function routerDir(): string {
  return path.join(stateDir(), 'router');
}

/** The router's admin token: generated once, kept 0600 in the state directory, never printed. */
export function routerToken(): string {
  const file = path.join(routerDir(), 'token');
  fs.mkdirSync(routerDir(), { recursive: true, mode: 0o700 });
  if ((fs.statSync(routerDir()).mode & 0o077) !== 0) fs.chmodSync(routerDir(), 0o700);
  if (!fs.existsSync(file)) {
    // `wx`: two processes starting at once must not both write a token (the loser reads the winner's).
    try {
      fs.writeFileSync(file, crypto.randomBytes(24).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  // A token file copied in or restored with wider permissions is tightened, not trusted as is.
  if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  return fs.readFileSync(file, 'utf8').trim();
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/v2/health/live`, { signal: AbortSignal.timeout(2000) });
    return res.status < 500;
  } catch {
    return false;
  }
}

/** The embedded router's URL while one runs for this state directory (the CLI's live views). */
export function runningRouterUrl(): string | undefined {
  try {
    const state = JSON.parse(fs.readFileSync(path.join(routerDir(), 'router.json'), 'utf8')) as RouterState;
    return pidAlive(state.pid) ? state.url : undefined;
  } catch {
    return undefined; // not started here, or stopped
  }
}

/** The port the embedded router last listened on, so links printed before stay true. */
function savedRouterPort(): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(routerDir(), 'port'), 'utf8');
  } catch {
    return undefined; // never started here
  }
  const n = Number(text.trim());
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

/**
 * The embedded router: reuse the one recorded in the state directory, else start a child.
 * `beforeStart(url)` runs just before a new router starts at `url`, while nothing takes traffic.
 */
export async function ensureRouter(
  config: PlatformConfig,
  port?: number,
  log = createLogger('platform'),
  beforeStart?: (url: string) => Promise<void>,
): Promise<RouterEndpoint> {
  if (config.router.adminUrl) {
    return {
      url: config.router.adminUrl,
      token: config.router.token ?? '',
      mode: 'external',
      stop: async () => {},
    };
  }
  const token = routerToken();
  const stateFile = path.join(routerDir(), 'router.json');
  if (fs.existsSync(stateFile)) {
    const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as RouterState;
    if (pidAlive(state.pid) && (await answers(state.url))) {
      // Reusing a router that checks other keys (or none) would leave the door open unannounced.
      if ((state.apiKeysFile ?? '') !== (config.router.apiKeysFile ?? ''))
        throw new Error(
          `the running router (pid ${state.pid}, ${state.url}) was started with ${state.apiKeysFile ? `API keys file ${state.apiKeysFile}` : 'no API keys'}, ` +
            `but router.apiKeysFile is ${config.router.apiKeysFile ?? 'unset'}: stop it (kill ${state.pid}) and start again`,
        );
      log.info('reusing the running router', { url: state.url, pid: state.pid });
      return { url: state.url, token, pid: state.pid, mode: 'reused', stop: async () => {} };
    }
  }
  // The port it had last time, else 8080, else any: what `runway up` and the demo printed stays true.
  let chosen = port;
  for (const preferred of [savedRouterPort(), 8080]) {
    if (chosen === undefined && preferred !== undefined && (await portFree(preferred))) chosen = preferred;
  }
  chosen ??= await freePort();
  await beforeStart?.(`http://127.0.0.1:${chosen}`);
  const logFile = path.join(routerDir(), 'router.log');
  const out = fs.openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [
      runwayBin,
      'router',
      '--port',
      String(chosen),
      '--routes-file',
      path.join(routerDir(), 'routes.json'),
      '--admin-token-file',
      path.join(routerDir(), 'token'),
      ...(config.router.apiKeysFile ? ['--api-keys-file', config.router.apiKeysFile] : []),
    ],
    { stdio: ['ignore', 'pipe', out], detached: false },
  );
  const url = await firstJsonLine(child, 15_000, logFile);
  fs.writeFileSync(
    stateFile,
    JSON.stringify({
      pid: child.pid ?? 0,
      url,
      ...(config.router.apiKeysFile ? { apiKeysFile: config.router.apiKeysFile } : {}),
    } satisfies RouterState),
  );
  if (port === undefined) fs.writeFileSync(path.join(routerDir(), 'port'), `${new URL(url).port}\n`);
  log.info('router started', { url, pid: child.pid, log: logFile });
  return {
    url,
    token,
    pid: child.pid,
    mode: 'started',
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      fs.rmSync(stateFile, { force: true });
    },
  };
}

function firstJsonLine(child: ChildProcess, timeoutMs: number, logFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`router did not start within ${timeoutMs} ms; see ${logFile}`));
    }, timeoutMs);
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { url: string }).url);
      } catch {
        reject(new Error(`router printed an unexpected first line: ${line}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      const tail = fs.existsSync(logFile)
        ? fs.readFileSync(logFile, 'utf8').split('\n').slice(-10).join('\n')
        : '';
      reject(new Error(`router exited with code ${code} before it was ready:\n${tail}`));
    });
  });
}

/**
 * Serves a registered version as the model's only variant: verify, deploy to production, route
 * 100% to it. How the demo and tests put a baseline in place before promoting over it.
 */
export async function serveAtFull(
  deps: ActivityDeps,
  spec: ModelSpec,
  version: string,
  replicas = spec.serving.replicas,
): Promise<void> {
  const v = await deps.registry.verify(spec.name, version);
  const d = await deps.fleet.deploy({
    model: spec.name,
    version,
    environment: 'production',
    artifactPath: v.artifactPath,
    sha256: v.sha256,
    replicas,
    serving: servingOptions(spec.serving),
  });
  await deps.router.setRoute(spec.name, {
    variants: [{ name: `v${version}`, endpoints: d.endpoints, weight: 100 }],
    ...(deps.router.capabilities.sticky ? { sticky: { header: spec.experiment.unitHeader } } : {}),
  });
}

/**
 * The activities' dependencies for a configuration: each seam's factory builds what the config
 * names. `router`: the runway router's admin API when there is one (the embedded router, or
 * router.adminUrl); the builtin provider and the scrape source need it. A missing piece fails here,
 * at worker start, with the field and what was expected.
 */
export function platformDeps(
  config: PlatformConfig,
  router: { url: string; token: string } | undefined,
  logger: Logger,
): ActivityDeps {
  const connection = { kubeconfig: config.fleet.kubeconfig, context: config.fleet.context };
  return {
    registry: createRegistry(config.registry),
    fleet: createFleet(config.fleet, logger.child('fleet')),
    router: createTrafficRouter(config.router, router, connection),
    metrics: createMetricsSource(config.metrics, router?.url, logger.child('metrics')),
    logger,
    feedbackTokens: config.router.feedbackTokens,
    policy: config.policy,
    keyring: keyringSource(config),
    ...(config.cost ? { prices: config.cost } : {}),
    ...(config.notifications.webhooks.length
      ? { notifier: createNotifier(config.notifications, logger.child('notify')) }
      : {}),
    workerMetrics: createWorkerMetrics(),
  };
}

/**
 * What can only be checked by reading or asking: the keyring (signed decisions), the traffic
 * provider's backend (gateway-api, istio: their CRDs) and the metrics source's series (prometheus:
 * that it knows the names the mapping reads).
 */
export async function verifyPlatform(deps: ActivityDeps, log: Logger): Promise<void> {
  if (deps.keyring) {
    // A malformed keyring stops the worker here, naming the entry, not at the first approval.
    const ring = await deps.keyring.load();
    log.info('keyring loaded', { from: ring.source, keys: ring.entries.length });
  }
  if (deps.router.verify) {
    await deps.router.verify();
    log.info('traffic router verified', { driver: deps.router.kind });
  }
  if (deps.metrics.verify) {
    await deps.metrics.verify();
    log.info('metrics source verified');
  }
}

/** A standalone worker's dependencies (`runway worker`): built from the config, then verified. */
export async function workerDeps(config: PlatformConfig, logger: Logger): Promise<ActivityDeps> {
  const admin = config.router.adminUrl
    ? { url: config.router.adminUrl, token: config.router.token ?? '' }
    : undefined;
  const deps = platformDeps(config, admin, logger);
  await verifyPlatform(deps, logger);
  return deps;
}

/**
 * The SDK logs every worker state change and workflow log line at INFO as multi-line objects;
 * on a terminal that drowns the promotion's progress. Forward WARN and above (or what
 * RUNWAY_LOG_LEVEL asks for) as one-line runway logs. Safe to call more than once.
 */
export function installSdkLogging(logger: Logger = createLogger('temporal-sdk')): void {
  const wanted = (process.env.RUNWAY_LOG_LEVEL ?? 'warn').toUpperCase();
  const level: LogLevel =
    (['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const).find((l) => l === wanted) ?? 'WARN';
  try {
    Runtime.install({
      logger: new DefaultLogger(level, (entry) => {
        const fields: Record<string, unknown> = {};
        for (const key of ['workflowId', 'activityType', 'workflowType', 'error'] as const) {
          if (entry.meta?.[key] !== undefined) fields[key] = String(entry.meta[key]);
        }
        const sink =
          entry.level === 'ERROR' ? logger.error : entry.level === 'WARN' ? logger.warn : logger.info;
        sink(entry.message, fields);
      }),
    });
  } catch {
    // A runtime is already installed (another caller did this first): keep it.
  }
}

export async function startPlatform(opts: PlatformOptions = {}): Promise<Platform> {
  const log = opts.logger ?? createLogger('platform');
  installSdkLogging(log.child('sdk'));
  const config = opts.config ?? loadPlatformConfig();
  if (config.fleet.driver !== 'local') {
    throw new Error(
      `the embedded platform runs the local fleet; fleet.driver is "${config.fleet.driver}" (run \`runway worker\` instead)`,
    );
  }
  if (config.router.driver !== 'builtin') {
    // Its router takes routes by the admin API: a ConfigMap or an HTTPRoute would reach no one.
    throw new Error(
      `the embedded platform runs its own router; router.driver is "${config.router.driver}" (run \`runway worker\` instead)`,
    );
  }
  const temporal = await ensureTemporal({
    temporal: config.temporal,
    start: true,
    logger: log.child('temporal'),
  });
  let router: RouterEndpoint | undefined;
  try {
    // Routes name model servers that may have exited since (the demo stops its own): bring every
    // routed variant back before a new router loads the routes, or through a running router's API.
    const routesFile = path.join(routerDir(), 'routes.json');
    let routes: RouteCheck = { restarted: [], unserved: [] };
    router = await ensureRouter(config, opts.routerPort, log, async (url) => {
      const fixed = await reconcileRoutes(
        await loadRoutes(routesFile),
        platformDeps(config, { url, token: routerToken() }, log.child('reconcile')),
      );
      if (fixed.changed.length > 0) await saveRoutes(routesFile, fixed.routes);
      routes = fixed;
    });
    const deps = platformDeps(config, router, log.child('activities'));
    await verifyPlatform(deps, log);
    if (router.mode === 'reused') {
      const fixed = await reconcileRoutes(await loadRoutes(routesFile), deps);
      for (const model of fixed.changed) await deps.router.setRoute(model, fixed.routes.get(model)!);
      routes = fixed;
    }
    let workerDone: Promise<void> = Promise.resolve();
    let shutdown = async (): Promise<void> => {};
    let metricsEndpoint: MetricsEndpoint | undefined;
    if (opts.worker !== false) {
      if (config.worker.metricsListen && deps.workerMetrics) {
        metricsEndpoint = await serveWorkerMetrics(config.worker.metricsListen, deps.workerMetrics.registry);
        log.info('worker metrics', { url: metricsEndpoint.url });
      }
      const w = await createRunwayWorker({
        config,
        activities: createActivities(deps),
        endpoint: temporal,
        logger: log.child('worker'),
      });
      workerDone = w.worker.run().finally(() => w.connection.close());
      shutdown = async () => {
        if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
        await workerDone.catch(() => {});
        await metricsEndpoint?.close();
      };
    }
    const started = router;
    return {
      config,
      temporal,
      router: started,
      deps,
      routes,
      ...(metricsEndpoint ? { workerMetrics: metricsEndpoint } : {}),
      workerDone,
      stop: async () => {
        await shutdown();
        await started.stop();
        await temporal.stop();
      },
    };
  } catch (err) {
    await router?.stop();
    await temporal.stop();
    throw err;
  }
}
