/**
 * Router overhead: throughput and p50/p99 latency through the runway router vs straight to the
 * model servers, at the same concurrency, with 2 weighted variants (50/50) and a 10% mirror to a
 * shadow. The direct baseline spreads its requests over the same two servers, so both sides
 * have the same serving capacity; the router additionally pays for the mirror copies.
 *
 * Model servers and the router run as separate processes (this file re-run with `--role`), so
 * the load generator does not share their event loops.
 *
 *   npm run bench:router -- [--concurrency 1,16] [--seconds 5] [--rounds 2]
 * Writes bench/results/router-<date>.json.
 */
import { fork, type ChildProcess } from 'node:child_process';
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
  try {
    const [v1, v2, shadow, router] = await Promise.all([
      spawnRole('server', ['--file', 'fraud-v1.onnx']),
      spawnRole('server', ['--file', 'fraud-v2.onnx']),
      spawnRole('server', ['--file', 'fraud-v3.onnx']),
      spawnRole('router'),
    ]);
    children.push(v1.child, v2.child, shadow.child, router.child);
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
    const counter = async (name: string): Promise<number> => {
      const text = await (await fetch(`${router.url}/metrics`)).text();
      return Number(new RegExp(`${name}\\{[^}]*\\} (\\d+)`).exec(text)?.[1] ?? 0);
    };

    /** Direct vs routed at one concurrency, alternating so drift on a shared machine hits both alike. */
    const compare = async (concurrency: number) => {
      let routerCpuUs = 0;
      const direct: Phase[] = [];
      const routed: Phase[] = [];
      const mirrored0 = await counter('runway_router_mirrored_total');
      const dropped0 = await counter('runway_router_mirror_dropped_total');
      for (let r = 0; r < rounds; r++) {
        direct.push(await load([v1.url, v2.url], concurrency, seconds, true));
        const before = await routerCpu();
        routed.push(await load([router.url], concurrency, seconds, true));
        routerCpuUs += (await routerCpu()) - before;
      }
      const d = summarize(direct);
      const t = summarize(routed);
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
        overhead: {
          addedP50Ms: Math.round((t.p50Ms - d.p50Ms) * 1000) / 1000,
          addedP99Ms: Math.round((t.p99Ms - d.p99Ms) * 1000) / 1000,
          throughputRatio: Math.round((t.throughputRps / d.throughputRps) * 1000) / 1000,
        },
        targets: {
          addedP50UnderOneMs: t.p50Ms - d.p50Ms < 1,
          throughputAtLeast70Percent: t.throughputRps / d.throughputRps >= 0.7,
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
      if (c.connected) c.disconnect();
      setTimeout(() => c.kill('SIGKILL'), 5_000).unref();
    }
  }
}

const role = process.argv.indexOf('--role');
(role >= 0 ? runRole(process.argv[role + 1]!) : main()).catch((err: unknown) => {
  process.stderr.write(`bench:router: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
