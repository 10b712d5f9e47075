import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Connection, type TLSConfig } from '@temporalio/client';
import { createLogger, type Logger } from '../common/log';
import { projectRoot, stateDir, toolCacheDir } from '../common/paths';
import { withFileLock } from '../common/lock';
import { freePort, portFree } from '../common/ports';
import { pidAlive } from '../common/process';
import { sleep } from '../common/timers';
import { RUNWAY_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { type TemporalSettings, ConfigError, loadPlatformConfig } from './config';

/**
 * Provides the Temporal server runway talks to: a real cluster when `TEMPORAL_ADDRESS` (or the
 * platform config) names one, otherwise the CLI's dev server (`temporal server start-dev`) with
 * its database and UI under the state directory, started once and reused by later commands.
 */

/** temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD (a stable wire value). */
const KEYWORD = 2;

/** What both `Connection.connect` (client) and `NativeConnection.connect` (worker) accept. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
}

export interface TemporalEndpoint {
  /** host:port of the frontend. */
  address: string;
  namespace: string;
  /** Web UI, when runway runs the dev server (a cluster's UI is not known here). */
  uiUrl?: string;
  /** `external`: a cluster; `started`: this call started the dev server; `reused`: one was running. */
  mode: 'external' | 'started' | 'reused';
  /** Options for `Connection.connect` / `NativeConnection.connect` (address, TLS, API key). */
  connectionOptions: TemporalConnectionOptions;
  /** Stops the dev server when this call started it; a no-op for `external` and `reused`. */
  stop(): Promise<void>;
}

export interface EnsureTemporalOptions {
  /** Temporal settings (platform config); default: loaded from the environment / config file. */
  temporal?: TemporalSettings;
  /** Directory holding the dev server's database, log and state; default `<state dir>/temporal`. */
  dataDir?: string;
  /** Frontend port; `auto` picks a free one. Default 7233 when free, else a free port. */
  port?: number | 'auto';
  /** UI port; default frontend port + 1000 when free, else a free port. */
  uiPort?: number | 'auto';
  /** When no dev server is running: start one (default) or fail with what to run. */
  start?: boolean;
  /** Path to the `temporal` CLI; default PATH, then the tool cache, else build it. */
  temporalBin?: string;
  /** Register runway's search attributes (default true). */
  registerSearchAttributes?: boolean;
  /** How long to wait for the server to answer (default 60 s). */
  readyTimeoutMs?: number;
  logger?: Logger;
}

/** What a running dev server leaves in its data directory so other runway processes find it. */
interface DevServerState {
  pid: number;
  address: string;
  port: number;
  uiPort: number;
  dbFile: string;
  logFile: string;
  startedAt: string;
}

const STATE_FILE = 'server.json';
/** The ports the last dev server had; kept after it stops, so the next one takes them again. */
const PORTS_FILE = 'ports.json';

function readSavedPorts(dataDir: string): { port?: number; uiPort?: number } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dataDir, PORTS_FILE), 'utf8')) as {
      port?: number;
      uiPort?: number;
    };
  } catch {
    return undefined;
  }
}

export class TemporalUnavailableError extends Error {
  override name = 'TemporalUnavailableError';
  constructor(
    message: string,
    /** Set when nothing runs for this dev-server directory (as opposed to a server that fails). */
    readonly notRunningIn?: string,
  ) {
    super(message);
  }
}

export function defaultTemporalDataDir(): string {
  return path.join(stateDir(), 'temporal');
}

export async function ensureTemporal(opts: EnsureTemporalOptions = {}): Promise<TemporalEndpoint> {
  const log = opts.logger ?? createLogger('temporal');
  const settings = opts.temporal ?? loadPlatformConfig().temporal;
  if (settings.address) {
    const endpoint: TemporalEndpoint = {
      address: settings.address,
      namespace: settings.namespace,
      mode: 'external',
      connectionOptions: connectionOptionsFor({ ...settings, address: settings.address }),
      stop: async () => {},
    };
    if (opts.registerSearchAttributes !== false)
      await withConnection(endpoint, (c) =>
        registerSearchAttributes(c, endpoint.namespace, opts.readyTimeoutMs),
      );
    return endpoint;
  }

  const dataDir = path.resolve(opts.dataDir ?? defaultTemporalDataDir());
  fs.mkdirSync(dataDir, { recursive: true });
  // Two runway processes starting at once must not both start a server on one SQLite file.
  // The holder's pid is in the file: a crashed starter's lock is broken at once, a live one waited on.
  return withFileLock(path.join(dataDir, 'server-start.lock'), { timeoutMs: 180_000 }, async () => {
    const running = await findRunningDevServer(dataDir);
    let endpoint: TemporalEndpoint;
    if (running) {
      log.debug('reusing the running dev server', { address: running.address, pid: running.pid });
      endpoint = devEndpoint(running, settings.namespace, 'reused', async () => {});
    } else {
      if (opts.start === false) {
        throw new TemporalUnavailableError(
          `no Temporal server is running for ${dataDir}: start the platform with \`runway up\`, or set TEMPORAL_ADDRESS`,
          dataDir,
        );
      }
      const state = await startDevServer(dataDir, settings.namespace, opts, log);
      endpoint = devEndpoint(state, settings.namespace, 'started', async () => {
        await stopDevServer(dataDir);
      });
    }
    if (opts.registerSearchAttributes !== false) {
      try {
        await withConnection(endpoint, (c) =>
          registerSearchAttributes(c, endpoint.namespace, opts.readyTimeoutMs),
        );
      } catch (err) {
        if (endpoint.mode === 'started') await endpoint.stop();
        throw err;
      }
    }
    return endpoint;
  });
}

function devEndpoint(
  state: DevServerState,
  namespace: string,
  mode: 'started' | 'reused',
  stop: () => Promise<void>,
): TemporalEndpoint {
  return {
    address: state.address,
    namespace,
    uiUrl: `http://127.0.0.1:${state.uiPort}`,
    mode,
    connectionOptions: { address: state.address },
    stop,
  };
}

/** Connection options (address, TLS, API key) for a configured cluster. */
export function connectionOptionsFor(
  settings: TemporalSettings & { address: string },
): TemporalConnectionOptions {
  const options: TemporalConnectionOptions = { address: settings.address };
  const tls = settings.tls;
  if (tls === true) options.tls = true;
  else if (tls && typeof tls === 'object') {
    const read = (file: string, what: string): Buffer => {
      try {
        return fs.readFileSync(file);
      } catch (err) {
        throw new ConfigError(`temporal.tls.${what}: cannot read ${file}: ${(err as Error).message}`);
      }
    };
    options.tls = {
      ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
      ...(tls.caFile ? { serverRootCACertificate: read(tls.caFile, 'caFile') } : {}),
      ...(tls.certFile && tls.keyFile
        ? { clientCertPair: { crt: read(tls.certFile, 'certFile'), key: read(tls.keyFile, 'keyFile') } }
        : {}),
    };
  }
  if (settings.apiKey) options.apiKey = settings.apiKey;
  return options;
}

async function withConnection<T>(endpoint: TemporalEndpoint, fn: (c: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ ...endpoint.connectionOptions, connectTimeout: '10s' });
  try {
    return await fn(connection);
  } finally {
    await connection.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Search attributes

/**
 * Adds runway's Keyword search attributes where missing and waits until the namespace lists
 * them (the dev server applies them asynchronously). Safe to call any number of times.
 */
export async function registerSearchAttributes(
  connection: Connection,
  namespace: string,
  timeoutMs = 30_000,
): Promise<void> {
  const wanted = Object.fromEntries(RUNWAY_SEARCH_ATTRIBUTES.map((k) => [k.name, KEYWORD]));
  const deadline = Date.now() + timeoutMs;
  let added = false;
  for (;;) {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const existing = customAttributes ?? {};
    const wrongType = Object.keys(wanted).filter(
      (n) => existing[n] !== undefined && existing[n] !== wanted[n],
    );
    if (wrongType.length) {
      throw new TemporalUnavailableError(
        `search attribute(s) ${wrongType.join(', ')} exist in namespace ${namespace} with a type other than Keyword`,
      );
    }
    const missing = Object.keys(wanted).filter((n) => existing[n] === undefined);
    if (!missing.length) return;
    if (!added) {
      try {
        await connection.operatorService.addSearchAttributes({
          namespace,
          searchAttributes: Object.fromEntries(missing.map((n) => [n, wanted[n] as number])),
        });
      } catch (err) {
        // ALREADY_EXISTS (6): another process registered them first; anything else is fatal.
        if ((err as { code?: number }).code !== 6) {
          const cmds = missing.map(
            (n) =>
              `temporal operator search-attribute create --namespace ${namespace} --name ${n} --type Keyword`,
          );
          throw new TemporalUnavailableError(
            `cannot register search attributes ${missing.join(', ')} (${(err as Error).message}); an operator can run:\n  ${cmds.join('\n  ')}`,
          );
        }
      }
      added = true;
    }
    if (Date.now() > deadline) {
      throw new TemporalUnavailableError(
        `search attributes ${missing.join(', ')} not visible in namespace ${namespace} after ${timeoutMs} ms`,
      );
    }
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------------
// The dev server

/** The `temporal` CLI: PATH, then the tool cache; null when neither has it. */
export function findTemporalBin(): string | null {
  const which = spawnSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8' });
  const onPath = which.status === 0 ? which.stdout.trim() : '';
  if (onPath) return onPath;
  const cached = path.join(toolCacheDir(), 'bin', 'temporal');
  return isExecutable(cached) ? cached : null;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Builds the CLI into the tool cache with scripts/tools.sh (minutes, once per machine). */
function buildTemporalBin(log: Logger): string {
  log.info(
    'the Temporal CLI is not installed; building it into the tool cache (first time only, a few minutes)',
    {
      cache: toolCacheDir(),
    },
  );
  const result = spawnSync('bash', [path.join(projectRoot, 'scripts', 'tools.sh'), 'temporal'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const bin = path.join(toolCacheDir(), 'bin', 'temporal');
  if (result.status !== 0 || !isExecutable(bin)) {
    throw new TemporalUnavailableError(
      'could not build the Temporal CLI (needs Go; see the output above). Install `temporal` on PATH or set TEMPORAL_ADDRESS.',
    );
  }
  return bin;
}

function readState(dataDir: string): DevServerState | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dataDir, STATE_FILE), 'utf8')) as DevServerState;
  } catch {
    return null;
  }
}

/** True when pid is a `temporal` process on this database (guards against pid reuse). */
function isOurServer(state: DevServerState): boolean {
  if (!pidAlive(state.pid)) return false;
  try {
    const cmdline = fs.readFileSync(`/proc/${state.pid}/cmdline`, 'utf8');
    return cmdline.includes(state.dbFile);
  } catch {
    return true; // no /proc (macOS): the answering check below decides
  }
}

/** The dev server recorded in dataDir, when its process lives and its frontend answers. */
export async function findRunningDevServer(
  dataDir = defaultTemporalDataDir(),
): Promise<DevServerState | null> {
  const state = readState(dataDir);
  if (!state || !isOurServer(state)) return null;
  return (await answers(state.address, 3_000)) ? state : null;
}

async function answers(address: string, timeoutMs: number): Promise<boolean> {
  // lazy + close in finally: a failed Connection.connect leaves its gRPC channel retrying in the
  // background, which keeps the process alive after the caller has given up.
  const connection = Connection.lazy({ address, connectTimeout: timeoutMs });
  try {
    await connection.ensureConnected();
    await connection.withDeadline(Date.now() + timeoutMs, () => connection.workflowService.getSystemInfo({}));
    return true;
  } catch {
    return false;
  } finally {
    await connection.close().catch(() => {});
  }
}

async function startDevServer(
  dataDir: string,
  namespace: string,
  opts: EnsureTemporalOptions,
  log: Logger,
): Promise<DevServerState> {
  const bin = opts.temporalBin ?? findTemporalBin() ?? buildTemporalBin(log);
  const stale = readState(dataDir);
  // A dying previous server still holds the SQLite lock for a moment; starting now fails with SQLITE_BUSY.
  if (stale && isOurServer(stale)) await killAndWait(stale.pid, 10_000);
  // The ports it had last time, else 7233 / 8233: the UI links runway printed before stay true.
  const saved = readSavedPorts(dataDir);
  const port = await choosePort(opts.port, [saved?.port, 7233]);
  const uiPort = await choosePort(opts.uiPort, [saved?.uiPort, port + 1000], [port]);
  const dbFile = path.join(dataDir, 'temporal.db');
  const logFile = path.join(dataDir, 'server.log');
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    dbFile,
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--log-level',
    'warn',
    // `default` always exists; another configured namespace is created at launch (if missing).
    ...(namespace === 'default' ? [] : ['--namespace', namespace]),
    // Registered here on a fresh database; registerSearchAttributes covers older databases.
    ...RUNWAY_SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]),
  ];
  const out = fs.openSync(logFile, 'a');
  fs.writeSync(out, `\n--- ${new Date().toISOString()} ${bin} ${args.join(' ')}\n`);
  const started = Date.now();
  // Detached in its own process group: the server outlives `runway up` crashes and is reused.
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = `exited with ${signal ?? `code ${code}`}`));
  child.once('error', (err) => (exited = `failed to start: ${err.message}`));
  child.unref();
  const address = `127.0.0.1:${port}`;
  const state: DevServerState = {
    pid: child.pid ?? -1,
    address,
    port,
    uiPort,
    dbFile,
    logFile,
    startedAt: new Date().toISOString(),
  };
  const timeoutMs = opts.readyTimeoutMs ?? 60_000;
  for (;;) {
    if (exited) throw new TemporalUnavailableError(`temporal dev server ${exited}\n${logTail(logFile)}`);
    if (await answers(address, 2_000)) break;
    if (Date.now() - started > timeoutMs) {
      if (child.pid) await killAndWait(child.pid, 5_000);
      throw new TemporalUnavailableError(
        `temporal dev server did not answer on ${address} within ${timeoutMs} ms; last lines of ${logFile}:\n${logTail(logFile)}`,
      );
    }
    await sleep(150);
  }
  fs.writeFileSync(path.join(dataDir, STATE_FILE), JSON.stringify(state, null, 2));
  fs.writeFileSync(path.join(dataDir, PORTS_FILE), JSON.stringify({ port, uiPort }) + '\n');
  log.info('temporal dev server started', {
    address,
    ui: `http://127.0.0.1:${uiPort}`,
    ms: Date.now() - started,
  });
  return state;
}

/** Stops the dev server recorded in dataDir (if any) and waits until it has released the database. */
export async function stopDevServer(
  dataDir = defaultTemporalDataDir(),
  timeoutMs = 15_000,
): Promise<boolean> {
  const state = readState(dataDir);
  if (!state) return false;
  const wasRunning = isOurServer(state);
  if (wasRunning) await killAndWait(state.pid, timeoutMs);
  fs.rmSync(path.join(dataDir, STATE_FILE), { force: true });
  return wasRunning;
}

async function killAndWait(pid: number, timeoutMs: number): Promise<void> {
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) {
      signal('SIGKILL');
      await sleep(200);
      return;
    }
    await sleep(100);
  }
}

function logTail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function choosePort(
  wanted: number | 'auto' | undefined,
  preferred: (number | undefined)[],
  taken: number[] = [],
): Promise<number> {
  if (typeof wanted === 'number') return wanted;
  for (const p of wanted === undefined ? preferred : []) {
    if (p === undefined || !Number.isInteger(p) || p <= 0 || p >= 65536 || taken.includes(p)) continue;
    if (await portFree(p)) return p;
  }
  for (;;) {
    const port = await freePort();
    if (!taken.includes(port)) return port;
  }
}
