/**
 * Debian's real `prometheus` on loopback for tests: scrapes the given targets every second, keeps
 * its data in a temporary directory, and is stopped (and the directory removed) by stop(), which
 * is safe to call after a failed start. Tests that need it skip loudly when it is not installed
 * (`bash scripts/tools.sh prometheus`) and fail under CI=true.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';

export const prometheusBinary = ((): string | undefined => {
  try {
    return execFileSync('bash', ['-c', 'command -v prometheus'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
})();

/** Says loudly why the tests that need Prometheus do not run here; under CI it is an error. */
export function warnWithoutPrometheus(what: string): void {
  if (prometheusBinary) return;
  const reason = `${what} SKIPPED: no \`prometheus\` on PATH; install it with \`bash scripts/tools.sh prometheus\``;
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: these tests must run)`);
  console.warn(`\n${'!'.repeat(100)}\n${reason}\n${'!'.repeat(100)}\n`);
}

export interface QueryAnswer {
  status: 'success' | 'error';
  errorType?: string;
  error?: string;
  data?: { resultType: string; result: unknown[] };
}

export interface RunningPrometheus {
  url: string;
  /** An instant query through the HTTP API (GET /api/v1/query). */
  query(expr: string): Promise<QueryAnswer>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** `targets`: job name → host:port list, each scraped at GET /metrics every second. */
export async function startPrometheus(targets: Record<string, string[]>): Promise<RunningPrometheus> {
  if (!prometheusBinary) throw new Error('prometheus is not installed (bash scripts/tools.sh prometheus)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-prom-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const jobs = Object.entries(targets)
    .map(
      ([job, hosts]) =>
        `  - job_name: ${job}\n    static_configs: [{ targets: [${hosts.map((h) => `'${h}'`).join(', ')}] }]`,
    )
    .join('\n');
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    `global: { scrape_interval: 1s }\nscrape_configs:\n${jobs}\n`,
  );
  let log = '';
  const child: ChildProcess = spawn(
    prometheusBinary,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await request(`${url}/-/ready`);
      await r.body.text();
      if (r.statusCode === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus not ready in 30 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    async query(expr) {
      const r = await request(`${url}/api/v1/query?${new URLSearchParams({ query: expr })}`);
      return (await r.body.json()) as QueryAnswer;
    },
    stop,
  };
}
