/**
 * Router overhead: throughput and p50/p99 latency through the runway router, straight to the
 * model servers, and through Debian's nginx as the reference, at the same concurrency, measured
 * side by side in one run (the phases alternate, so drift on a shared machine hits all alike).
 *
 * Rows, each a closed loop of `concurrency` connections:
 * - direct: straight to the two model servers (the load split over both, so the serving capacity
 *   is the routed sides').
 * - router: the target row, the same route nginx has: v1/v2 weighted 50/50, with the router's
 *   per-variant metrics and feedback attribution (every request carries a fresh
 *   `x-request-id`, so each one opens an assignment slot), no mirror.
 * - nginx: nginx-light (`bash scripts/tools.sh nginx`), 1 worker, a weighted 50/50 keep-alive
 *   upstream over the same two servers. Without nginx the reference is skipped, loudly.
 * - routerMirror: a second router process with the same route plus a 10% mirror to v3 (a third
 *   server), so the mirror's cost stays visible beside the target row.
 * - floor: a bare Node proxy (node:http and the router's upstream client, nothing else): what any
 *   Node proxy costs on this machine, so the router's own logic and Node's share can be told apart.
 * - rawFloor: the same without node:http (raw sockets, the least parsing a keep-alive POST needs):
 *   what an inbound fast lane in the router could reach, measured before anyone builds one.
 *
 * The load generator is wrk (`bash scripts/tools.sh wrk`), one thread, a few µs of CPU per
 * request; without it an in-process undici loop stands in, loudly (it costs several times more
 * CPU, which on 2 cores is taken from the proxies measured). Each row reports the generator's CPU
 * and the machine's busy share; each level the load average.
 *
 * Model servers and routers run as separate processes (this file re-run with `--role`).
 *
 *   npm run bench:router -- [--concurrency 1,16,64] [--seconds 5] [--rounds 2] [--tag b]
 *                           [--rows router,nginx] [--cpu-prof DIR] [--baseline CHECKOUT]
 * `--rows` measures only the rows named; `--baseline` adds the router of another built checkout
 * (the commit before a change) as a `baseline` row, for an A/B of one change in one run;
 * `--cpu-prof` writes the routers' V8 CPU profiles to DIR. Writes bench/results/router-<date>[-<tag>].json and .md.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { projectRoot } from '../common/paths';
import { startRouter } from '../serving/router/server';
import { onPath, runWrk, type WrkResult } from './wrk';
import { Upstream } from '../serving/router/upstream';
import { startModelServer } from '../serving/server';

const models = path.join(projectRoot, 'demo', 'models');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function textArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

// ---- child roles ---------------------------------------------------------------------------

async function runRole(role: string): Promise<void> {
  let url: string;
  if (role === 'server') {
    const file = process.argv[process.argv.indexOf('--file') + 1]!;
    const s = await startModelServer({ model: path.join(models, file), name: 'fraud', port: 0, threads: 1 });
    url = s.url;
    process.on('disconnect', () => void s.close().then(() => process.exit(0)));
  } else if (role === 'floor' || role === 'rawFloor') {
    const upstreams = process.argv[process.argv.indexOf('--upstreams') + 1]!.split(',');
    const f = await (role === 'floor' ? startFloorProxy(upstreams) : startRawFloorProxy(upstreams));
    url = f.url;
    process.on('message', () => process.send!({ cpu: process.cpuUsage() }));
    process.on('disconnect', () => void f.close().then(() => process.exit(0)));
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

/**
 * The floor of a Node proxy here: node:http in front, the router's own upstream client behind,
 * alternating over the servers, and nothing else (no routes, metrics, feedback, failover). What
 * the router costs beyond it is its own logic; what this costs beyond nginx is Node's.
 */
async function startFloorProxy(origins: string[]): Promise<{ url: string; close(): Promise<void> }> {
  const clients = origins.map((o) => new Upstream(o, { connections: 256 }));
  let turn = 0;
  const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      clients[turn++ % clients.length]!.request({
        path: req.url ?? '/',
        method: req.method ?? 'GET',
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
        body: Buffer.concat(chunks),
      })
        .then(async (up) => {
          const answer = await up.body.buffer();
          res.writeHead(up.statusCode, [
            'content-type',
            String(up.headers['content-type']),
            'content-length',
            String(answer.length),
          ]);
          res.end(answer);
        })
        .catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await Promise.all(clients.map((c) => c.destroy()));
    },
  };
}

/**
 * The floor of a Node proxy without node:http in front: requests read from raw sockets by the
 * least a keep-alive JSON POST needs (request line, Content-Length, body), the same upstream
 * client behind, the answer written in one write. Not a server anyone should deploy (no chunked
 * bodies, no pipelining, no limits): it measures what an inbound fast lane in the router could
 * buy before anyone builds one.
 */
async function startRawFloorProxy(origins: string[]): Promise<{ url: string; close(): Promise<void> }> {
  const clients = origins.map((o) => new Upstream(o, { connections: 256 }));
  let turn = 0;
  const server = net.createServer({ noDelay: true }, (socket) => {
    let buf: Buffer = Buffer.alloc(0);
    let busy = false;
    const next = (): void => {
      if (busy) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.toString('latin1', 0, end);
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      const sp = head.indexOf(' ');
      const method = head.slice(0, sp);
      const path = head.slice(sp + 1, head.indexOf(' ', sp + 1));
      const body = Buffer.from(buf.subarray(end + 4, end + 4 + length));
      buf = buf.subarray(end + 4 + length);
      busy = true;
      clients[turn++ % clients.length]!.request({
        path,
        method,
        headers: { 'content-type': 'application/json' },
        body,
      })
        .then(async (up) => {
          const answer = await up.body.buffer();
          const answerHead = `HTTP/1.1 ${up.statusCode} OK\r\ncontent-type: ${String(up.headers['content-type'])}\r\ncontent-length: ${answer.length}\r\n\r\n`;
          socket.write(Buffer.concat([Buffer.from(answerHead, 'latin1'), answer]));
          busy = false;
          next();
        })
        .catch(() => socket.destroy());
    };
    socket.on('data', (d: Buffer) => {
      buf = buf.length > 0 ? Buffer.concat([buf, d]) : d;
      next();
    });
    socket.on('error', () => socket.destroy());
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
      await Promise.all(clients.map((c) => c.destroy()));
    },
  };
}

function spawnRole(
  role: string,
  extra: string[] = [],
  execArgv: string[] = [],
  script = __filename,
): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(script, ['--role', role, ...extra], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv,
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ url: (m as { url: string }).url, child }));
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
  });
}

// ---- nginx, the reference -------------------------------------------------------------------

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((f) => fs.existsSync(f));

// Looked up by the parent only: the roles never generate load.
const WRK = process.argv.includes('--role') ? undefined : onPath('wrk');

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

const INFER = '/v2/models/fraud/infer';
const body = JSON.stringify({
  inputs: [
    { name: 'features', datatype: 'FP32', shape: [1, 8], data: [0.1, 0.9, 0.3, 0.7, 0.2, 0.5, 0.4, 0.6] },
  ],
});

// wrk's request() runs per request: a fresh x-request-id each time (prefix from the script's
// argument), so the router's feedback memory records every request, as it would in production.
const WRK_SCRIPT = `local prefix = "r"
local n = 0
local body = ${JSON.stringify(body)}
function init(args) prefix = args[1] or prefix end
request = function()
  n = n + 1
  return wrk.format("POST", "${INFER}", { ["Content-Type"] = "application/json", ["X-Request-Id"] = prefix .. n }, body)
end
`;

interface Phase {
  requests: number;
  errors: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds the load generator used. */
  generatorCpuS: number;
  /** Machine-wide busy share of all CPUs during the phase (from /proc/stat). */
  machineBusy: number;
}

function cpuTicks(): { busy: number; total: number } {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

let phaseSeq = 0;

/** One wrk process against one target; each has its own x-request-id prefix. */
function wrk(target: string, connections: number, seconds: number, script: string): Promise<WrkResult> {
  return runWrk(WRK!, target + INFER, {
    connections,
    seconds,
    script,
    scriptArgs: [`p${process.pid}-${++phaseSeq}-`],
  });
}

/** Closed loop with an undici client in this process: the fallback when wrk is not installed. */
async function undiciLoad(targets: string[], concurrency: number, seconds: number) {
  const pools = targets.map((t) => new Pool(t, { connections: concurrency }));
  const latenciesMs: number[] = [];
  let requests = 0;
  let errors = 0;
  let turn = 0;
  const prefix = `p${process.pid}-${++phaseSeq}-`;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const pool = pools[turn++ % pools.length]!;
        const t0 = performance.now();
        try {
          const res = await pool.request({
            path: INFER,
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-request-id': `${prefix}${requests}` },
            body,
          });
          await res.body.dump();
          if (res.statusCode !== 200) errors++;
        } catch {
          errors++;
        }
        latenciesMs.push(performance.now() - t0);
        requests++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(pools.map((p) => p.close()));
  latenciesMs.sort((a, b) => a - b);
  const q = (x: number): number =>
    latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(x * latenciesMs.length))] ?? NaN;
  return {
    requests,
    errors,
    seconds: elapsed,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    cpuS: (cpu.user + cpu.system) / 1e6,
  };
}

/**
 * One phase against `targets` at `concurrency`. Several targets (the direct row) split the
 * connections between them, one generator each, run at once: the throughput is their sum and
 * the latency quantiles the worse of theirs.
 */
async function load(targets: string[], concurrency: number, seconds: number, script: string): Promise<Phase> {
  const ticks0 = cpuTicks();
  const split = targets.slice(0, Math.min(targets.length, concurrency));
  let parts;
  if (WRK) {
    parts = await Promise.all(
      split.map((t, i) =>
        wrk(
          t,
          Math.floor(concurrency / split.length) + (i < concurrency % split.length ? 1 : 0),
          seconds,
          script,
        ),
      ),
    );
  } else parts = [await undiciLoad(split, concurrency, seconds)];
  const ticks1 = cpuTicks();
  const total = ticks1.total - ticks0.total;
  return {
    requests: parts.reduce((s, p) => s + p.requests, 0),
    errors: parts.reduce((s, p) => s + p.errors, 0),
    seconds: Math.max(...parts.map((p) => p.seconds)),
    p50Ms: Math.max(...parts.map((p) => p.p50Ms)),
    p99Ms: Math.max(...parts.map((p) => p.p99Ms)),
    generatorCpuS: parts.reduce((s, p) => s + p.cpuS, 0),
    machineBusy: total > 0 ? (ticks1.busy - ticks0.busy) / total : NaN,
  };
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Phases of one row: throughput over all, quantiles as the request-weighted mean of the phases'. */
function summarize(phases: Phase[]) {
  const requests = phases.reduce((s, p) => s + p.requests, 0);
  const seconds = phases.reduce((s, p) => s + p.seconds, 0);
  const weighted = (f: (p: Phase) => number): number =>
    phases.reduce((s, p) => s + f(p) * p.requests, 0) / Math.max(1, requests);
  const generatorCpuS = phases.reduce((s, p) => s + p.generatorCpuS, 0);
  return {
    requests,
    errors: phases.reduce((s, p) => s + p.errors, 0),
    throughputRps: Math.round((requests / seconds) * 10) / 10,
    p50Ms: r3(weighted((p) => p.p50Ms)),
    p99Ms: r3(weighted((p) => p.p99Ms)),
    generator: {
      cpuMicrosecondsPerRequest: Math.round((generatorCpuS * 1e6) / Math.max(1, requests)),
      /** Cores the generator kept busy on average (of os.cpus().length). */
      cores: r3(generatorCpuS / seconds),
    },
    machineBusy: r3(phases.reduce((s, p) => s + p.machineBusy * p.seconds, 0) / seconds),
  };
}

/** What the proxy process itself spent per request (user and kernel), independent of the machine's load. */
function proxyCost(cpu: { user: number; system: number }, requests: number) {
  const per = (us: number): number => Math.round(us / Math.max(1, requests));
  return {
    cpuMicrosecondsPerRequest: per(cpu.user + cpu.system),
    cpuSplitMicroseconds: { user: per(cpu.user), system: per(cpu.system) },
  };
}

type Row = 'direct' | 'router' | 'nginx' | 'routerMirror' | 'floor' | 'rawFloor' | 'baseline';
const ALL_ROWS: Row[] = ['direct', 'router', 'nginx', 'routerMirror', 'floor', 'rawFloor', 'baseline'];

async function main(): Promise<void> {
  const levels = (textArg('concurrency') ?? '')
    .split(',')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
  const concurrencies = levels.length > 0 ? levels : [1, 16, 64];
  const seconds = arg('seconds', 5);
  const rounds = arg('rounds', 2);
  const tag = textArg('tag');
  const profDir = textArg('cpu-prof');
  // Another build of this project (a checkout's root, built): its router as the `baseline` row,
  // with the target row's route, to measure one change against the build before it.
  const baselineDir = textArg('baseline');
  const baselineScript = baselineDir ? path.resolve(baselineDir, 'dist', 'bench', 'router.js') : undefined;
  if (baselineScript && !fs.existsSync(baselineScript)) throw new Error(`--baseline: no ${baselineScript}`);
  const wanted = (textArg('rows') ?? ALL_ROWS.join(',')).split(',') as Row[];
  const unknown = wanted.filter((r) => !ALL_ROWS.includes(r));
  if (unknown.length > 0)
    throw new Error(`--rows: unknown ${unknown.join(',')}; expected some of ${ALL_ROWS.join(',')}`);
  const rows = ALL_ROWS.filter(
    (r) => wanted.includes(r) && (r !== 'nginx' || NGINX) && (r !== 'baseline' || baselineScript),
  );
  if (!NGINX)
    process.stderr.write(
      'bench:router: nginx not found, the reference is SKIPPED (bash scripts/tools.sh nginx)\n',
    );
  if (!WRK)
    process.stderr.write(
      'bench:router: wrk not found (bash scripts/tools.sh wrk): the load generator is an in-process undici loop, ' +
        'whose CPU is taken from the proxies measured\n',
    );
  const routerArgv = profDir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profDir)] : [];
  const children: ChildProcess[] = [];
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-bench-router-'));
  const script = path.join(scratch, 'infer.lua');
  fs.writeFileSync(script, WRK_SCRIPT);
  let nginxDir: string | undefined;
  try {
    const [v1, v2, shadow, router, mirrorRouter, baseline] = await Promise.all([
      spawnRole('server', ['--file', 'fraud-v1.onnx']),
      spawnRole('server', ['--file', 'fraud-v2.onnx']),
      spawnRole('server', ['--file', 'fraud-v3.onnx']),
      spawnRole('router', [], routerArgv),
      spawnRole('router', [], routerArgv),
      baselineScript ? spawnRole('router', [], routerArgv, baselineScript) : undefined,
    ]);
    children.push(v1.child, v2.child, shadow.child, router.child, mirrorRouter.child);
    if (baseline) children.push(baseline.child);
    const floor = await spawnRole('floor', ['--upstreams', `${v1.url},${v2.url}`]);
    children.push(floor.child);
    const rawFloor = await spawnRole('rawFloor', ['--upstreams', `${v1.url},${v2.url}`]);
    children.push(rawFloor.child);
    const nginx = NGINX ? await startNginx([v1.url, v2.url]) : undefined;
    if (nginx) {
      children.push(nginx.child);
      nginxDir = nginx.dir;
    }
    const weighted = [
      { name: 'v1', endpoints: [v1.url], weight: 50 },
      { name: 'v2', endpoints: [v2.url], weight: 50 },
    ];
    const routes: [string, unknown][] = [
      [router.url, { variants: weighted }],
      ...(baseline ? [[baseline.url, { variants: weighted }] as [string, unknown]] : []),
      [
        mirrorRouter.url,
        {
          variants: [...weighted, { name: 'v3', endpoints: [shadow.url], weight: 0 }],
          mirror: { variant: 'v3', percent: 10 },
        },
      ],
    ];
    for (const [url, route] of routes) {
      const res = await fetch(`${url}/admin/routes/fraud`, { method: 'PUT', body: JSON.stringify(route) });
      if (res.status !== 200) throw new Error(`route refused: ${await res.text()}`);
    }
    const targets: Record<Row, string[]> = {
      direct: [v1.url, v2.url],
      router: [router.url],
      nginx: nginx ? [nginx.url] : [],
      routerMirror: [mirrorRouter.url],
      baseline: baseline ? [baseline.url] : [],
      floor: [floor.url],
      rawFloor: [rawFloor.url],
    };
    const routerOf: Partial<Record<Row, ChildProcess>> = {
      router: router.child,
      routerMirror: mirrorRouter.child,
      floor: floor.child,
      rawFloor: rawFloor.child,
      ...(baseline ? { baseline: baseline.child } : {}),
    };
    const cpuOf = (child: ChildProcess): Promise<NodeJS.CpuUsage> =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve((m as { cpu: NodeJS.CpuUsage }).cpu));
        child.send('cpu');
      });
    // nginx's CPU (master and worker) from /proc, in µs, as its reference cost per request.
    const nginxCpu = (): NodeJS.CpuUsage => {
      const pids = [nginx!.child.pid!];
      try {
        pids.push(
          ...fs
            .readFileSync(`/proc/${pids[0]}/task/${pids[0]}/children`, 'utf8')
            .trim()
            .split(/\s+/)
            .filter(Boolean)
            .map(Number),
        );
      } catch {
        // no /proc: only the master, which does no proxying
      }
      const tick = 1e6 / 100; // USER_HZ is 100 on Linux
      let user = 0;
      let system = 0;
      for (const pid of pids) {
        try {
          const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
          const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
          user += Number(v[11]) * tick;
          system += Number(v[12]) * tick;
        } catch {
          // gone
        }
      }
      return { user, system };
    };
    const proxyCpu = (row: Row): Promise<NodeJS.CpuUsage> | undefined => {
      const proc = routerOf[row];
      if (proc) return cpuOf(proc);
      if (row === 'nginx' && nginx) return Promise.resolve(nginxCpu());
      return undefined;
    };
    for (const row of rows) await load(targets[row], 16, 1, script); // warm-up
    const counter = async (url: string, name: string): Promise<number> => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return Number(new RegExp(`${name}\\{[^}]*\\} (\\d+)`).exec(text)?.[1] ?? 0);
    };

    /** Every row at one concurrency, alternating so drift on a shared machine hits all alike. */
    const compare = async (concurrency: number) => {
      const phases = new Map<Row, Phase[]>(rows.map((r) => [r, []]));
      const proxyCpuUs = new Map<Row, { user: number; system: number }>();
      const mirrored0 = await counter(mirrorRouter.url, 'runway_router_mirrored_total');
      const dropped0 = await counter(mirrorRouter.url, 'runway_router_mirror_dropped_total');
      for (let r = 0; r < rounds; r++) {
        for (const row of rows) {
          const before = await proxyCpu(row);
          phases.get(row)!.push(await load(targets[row], concurrency, seconds, script));
          const after = await proxyCpu(row);
          if (before && after) {
            const acc = proxyCpuUs.get(row) ?? { user: 0, system: 0 };
            acc.user += after.user - before.user;
            acc.system += after.system - before.system;
            proxyCpuUs.set(row, acc);
          }
        }
      }
      const out: Record<string, unknown> = {
        concurrency,
        loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
      };
      const s = new Map(rows.map((r) => [r, summarize(phases.get(r)!)]));
      for (const row of rows) {
        const sum = s.get(row)!;
        out[row] = {
          ...sum,
          ...(proxyCpuUs.has(row) ? proxyCost(proxyCpuUs.get(row)!, sum.requests) : {}),
          ...(row === 'routerMirror'
            ? {
                mirrored: (await counter(mirrorRouter.url, 'runway_router_mirrored_total')) - mirrored0,
                mirrorDropped:
                  (await counter(mirrorRouter.url, 'runway_router_mirror_dropped_total')) - dropped0,
              }
            : {}),
        };
      }
      const ratio = (a: Row, b: Row): number | undefined =>
        s.has(a) && s.has(b) ? r3(s.get(a)!.throughputRps / s.get(b)!.throughputRps) : undefined;
      const n = s.get('nginx');
      const t = s.get('router');
      out.ratios = {
        routerToNginx: ratio('router', 'nginx'),
        routerMirrorToNginx: ratio('routerMirror', 'nginx'),
        routerToDirect: ratio('router', 'direct'),
        floorToNginx: ratio('floor', 'nginx'),
        routerToFloor: ratio('router', 'floor'),
        rawFloorToNginx: ratio('rawFloor', 'nginx'),
        ...(baseline
          ? { routerToBaseline: ratio('router', 'baseline'), baselineToNginx: ratio('baseline', 'nginx') }
          : {}),
        nginxToDirect: ratio('nginx', 'direct'),
        routerAddedP50MsOverNginx: n && t ? r3(t.p50Ms - n.p50Ms) : undefined,
      };
      // Each round's router/nginx (rows of a round run back to back): the spread is the machine's noise.
      const perRound = (a: Row, b: Row): number[] | undefined =>
        phases.has(a) && phases.has(b)
          ? phases
              .get(a)!
              .map((p, i) =>
                r3(p.requests / p.seconds / (phases.get(b)![i]!.requests / phases.get(b)![i]!.seconds)),
              )
          : undefined;
      out.perRound = { routerToNginx: perRound('router', 'nginx'), floorToNginx: perRound('floor', 'nginx') };
      if (n && t) out.target = { routerAtLeast75PercentOfNginx: t.throughputRps / n.throughputRps >= 0.75 };
      process.stderr.write(`bench:router: c=${concurrency} ${JSON.stringify(out.ratios)}\n`);
      return out;
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
        loadavgAtEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
      },
      setup: {
        secondsPerPhase: seconds,
        rounds,
        rows,
        generator: WRK
          ? `wrk (${WRK}), 1 thread, a fresh x-request-id per request (Lua request())`
          : 'in-process undici loop (wrk not installed)',
        direct: 'straight to the v1 and v2 servers, the connections split over both',
        router:
          'runway router, route v1/v2 weighted 50/50, per-variant metrics, feedback attribution (x-request-id), no mirror',
        nginx: NGINX
          ? 'nginx (Debian), 1 worker, upstream v1/v2 weight 50/50, keepalive 256, no mirror, access log off'
          : 'not installed',
        routerMirror: 'a second runway router: the same route plus a 10% mirror to v3 (fraud-v3, weight 0)',
        floor:
          "a bare Node proxy: node:http and the router's upstream client, alternating v1/v2, no routes, metrics or feedback (the floor of a Node proxy here)",
        rawFloor:
          'the same bare proxy without node:http: requests read from raw sockets (request line, Content-Length, body), one write per answer (what an inbound fast lane could reach)',
        ...(baselineDir
          ? { baseline: `the router built in ${baselineDir}, with the router row's route` }
          : {}),
        request: 'JSON infer, 1 row x 8 FP32 features; closed loop',
        processes:
          '3 model servers, 2 routers, the bare Node proxy, nginx, the load generator, all on this machine',
        quantiles: 'p50/p99 per phase from the generator, averaged over phases weighted by requests',
      },
      runs,
    };
    const name = `router-${result.date.slice(0, 10)}${tag ? `-${tag}` : ''}`;
    const out = path.join(projectRoot, 'bench', 'results', `${name}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    fs.writeFileSync(out.replace(/\.json$/, '.md'), markdown(result));
    process.stdout.write(markdown(result));
    process.stdout.write(`written to ${path.relative(projectRoot, out)} and .md\n`);
  } finally {
    for (const c of children) {
      // Forked roles stop when their channel closes; nginx (no channel) is told to quit.
      if (c.connected) c.disconnect();
      else c.kill('SIGQUIT');
      setTimeout(() => c.kill('SIGKILL'), 5_000).unref();
    }
    if (nginxDir) fs.rmSync(nginxDir, { recursive: true, force: true });
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

interface RowSummary {
  throughputRps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  cpuMicrosecondsPerRequest?: number;
  cpuSplitMicroseconds?: { user: number; system: number };
  generator: { cpuMicrosecondsPerRequest: number; cores: number };
  machineBusy: number;
}

function markdown(result: {
  date: string;
  machine: { cpus: number; loadavgAtEnd: number[] };
  setup: { generator: string; secondsPerPhase: number; rounds: number };
  runs: Record<string, unknown>[];
}): string {
  const lines = [
    `# Router vs nginx, ${result.date}`,
    '',
    `${result.machine.cpus} CPUs; generator: ${result.setup.generator}; ${result.setup.rounds} rounds × ${result.setup.secondsPerPhase} s per row.`,
    'Target: the `router` row (weighted 50/50, metrics, feedback attribution, no mirror) at ≥ 0.75 of nginx at c=16 and c=64.',
    '',
    '| c | row | req/s | / nginx | p50 ms | p99 ms | errors | proxy CPU µs/req (user+sys) | generator µs/req (cores) | machine busy | load avg |',
    '|---|-----|------:|--------:|-------:|-------:|-------:|----------------------------:|-------------------------:|-------------:|---------:|',
  ];
  for (const run of result.runs) {
    const nginx = run.nginx as RowSummary | undefined;
    for (const row of ALL_ROWS) {
      const s = run[row] as RowSummary | undefined;
      if (!s) continue;
      lines.push(
        `| ${String(run.concurrency)} | ${row} | ${s.throughputRps} | ${nginx ? r3(s.throughputRps / nginx.throughputRps) : '—'} | ${s.p50Ms} | ${s.p99Ms} | ${s.errors} | ${s.cpuSplitMicroseconds ? `${s.cpuMicrosecondsPerRequest} (${s.cpuSplitMicroseconds.user}+${s.cpuSplitMicroseconds.system})` : '—'} | ${s.generator.cpuMicrosecondsPerRequest} (${s.generator.cores}) | ${Math.round(s.machineBusy * 100)}% | ${(run.loadavg as number[])[0]} |`,
      );
    }
  }
  lines.push('', 'Router / nginx in each round (the rows of a round run back to back):', '');
  for (const run of result.runs) {
    const per = (run.perRound as { routerToNginx?: number[] } | undefined)?.routerToNginx;
    if (per) {
      const sorted = [...per].sort((x, y) => x - y);
      const mid = sorted.length / 2;
      const median = sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
      lines.push(`- c=${String(run.concurrency)}: ${per.join(', ')} (median ${r3(median)})`);
    }
  }
  return lines.join('\n') + '\n';
}

const role = process.argv.indexOf('--role');
(role >= 0 ? runRole(process.argv[role + 1]!) : main()).catch((err: unknown) => {
  process.stderr.write(`bench:router: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
