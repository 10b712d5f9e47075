/**
 * Router overhead: throughput and p50/p99 latency through the runway router vs straight to the
 * model servers, at the same concurrency, with 2 weighted variants (50/50) and a 10% mirror to a
 * shadow. The direct baseline spreads its requests over the same two servers, so both sides
 * have the same serving capacity; the router additionally pays for the mirror copies.
 *
 * Model servers and the router run as separate processes (this file re-run with `--role`), so
 * the load generator does not share their event loops.
 *
 * The reference: Debian's nginx (nginx-light; `bash scripts/tools.sh nginx`), one worker, a
 * weighted 50/50 upstream over the same two servers with keep-alive, measured in the same rounds
 * (direct, router, nginx, alternating). Without nginx installed the reference is skipped, loudly.
 *
 *   npm run bench:router -- [--concurrency 1,16] [--seconds 5] [--rounds 2]
 * Writes bench/results/router-<date>.json.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { projectRoot } from '../common/paths';
import { startRouter } from '../serving/router/server';
import { startModelServer } from '../serving/server';

const models = path.join(projectRoot, 'demo', 'models');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

// ---- child roles ---------------------------------------------------------------------------

async function runRole(role: string): Promise<void> {
  let url: string;
  if (role === 'server') {
    const file = process.argv[process.argv.indexOf('--file') + 1]!;
    const s = await startModelServer({ model: path.join(models, file), name: 'fraud', port: 0, threads: 1 });
    url = s.url;
    process.on('disconnect', () => void s.close().then(() => process.exit(0)));
  } else {
    const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
    const r = await startRouter({ port: 0, logger: quiet });
    url = r.url;
    // The parent asks for our CPU time around the routed phases: router cost per request.
    process.on('message', () => process.send!({ cpu: process.cpuUsage() }));
    process.on('disconnect', () => void r.close().then(() => process.exit(0)));
  }
  process.send!({ url });
}

function spawnRole(role: string, extra: string[] = []): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(__filename, ['--role', role, ...extra], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ url: (m as { url: string }).url, child }));
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
  });
}

// ---- nginx, the reference -------------------------------------------------------------------

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((f) => fs.existsSync(f));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** nginx with a weighted keep-alive upstream over `servers`, on a free loopback port. */
async function startNginx(servers: string[]): Promise<{ url: string; child: ChildProcess; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-nginx-'));
  const port = await freePort();
  const upstream = servers.map((u) => `    server ${new URL(u).host} weight=50;`).join('\n');
  const conf = `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream fraud {
${upstream}
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://fraud;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = spawn(NGINX!, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`${url}/v2/models/fraud/ready`);
      return { url, child, dir };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  child.kill('SIGKILL');
  throw new Error(`nginx did not start; see ${dir}/error.log`);
}

// ---- load ----------------------------------------------------------------------------------

const body = JSON.stringify({
  inputs: [
    { name: 'features', datatype: 'FP32', shape: [1, 8], data: [0.1, 0.9, 0.3, 0.7, 0.2, 0.5, 0.4, 0.6] },
  ],
});

interface Phase {
  requests: number;
  errors: number;
  seconds: number;
  latenciesMs: number[];
}

/** Closed loop: `concurrency` workers, each sending the next request when the last returns. */
async function load(
  targets: string[],
  concurrency: number,
  seconds: number,
  record: boolean,
): Promise<Phase> {
  const pools = targets.map((t) => new Pool(t, { connections: concurrency }));
  const latenciesMs: number[] = [];
  let requests = 0;
  let errors = 0;
  let turn = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const pool = pools[turn++ % pools.length]!;
        const t0 = performance.now();
        try {
          const res = await pool.request({
            path: '/v2/models/fraud/infer',
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          });
          await res.body.dump();
          if (res.statusCode !== 200) errors++;
        } catch {
          errors++;
        }
        if (record) latenciesMs.push(performance.now() - t0);
        requests++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await Promise.all(pools.map((p) => p.close()));
  return { requests, errors, seconds: elapsed, latenciesMs };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function summarize(phases: Phase[]) {
  const lat = phases.flatMap((p) => p.latenciesMs).sort((a, b) => a - b);
  const requests = phases.reduce((s, p) => s + p.requests, 0);
  const seconds = phases.reduce((s, p) => s + p.seconds, 0);
  return {
    requests,
    errors: phases.reduce((s, p) => s + p.errors, 0),
    throughputRps: Math.round((requests / seconds) * 10) / 10,
    p50Ms: Math.round(quantile(lat, 0.5) * 1000) / 1000,
    p99Ms: Math.round(quantile(lat, 0.99) * 1000) / 1000,
  };
}

async function main(): Promise<void> {
  const levels = (process.argv[process.argv.indexOf('--concurrency') + 1] ?? '')
    .split(',')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
  const concurrencies = process.argv.includes('--concurrency') && levels.length > 0 ? levels : [1, 16];
  const seconds = arg('seconds', 5);
  const rounds = arg('rounds', 2);
  const children: ChildProcess[] = [];
  let nginxDir: string | undefined;
  try {
    const [v1, v2, shadow, router] = await Promise.all([
      spawnRole('server', ['--file', 'fraud-v1.onnx']),
      spawnRole('server', ['--file', 'fraud-v2.onnx']),
      spawnRole('server', ['--file', 'fraud-v3.onnx']),
      spawnRole('router'),
    ]);
    children.push(v1.child, v2.child, shadow.child, router.child);
    const nginx = NGINX ? await startNginx([v1.url, v2.url]) : undefined;
    if (nginx) {
      children.push(nginx.child);
      nginxDir = nginx.dir;
    } else
      process.stderr.write(
        'bench:router: nginx not found, the reference is SKIPPED (bash scripts/tools.sh nginx)\n',
      );
    const res = await fetch(`${router.url}/admin/routes/fraud`, {
      method: 'PUT',
      body: JSON.stringify({
        variants: [
          { name: 'v1', endpoints: [v1.url], weight: 50 },
          { name: 'v2', endpoints: [v2.url], weight: 50 },
          { name: 'v3', endpoints: [shadow.url], weight: 0 },
        ],
        mirror: { variant: 'v3', percent: 10 },
      }),
    });
    if (res.status !== 200) throw new Error(`route refused: ${await res.text()}`);

    const routerCpu = (): Promise<number> =>
      new Promise((resolve) => {
        router.child.once('message', (m) => {
          const { user, system } = (m as { cpu: NodeJS.CpuUsage }).cpu;
          resolve(user + system);
        });
        router.child.send('cpu');
      });
    await load([v1.url, v2.url], 16, 1, false); // warm-up
    await load([router.url], 16, 1, false);
    if (nginx) await load([nginx.url], 16, 1, false);
    const counter = async (name: string): Promise<number> => {
      const text = await (await fetch(`${router.url}/metrics`)).text();
      return Number(new RegExp(`${name}\\{[^}]*\\} (\\d+)`).exec(text)?.[1] ?? 0);
    };

    /** Direct vs routed at one concurrency, alternating so drift on a shared machine hits both alike. */
    const compare = async (concurrency: number) => {
      let routerCpuUs = 0;
      const direct: Phase[] = [];
      const routed: Phase[] = [];
      const proxied: Phase[] = [];
      const mirrored0 = await counter('runway_router_mirrored_total');
      const dropped0 = await counter('runway_router_mirror_dropped_total');
      for (let r = 0; r < rounds; r++) {
        direct.push(await load([v1.url, v2.url], concurrency, seconds, true));
        const before = await routerCpu();
        routed.push(await load([router.url], concurrency, seconds, true));
        routerCpuUs += (await routerCpu()) - before;
        if (nginx) proxied.push(await load([nginx.url], concurrency, seconds, true));
      }
      const d = summarize(direct);
      const t = summarize(routed);
      const n = nginx ? summarize(proxied) : undefined;
      return {
        concurrency,
        direct: d,
        router: {
          ...t,
          mirrored: (await counter('runway_router_mirrored_total')) - mirrored0,
          mirrorDropped: (await counter('runway_router_mirror_dropped_total')) - dropped0,
          // What the router itself costs, independent of how loaded the machine is.
          cpuMicrosecondsPerRequest: Math.round(routerCpuUs / t.requests),
        },
        nginx: n
          ? { ...n, throughputRatioToDirect: Math.round((n.throughputRps / d.throughputRps) * 1000) / 1000 }
          : 'skipped: nginx not installed',
        routerToNginx: n ? Math.round((t.throughputRps / n.throughputRps) * 1000) / 1000 : undefined,
        overhead: {
          addedP50Ms: Math.round((t.p50Ms - d.p50Ms) * 1000) / 1000,
          addedP99Ms: Math.round((t.p99Ms - d.p99Ms) * 1000) / 1000,
          throughputRatio: Math.round((t.throughputRps / d.throughputRps) * 1000) / 1000,
        },
        targets: {
          addedP50UnderOneMs: t.p50Ms - d.p50Ms < 1,
          throughputAtLeast70Percent: t.throughputRps / d.throughputRps >= 0.7,
          ...(n ? { atLeast75PercentOfNginx: t.throughputRps / n.throughputRps >= 0.75 } : {}),
        },
      };
    };
    const runs = [];
    for (const concurrency of concurrencies) runs.push(await compare(concurrency));
    const result = {
      benchmark: 'router',
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        model: os.cpus()[0]?.model,
        node: process.version,
        loadavg: os.loadavg(),
      },
      setup: {
        secondsPerPhase: seconds,
        rounds,
        variants: 'v1 50% (fraud-v1), v2 50% (fraud-v2), mirror 10% to v3 (fraud-v3, weight 0)',
        direct: 'client alternates over the v1 and v2 servers (same serving capacity as the routed side)',
        nginx: NGINX
          ? 'nginx (Debian), 1 worker, upstream v1/v2 weight 50/50, keepalive 256, no mirror, access log off'
          : 'not installed',
        request: 'JSON infer, 1 row x 8 FP32 features; closed loop',
        processes: '3 model servers, 1 router, 1 load generator, all on this machine',
      },
      runs,
    };
    const out = path.join(projectRoot, 'bench', 'results', `router-${result.date.slice(0, 10)}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(`written to ${path.relative(projectRoot, out)}\n`);
  } finally {
    for (const c of children) {
      // Forked roles stop when their channel closes; nginx (no channel) is told to quit.
      if (c.connected) c.disconnect();
      else c.kill('SIGQUIT');
      setTimeout(() => c.kill('SIGKILL'), 5_000).unref();
    }
    if (nginxDir) fs.rmSync(nginxDir, { recursive: true, force: true });
  }
}

const role = process.argv.indexOf('--role');
(role >= 0 ? runRole(process.argv[role + 1]!) : main()).catch((err: unknown) => {
  process.stderr.write(`bench:router: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
