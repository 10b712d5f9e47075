/**
 * A real MLflow tracking server for tests: `mlflow server` from the suite's venv (installed by
 * `bash scripts/tools.sh mlflow`), SQLite backend store and a proxied artifact store in a temp
 * directory, on a free loopback port. With `auth`, MLflow's basic-auth app with an admin whose
 * password only the test knows. Stopped (its whole process group) after the file, even when a
 * test fails; `stop()` and `start()` let a test take it down and bring it back on the same port
 * and state.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { toolCacheDir } from '../../common/paths';

export const MLFLOW_BIN = path.join(toolCacheDir(), 'py', 'bin', 'mlflow');
export const MLFLOW_PYTHON = path.join(toolCacheDir(), 'py', 'bin', 'python');

export interface MlflowServer {
  url: string;
  port: number;
  /** Where the server keeps artifacts (`--artifacts-destination`): what a tamperer would edit. */
  artifactsDir: string;
  /** Set with `auth`: the admin's credentials. */
  credentials?: { username: string; password: string };
  version: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** MLflow 3 starts job consumers (huey) beside the server; these tests need none of them. */
const ENV = { MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false', PYTHONUNBUFFERED: '1' };

export async function startMlflow(
  opts: { auth?: boolean; startTimeoutMs?: number } = {},
): Promise<MlflowServer> {
  if (!fs.existsSync(MLFLOW_BIN)) {
    throw new Error(`MLflow is not installed at ${MLFLOW_BIN}: run \`bash scripts/tools.sh mlflow\``);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-mlflow-'));
  const artifactsDir = path.join(dir, 'artifacts');
  const port = await loopbackPort();
  const url = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env, ...ENV };
  let credentials: MlflowServer['credentials'];
  if (opts.auth) {
    credentials = { username: 'admin', password: crypto.randomBytes(12).toString('hex') };
    const ini = path.join(dir, 'auth.ini');
    fs.writeFileSync(
      ini,
      [
        '[mlflow]',
        'default_permission = READ',
        `database_uri = sqlite:///${path.join(dir, 'auth.db')}`,
        `admin_username = ${credentials.username}`,
        `admin_password = ${credentials.password}`,
        'authorization_function = mlflow.server.auth:authenticate_request_basic_auth',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    env.MLFLOW_AUTH_CONFIG_PATH = ini;
    env.MLFLOW_FLASK_SERVER_SECRET_KEY = crypto.randomBytes(16).toString('hex');
  }
  const args = [
    'server',
    ...(opts.auth ? ['--app-name', 'basic-auth'] : []),
    '--backend-store-uri',
    `sqlite:///${path.join(dir, 'mlflow.db')}`,
    '--artifacts-destination',
    artifactsDir,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--workers',
    '1',
  ];
  const logFile = path.join(dir, 'server.log');
  let child: ChildProcess | undefined;
  const version = await new Promise<string>((resolve) => {
    const v = spawn(MLFLOW_PYTHON, ['-c', 'import mlflow; print(mlflow.__version__)'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    v.stdout.on('data', (d: Buffer) => (out += d.toString()));
    v.on('exit', () => resolve(out.trim() || 'unknown'));
  });

  const server: MlflowServer = {
    url,
    port,
    artifactsDir,
    credentials,
    version,
    async start() {
      const out = fs.openSync(logFile, 'a');
      // Its own process group: uvicorn's workers go down with it.
      child = spawn(MLFLOW_BIN, args, { env, cwd: dir, stdio: ['ignore', out, out], detached: true });
      fs.closeSync(out);
      const deadline = Date.now() + (opts.startTimeoutMs ?? 180_000);
      for (;;) {
        if (child.exitCode !== null) {
          throw new Error(`mlflow server exited with ${child.exitCode}:\n${tail(logFile)}`);
        }
        const up = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) }).then(
          (r) => r.ok,
          () => false,
        );
        if (up) return;
        if (Date.now() > deadline) {
          await this.stop();
          throw new Error(`mlflow server did not answer /health within the timeout:\n${tail(logFile)}`);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c?.pid || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      try {
        process.kill(-c.pid, 'SIGTERM');
      } catch {
        return;
      }
      const done = await Promise.race([
        exited.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 10_000)),
      ]);
      if (!done) {
        try {
          process.kill(-c.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
        await exited;
      }
      // The port must be free again before a restart binds it.
      for (let i = 0; i < 50; i++) {
        const listening = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) }).then(
          () => true,
          () => false,
        );
        if (!listening) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };
  await server.start();
  cleanups.set(server, dir);
  return server;
}

/** A port the kernel hands out on loopback, released for the server to bind. */
function loopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const cleanups = new Map<MlflowServer, string>();

export async function stopMlflow(server: MlflowServer): Promise<void> {
  await server.stop();
  const dir = cleanups.get(server);
  cleanups.delete(server);
  if (dir && process.env.RUNWAY_KEEP_TEST_HOME !== '1') fs.rmSync(dir, { recursive: true, force: true });
}

/** One server for the test file, stopped after it whatever happened. */
export function useMlflow(opts: { auth?: boolean } = {}): { readonly server: MlflowServer } {
  let server: MlflowServer | undefined;
  beforeAll(async () => {
    server = await startMlflow(opts);
    console.info(`mlflow ${server.version} at ${server.url}${opts.auth ? ' (basic-auth app)' : ''}`);
  }, 240_000);
  afterAll(async () => {
    if (server) await stopMlflow(server);
  }, 60_000);
  return {
    get server() {
      if (!server) throw new Error('useMlflow(): ready only inside tests');
      return server;
    },
  };
}

function tail(file: string): string {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').slice(-20).join('\n') : '';
}
