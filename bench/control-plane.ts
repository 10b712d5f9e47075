/**
 * `npm run bench:control-plane`: how many promotions one worker and the Temporal dev server carry
 * on this machine. N promotions run the real workflow code in their canary step, looking every
 * `--interval` (30 s), with stub fleet, router and metrics activities that answer at once, so only
 * the control plane is measured. Levels (`--levels 100,200,500`) run one after another.
 *
 * Per level: how late each analysis look starts against its schedule (the previous look's end +
 * the interval), p50 / p99 / max, and the share of looks more than 10% of the interval late;
 * worker CPU (this process: the client is idle while measuring) and memory; dev-server CPU; history
 * events per look and per promotion. The reference, side by side in the same process: the same
 * number of bare Node timers on the same schedule, whose lateness is the floor any scheduler
 * here would see. Writes bench/results/control-plane-<date>.json and a markdown table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { AnalyzeInput, IntervalAnalysis, SetTrafficInput } from '../activities/contracts';
import type { Activities } from '../activities';
import { createLogger } from '../common/log';
import { projectRoot } from '../common/paths';
import { parseSpec } from '../specs/load';
import { promotionWorkflowId, type PromotionInput, type Verdict } from '../workflows/api';
import { ensureTemporal } from '../workers/temporal-server';

const log = createLogger('bench-control-plane');

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const INTERVAL_MS = Number(flag('interval-ms', '30000'));
const LEVELS = flag('levels', '100,200,500').split(',').map(Number);
/** Looks measured per promotion after the start-up interval. */
const LOOKS = Number(flag('looks', '2'));

/** What the stub activities saw, per workflow: when its last look (or window) ended. */
const lastEnd = new Map<string, number>();
/** Looks taken so far, per workflow. */
const looksBy = new Map<string, number>();
let lookLateness: number[] = [];
let measuring = false;

const pass = (check: string): Verdict => ({ check, result: 'pass', reason: 'ok (stub)' });

function stubActivities(): Activities {
  const wfId = (): string => Context.current().info.workflowExecution?.workflowId ?? '?';
  const snapshot = (model: string) => ({
    model,
    takenAt: new Date().toISOString(),
    epoch: 'stub',
    variants: {},
  });
  const activities = {
    prepareCandidate: async (i: { model: string; version: string }) => ({
      candidate: { version: i.version, sha256: 'x', artifactPath: '/stub' },
      baseline: { version: '1', sha256: 'y', artifactPath: '/stub' },
    }),
    evaluate: async () => pass('evaluation'),
    deploy: async (i: { model: string; version: string; environment: string }) => ({
      name: `${i.model}-v${i.version}-${i.environment}`,
      endpoints: ['http://127.0.0.1:1'],
    }),
    teardown: async () => undefined,
    integrationTest: async () => pass('integration'),
    updateRegistry: async () => undefined,
    setTraffic: async (i: SetTrafficInput) => ({ model: i.model, variants: i.variants }),
    removeRoute: async () => undefined,
    notify: async () => undefined,
    snapshotMetrics: async (i: { model: string }) => {
      lastEnd.set(wfId(), Date.now());
      return snapshot(i.model);
    },
    analyzeInterval: async (i: AnalyzeInput): Promise<IntervalAnalysis> => {
      const id = wfId();
      const start = Date.now();
      const prev = lastEnd.get(id);
      if (measuring && prev !== undefined) lookLateness.push(start - prev - INTERVAL_MS);
      lastEnd.set(id, Date.now());
      looksBy.set(id, (looksBy.get(id) ?? 0) + 1);
      return { snapshot: snapshot(i.model), gap: false, guard: pass('slo'), comparison: pass('comparison') };
    },
  };
  // Only the calls a canary step makes; the real return types carry more than the workflow reads.
  return activities as unknown as Activities;
}

/** The same schedule on bare Node timers: each fires `interval` after the last one ended. */
function referenceTimers(n: number): { lateness: number[]; stop(): void } {
  const lateness: number[] = [];
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;
  for (let k = 0; k < n; k++) {
    const arm = (due: number): void => {
      if (stopped) return;
      timers[k] = setTimeout(() => {
        const now = Date.now();
        if (measuring) lateness.push(now - due);
        arm(Date.now() + INTERVAL_MS);
      }, due - Date.now());
    };
    arm(Date.now() + Math.random() * INTERVAL_MS);
  }
  return {
    lateness,
    stop() {
      stopped = true;
      timers.forEach((t) => clearTimeout(t));
    },
  };
}

function spec(name: string) {
  return parseSpec(
    {
      name,
      owner: 'bench',
      model: {
        signature: {
          inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 8] }],
          outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
        },
      },
      slos: { p99LatencyMs: 250, errorRate: 0.02 },
      evaluation: { dataset: '/stub/eval.json', min: 0.5 },
      approval: { required: 0 },
      shadow: { enabled: false },
      canary: {
        interval: `${INTERVAL_MS}ms`,
        steps: [
          { weight: 10, pause: '24h' },
          { weight: 100, pause: '0s' },
        ],
      },
    },
    `bench spec ${name}`,
  );
}

/** CPU seconds (user + system) of a process, from /proc. */
function procCpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz)
}

const quantile = (xs: number[], q: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

interface LevelResult {
  promotions: number;
  looks: number;
  lateP50Ms: number;
  lateP99Ms: number;
  lateMaxMs: number;
  shareOver10pct: number;
  referenceP99Ms: number;
  p99VsReference: number;
  workerCpuPct: number;
  serverCpuPct: number;
  workerRssMb: number;
  workerHeapMb: number;
  eventLoopP99Ms: number;
  historyEventsPerLook: number;
  historyEventsBeforeFirstLook: number;
  measuredS: number;
  /** From the first start until every promotion had taken its first canary look. */
  startupS: number;
  /** Promotions that reached their canary (all, unless start-up took over 10 intervals). */
  inCanary: number;
}

async function runLevel(
  client: Client,
  taskQueue: string,
  n: number,
  serverPid: number | undefined,
): Promise<LevelResult> {
  lookLateness = [];
  lastEnd.clear();
  looksBy.clear();
  const t00 = Date.now();
  const ids: string[] = [];
  // Starts spread over one interval, as promotions begun by different pipelines would be.
  const startSpread = INTERVAL_MS;
  await Promise.all(
    Array.from({ length: n }, async (_, k) => {
      await new Promise((r) => setTimeout(r, (k / n) * startSpread));
      const name = `bench-${n}-${k}`;
      const input: PromotionInput = {
        spec: spec(name),
        specSha256: 'bench',
        version: '2',
        triggeredBy: 'bench',
      };
      const workflowId = promotionWorkflowId(name);
      ids.push(workflowId);
      await client.workflow.start('promotionWorkflow', { taskQueue, workflowId, args: [input] });
    }),
  );
  // Start-up (evaluate, staging, deploys: ~12 activities each) is a burst of its own: measure the
  // steady state only, once every promotion has taken its first canary look.
  const cap = Date.now() + 10 * INTERVAL_MS;
  while (looksBy.size < n && Date.now() < cap) await new Promise((r) => setTimeout(r, 200));
  const startupS = (Date.now() - t00) / 1000;
  const inCanary = looksBy.size;
  const sample = ids.slice(0, 5);
  const historyAt = async () =>
    Promise.all(
      sample.map(async (id) => ({
        events: (await client.workflow.getHandle(id).describe()).historyLength,
        looks: looksBy.get(id) ?? 0,
      })),
    );
  const h0 = await historyAt();
  const reference = referenceTimers(n);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const server0 = serverPid ? procCpuSeconds(serverPid) : 0;
  const t0 = Date.now();
  measuring = true;
  let peakRss = 0;
  let peakHeap = 0;
  const mem = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 1_000);
  await new Promise((r) => setTimeout(r, LOOKS * INTERVAL_MS));
  measuring = false;
  clearInterval(mem);
  const elapsedS = (Date.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const serverCpu = serverPid ? procCpuSeconds(serverPid) - server0 : NaN;
  loop.disable();
  reference.stop();
  const h1 = await historyAt();
  const eventsPerLook =
    h1.reduce((a, b, i) => a + (b.events - h0[i]!.events), 0) /
    Math.max(
      h1.reduce((a, b, i) => a + (b.looks - h0[i]!.looks), 0),
      1,
    );
  // The events a promotion had when its first canary look began: start, checks, deploys, route.
  const before = quantile(
    h0.map((h) => h.events - h.looks * eventsPerLook),
    0.5,
  );
  await Promise.all(
    ids.map((id) =>
      client.workflow
        .getHandle(id)
        .terminate('benchmark level done')
        .catch(() => undefined),
    ),
  );
  const late = lookLateness;
  const ref = reference.lateness;
  const result: LevelResult = {
    promotions: n,
    looks: late.length,
    lateP50Ms: quantile(late, 0.5),
    lateP99Ms: quantile(late, 0.99),
    lateMaxMs: Math.max(...late),
    shareOver10pct: late.filter((x) => x > 0.1 * INTERVAL_MS).length / Math.max(late.length, 1),
    referenceP99Ms: quantile(ref, 0.99),
    p99VsReference: quantile(late, 0.99) / Math.max(quantile(ref, 0.99), 1),
    workerCpuPct: ((cpu.user + cpu.system) / 1e6 / elapsedS) * 100,
    serverCpuPct: (serverCpu / elapsedS) * 100,
    workerRssMb: peakRss / 2 ** 20,
    workerHeapMb: peakHeap / 2 ** 20,
    eventLoopP99Ms: loop.percentile(99) / 1e6,
    historyEventsPerLook: eventsPerLook,
    historyEventsBeforeFirstLook: before,
    measuredS: elapsedS,
    startupS,
    inCanary,
  };
  log.info('level done', { ...result });
  return result;
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-bench-temporal-'));
  const endpoint = await ensureTemporal({ dataDir, port: 'auto', uiPort: 'auto' });
  const serverState = JSON.parse(fs.readFileSync(path.join(dataDir, 'server.json'), 'utf8')) as {
    pid?: number;
  };
  const load0 = os.loadavg();
  const taskQueue = `bench-${process.pid}`;
  const connection = await Connection.connect(endpoint.connectionOptions);
  const client = new Client({ connection, namespace: endpoint.namespace });
  const native = await NativeConnection.connect(endpoint.connectionOptions);
  const worker = await Worker.create({
    connection: native,
    namespace: endpoint.namespace,
    taskQueue,
    activities: stubActivities(),
    workflowsPath: path.join(projectRoot, 'workflows', 'index.ts'),
  });
  const started = Date.now();
  const levels: LevelResult[] = [];
  try {
    await worker.runUntil(async () => {
      for (const n of LEVELS) levels.push(await runLevel(client, taskQueue, n, serverState.pid));
    });
  } finally {
    await native.close();
    await connection.close();
    await endpoint.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  const date = new Date().toISOString().slice(0, 10);
  const result = {
    date,
    intervalMs: INTERVAL_MS,
    looksMeasuredPerPromotion: LOOKS,
    machine: { cpus: os.cpus().length, loadAvgAtStart: load0, loadAvgAtEnd: os.loadavg() },
    server: 'temporal server start-dev (SQLite, one process)',
    worker: 'one in-process Worker, SDK defaults',
    levels,
    elapsedS: (Date.now() - started) / 1000,
  };
  const dir = path.join(projectRoot, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `control-plane-${date}.json`), JSON.stringify(result, null, 1) + '\n');
  fs.writeFileSync(path.join(dir, `control-plane-${date}.md`), markdown(result));
  log.info('wrote results', { dir: path.relative(projectRoot, dir), elapsedS: result.elapsedS });
}

function markdown(r: {
  date: string;
  intervalMs: number;
  machine: { cpus: number; loadAvgAtStart: number[]; loadAvgAtEnd: number[] };
  levels: LevelResult[];
}): string {
  const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const rows = r.levels.map(
    (l) =>
      `| ${l.promotions} | ${f(l.startupS)}${l.inCanary < l.promotions ? ` (${l.inCanary} in canary)` : ''} | ${l.looks} | ${f(l.lateP50Ms)} | ${f(l.lateP99Ms)} | ${f(l.lateMaxMs)} | ${f(l.shareOver10pct * 100, 1)}% | ${f(l.referenceP99Ms)} | ${f(l.p99VsReference, 1)}× | ${f(l.workerCpuPct)}% | ${f(l.serverCpuPct)}% | ${f(l.workerRssMb)} | ${f(l.historyEventsPerLook, 1)} |`,
  );
  return `# Control-plane scale, ${r.date}

Promotions in their canary step, looking every ${r.intervalMs / 1000} s, on one worker and the Temporal
dev server, with stub fleet, router and metrics activities (\`npm run bench:control-plane\`).
Start-up: from the first start until every promotion took its first canary look (starts spread
over one interval; each runs ~12 activities before its canary). Measured after it, over the
intervals that follow: lateness, a look's start against its schedule (previous look's end +
interval). Reference: as
many bare Node timers on the same schedule in the same process. ${r.machine.cpus} cores; load average
${r.machine.loadAvgAtStart.map((x) => x.toFixed(1)).join(' / ')} at the start,
${r.machine.loadAvgAtEnd.map((x) => x.toFixed(1)).join(' / ')} at the end (the machine is shared).

| promotions | start-up s | looks | late p50 ms | late p99 ms | late max ms | > 10% late | reference p99 ms | p99 / reference | worker CPU (one core) | dev server CPU | worker RSS MiB | history events / look |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

History per promotion: about ${f(r.levels[0]?.historyEventsBeforeFirstLook ?? NaN)} events before the first canary look,
then ${f(r.levels[0]?.historyEventsPerLook ?? NaN, 1)} per look; a default spec (10 min shadow, three 5 min steps at a
1 min interval: 25 looks) ends near ${f((r.levels[0]?.historyEventsBeforeFirstLook ?? NaN) + 25 * (r.levels[0]?.historyEventsPerLook ?? NaN))}
events, and a 14-day A/B at 1 min continues as new every ~${f(10_000 / (r.levels[0]?.historyEventsPerLook ?? NaN))} looks.
`;
}

main().catch((err) => {
  log.error('benchmark failed', { error: err instanceof Error ? err.stack : String(err) });
  process.exit(1);
});
