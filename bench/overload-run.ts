/**
 * Overload harness, shared by `npm run bench:overload` and test/integration/fault-overload.test.ts:
 * a real `runway serve` process, its capacity measured closed-loop, then an open-loop load (a
 * fixed arrival rate that does not slow down when the server does, as real clients behave) at a
 * multiple of that capacity, then at a fraction of it to see it recover. The server's RSS is
 * sampled from /proc throughout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import { runwayBin } from '../common/paths';
import { sigkillAndWait } from '../common/process';
import { RawHttpClient } from './raw-http';

export interface OverloadConfig {
  model: string;
  /** `runway serve` flags besides model/name/port. */
  serveArgs: string[];
  /** Another build's bin/runway.js for the server (an A/B of one change in one run). */
  bin?: string;
  capacityMs: number;
  /**
   * Closed-loop clients of the capacity phase (default 64). Set to what the server holds at once
   * under overload (queue bound + one batch) to compare accepted latency at the same concurrency.
   */
  capacityConcurrency?: number;
  overloadMs: number;
  overloadFactor: number;
  recoveryMs: number;
  recoveryFactor: number;
  /** Requests the generator keeps in flight at most; beyond it a due request is counted as not sent. */
  maxInFlight: number;
  /** Send through a `runway router` process (one route, one variant) instead of to the server. */
  viaRouter?: boolean;
  log?: (line: string) => void;
}

export interface PhaseResult {
  phase: string;
  seconds: number;
  offeredRps: number;
  sent: number;
  /** Due but not sent: the generator's own in-flight bound was full (not the server's doing). */
  notSent: number;
  ok: number;
  okRps: number;
  /** 503 answers: the server's bounded queue refusing work. */
  rejected: number;
  rejectedShare: number;
  /** Any other status; `malformed`: a 200 whose answer is not what onnxruntime gives for that input. */
  otherStatus: Record<string, number>;
  malformed: number;
  /** Connection-level failures: the request never got an answer. */
  transportErrors: number;
  p50Ms: number;
  p99Ms: number;
  /** p99 of the 503 answers: how fast a refusal comes back (NaN when none). */
  rejectP99Ms: number;
  peakRssMb: number;
  /** CPU used over the phase, in cores (1 = one core busy all the time). */
  serverCpu: number;
  generatorCpu: number;
  /** With viaRouter: the router process's CPU, in cores. */
  routerCpu?: number;
}

export interface OverloadResult {
  idleRssMb: number;
  capacityRps: number;
  phases: PhaseResult[];
  serverAlive: boolean;
  /** With viaRouter: what the router counted over the whole run (its /metrics). */
  router?: { failovers: number; upstreamErrors: number; answered5xx: number; routerAlive: boolean };
}

/** Distinct requests with the answers onnxruntime gives in this process: a swapped or corrupted answer is caught. */
interface Probe {
  body: string;
  expected: number;
  /** The whole HTTP request, prepared once (see raw-http.ts). */
  request?: Buffer;
}

const PROBES = 64;

async function makeProbes(model: string): Promise<Probe[]> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  try {
    const rows = Array.from({ length: PROBES }, (_, i) =>
      Array.from({ length: 8 }, (_, k) => Math.round(Math.sin(i * 8 + k) * 1000) / 1000),
    );
    const input = new ort.Tensor('float32', Float32Array.from(rows.flat()), [PROBES, 8]);
    const out = await session.run({ [session.inputNames[0]!]: input });
    const scores = out[session.outputNames[0]!]!.data as Float32Array;
    return rows.map((row, i) => ({
      body: JSON.stringify({
        inputs: [{ name: session.inputNames[0], datatype: 'FP32', shape: [1, 8], data: row }],
      }),
      expected: scores[i]!,
    }));
  } finally {
    await session.release();
  }
}

const quantile = (sorted: number[], q: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** utime + stime of a process, in seconds, from /proc/<pid>/stat (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return Math.round((kb / 1024) * 10) / 10;
}

/** Servers started here and not yet exited, for stopOverloadServers(). */
const servers = new Set<ChildProcess>();

/** SIGKILLs any server a run left behind: a test that timed out never reached runOverload's cleanup. */
export async function stopOverloadServers(): Promise<void> {
  await Promise.all([...servers].map((c) => (c.pid ? sigkillAndWait(c.pid) : undefined)));
}

/**
 * A `runway <command>` child tracked for stopOverloadServers(), once its stdout has said where it
 * listens: `urlFrom` reads the URL from what it printed so far (undefined: not yet; it throws when
 * the output is not what the command prints).
 */
async function startChild(
  command: string,
  args: string[],
  urlFrom: (out: string) => string | undefined,
  bin = runwayBin,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [bin, command, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUNWAY_LOG_LEVEL: 'warn' },
  });
  servers.add(child);
  child.once('exit', () => servers.delete(child));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`runway ${command} did not start: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        const found = urlFrom(out);
        if (found === undefined) return;
        clearTimeout(timer);
        resolve(found);
      } catch (e) {
        clearTimeout(timer);
        reject(e as Error);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`runway ${command} exited ${code}: ${err}`));
    });
  });
  return { child, url };
}

function startServer(
  cfg: Pick<OverloadConfig, 'model' | 'serveArgs' | 'bin'>,
): Promise<{ child: ChildProcess; url: string }> {
  return startChild(
    'serve',
    ['--model', cfg.model, '--name', 'm', '--port', '0', ...cfg.serveArgs],
    (out) => /ready at (http:\/\/\S+)/.exec(out)?.[1],
    cfg.bin,
  );
}

/** A `runway router` child with one route: model `m`, one variant, the server at `serverUrl`. */
async function startRouterFor(serverUrl: string): Promise<{ child: ChildProcess; url: string }> {
  const { child, url } = await startChild('router', ['--port', '0'], (out) => {
    const nl = out.indexOf('\n');
    if (nl < 0) return undefined;
    try {
      return (JSON.parse(out.slice(0, nl)) as { url: string }).url;
    } catch {
      throw new Error(`runway router printed ${out.slice(0, nl)}`);
    }
  });
  const res = await fetch(`${url}/admin/routes/m`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ variants: [{ name: 'v1', endpoints: [serverUrl], weight: 100 }] }),
  });
  if (res.status !== 200) throw new Error(`route refused: ${await res.text()}`);
  return { child, url };
}

/** Sums of the router's own counters over the run: retries, upstream failures, 5xx answered. */
async function routerCounts(router: {
  child: ChildProcess;
  url: string;
}): Promise<NonNullable<OverloadResult['router']>> {
  const text = await (await fetch(`${router.url}/metrics`)).text();
  const sum = (name: string, filter: (labels: string) => boolean = () => true): number =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) && filter(l.slice(name.length, l.indexOf('}'))))
      .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
  return {
    failovers: sum('runway_router_failovers_total'),
    upstreamErrors: sum('runway_router_upstream_errors_total'),
    answered5xx: sum('runway_router_requests_total', (l) => l.includes('code_class="5xx"')),
    routerAlive: router.child.exitCode === null && router.child.signalCode === null,
  };
}

/** The server's answer is this probe's: the first output's first value, within float tolerance. */
function answers(body: string, probe: Probe): boolean {
  try {
    const doc = JSON.parse(body) as { outputs?: { data?: unknown[] }[] };
    const v = doc.outputs?.[0]?.data?.[0];
    return (
      typeof v === 'number' && Math.abs(v - probe.expected) <= 1e-4 * Math.max(1, Math.abs(probe.expected))
    );
  } catch {
    return false;
  }
}

/** The router process of a viaRouter run, whose CPU each phase also reads. */
let routerPid: number | undefined;

class Tally {
  private readonly cpu0: { server: number; router: number; self: NodeJS.CpuUsage };
  serverCpu = 0;
  generatorCpu = 0;
  routerCpu: number | undefined;
  private readonly routerPid = routerPid;
  constructor(private readonly pid: number) {
    this.cpu0 = {
      server: cpuSeconds(pid),
      router: this.routerPid ? cpuSeconds(this.routerPid) : 0,
      self: process.cpuUsage(),
    };
  }
  /** Closes the CPU accounting over `seconds` of wall time. */
  cpu(seconds: number): void {
    const self = process.cpuUsage(this.cpu0.self);
    const cores = (s: number): number => Math.round((s / seconds) * 100) / 100;
    this.serverCpu = cores(cpuSeconds(this.pid) - this.cpu0.server);
    this.generatorCpu = cores((self.user + self.system) / 1e6);
    if (this.routerPid) this.routerCpu = cores(cpuSeconds(this.routerPid) - this.cpu0.router);
  }
  rejectLatencies: number[] = [];
  sent = 0;
  notSent = 0;
  ok = 0;
  rejected = 0;
  malformed = 0;
  transportErrors = 0;
  other: Record<string, number> = {};
  latencies: number[] = [];
  peakRss = 0;
}

async function send(client: RawHttpClient, t: Tally, probes: Probe[]): Promise<void> {
  const start = performance.now();
  const probe = probes[t.sent % probes.length]!;
  t.sent++;
  try {
    probe.request ??= client.prepare('/v2/models/m/infer', probe.body);
    const res = await client.request(probe.request);
    if (res.status === 200) {
      if (answers(res.body.toString(), probe)) {
        t.ok++;
        t.latencies.push(performance.now() - start);
      } else t.malformed++;
    } else if (res.status === 503) {
      t.rejected++;
      t.rejectLatencies.push(performance.now() - start);
    } else t.other[res.status] = (t.other[res.status] ?? 0) + 1;
  } catch {
    t.transportErrors++;
  }
}

function summarize(phase: string, t: Tally, seconds: number, offeredRps: number): PhaseResult {
  t.cpu(seconds);
  const sorted = t.latencies.sort((a, b) => a - b);
  const answered = t.ok + t.rejected + t.malformed + Object.values(t.other).reduce((a, b) => a + b, 0);
  return {
    phase,
    seconds: Math.round(seconds * 100) / 100,
    offeredRps: Math.round(offeredRps),
    sent: t.sent,
    notSent: t.notSent,
    ok: t.ok,
    okRps: Math.round(t.ok / seconds),
    rejected: t.rejected,
    rejectedShare: answered > 0 ? Math.round((t.rejected / answered) * 10_000) / 10_000 : 0,
    otherStatus: t.other,
    malformed: t.malformed,
    transportErrors: t.transportErrors,
    p50Ms: Math.round(quantile(sorted, 0.5) * 100) / 100,
    p99Ms: Math.round(quantile(sorted, 0.99) * 100) / 100,
    rejectP99Ms:
      Math.round(
        quantile(
          t.rejectLatencies.sort((a, b) => a - b),
          0.99,
        ) * 100,
      ) / 100,
    peakRssMb: t.peakRss,
    serverCpu: t.serverCpu,
    generatorCpu: t.generatorCpu,
    ...(t.routerCpu !== undefined ? { routerCpu: t.routerCpu } : {}),
  };
}

/** Closed loop: `concurrency` clients back to back; the server's sustainable rate. */
async function closedLoop(
  pool: RawHttpClient,
  probes: Probe[],
  concurrency: number,
  ms: number,
  pid: number,
): Promise<PhaseResult> {
  const t = new Tally(pid);
  const until = performance.now() + ms;
  const t0 = performance.now();
  const rss = setInterval(() => (t.peakRss = Math.max(t.peakRss, rssMb(pid))), 200);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) await send(pool, t, probes);
    }),
  );
  clearInterval(rss);
  const seconds = (performance.now() - t0) / 1000;
  return summarize('capacity (closed loop)', t, seconds, t.sent / seconds);
}

/** Open loop: requests fall due at `rps` whatever the server does. */
async function openLoop(
  pool: RawHttpClient,
  probes: Probe[],
  phase: string,
  rps: number,
  ms: number,
  pid: number,
  maxInFlight: number,
): Promise<PhaseResult> {
  const t = new Tally(pid);
  const inFlight = new Set<Promise<void>>();
  const t0 = performance.now();
  let due = 0;
  const rss = setInterval(() => (t.peakRss = Math.max(t.peakRss, rssMb(pid))), 200);
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - t0;
      if (elapsed >= ms) {
        clearInterval(tick);
        resolve();
        return;
      }
      const target = Math.floor((rps * elapsed) / 1000);
      while (due < target) {
        due++;
        if (inFlight.size >= maxInFlight) {
          t.notSent++;
          continue;
        }
        const p = send(pool, t, probes).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
    }, 1);
  });
  await Promise.all(inFlight);
  clearInterval(rss);
  return summarize(phase, t, (performance.now() - t0) / 1000, rps);
}

export async function runOverload(cfg: OverloadConfig): Promise<OverloadResult> {
  const log = cfg.log ?? (() => undefined);
  const probes = await makeProbes(cfg.model);
  const { child, url } = await startServer(cfg);
  const pid = child.pid!;
  let router: { child: ChildProcess; url: string } | undefined;
  try {
    router = cfg.viaRouter ? await startRouterFor(url) : undefined;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  routerPid = router?.child.pid;
  const pool = new RawHttpClient(router?.url ?? url, cfg.maxInFlight);
  try {
    await closedLoop(pool, probes, 16, 1_000, pid); // warm-up: JIT, sessions, connections
    const idleRssMb = rssMb(pid);
    log(`server pid ${pid} at ${url}, RSS after warm-up ${idleRssMb} MB`);
    const clients = cfg.capacityConcurrency ?? 64;
    const capacity = await closedLoop(pool, probes, clients, cfg.capacityMs, pid);
    const capacityRps = capacity.okRps;
    log(`capacity: ${capacityRps} req/s closed-loop at concurrency ${clients} (p99 ${capacity.p99Ms} ms)`);
    const phases = [capacity];
    const over = await openLoop(
      pool,
      probes,
      `overload ${cfg.overloadFactor}×`,
      capacityRps * cfg.overloadFactor,
      cfg.overloadMs,
      pid,
      cfg.maxInFlight,
    );
    phases.push(over);
    log(
      `overload: offered ${over.offeredRps}/s, answered 200 ${over.okRps}/s, rejected ${(over.rejectedShare * 100).toFixed(1)}% (503), other ${JSON.stringify(over.otherStatus)}, transport errors ${over.transportErrors}, peak RSS ${over.peakRssMb} MB`,
    );
    const rec = await openLoop(
      pool,
      probes,
      `recovery ${cfg.recoveryFactor}×`,
      capacityRps * cfg.recoveryFactor,
      cfg.recoveryMs,
      pid,
      cfg.maxInFlight,
    );
    phases.push(rec);
    log(
      `recovery: offered ${rec.offeredRps}/s, rejected ${rec.rejected}, p50 ${rec.p50Ms} ms, p99 ${rec.p99Ms} ms`,
    );
    return {
      idleRssMb,
      capacityRps,
      phases,
      serverAlive: child.exitCode === null && child.signalCode === null,
      ...(router ? { router: await routerCounts(router) } : {}),
    };
  } finally {
    pool.close();
    routerPid = undefined;
    if (router && router.child.exitCode === null) {
      const exited = new Promise((r) => router!.child.once('exit', r));
      router.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (router.child.exitCode === null) router.child.kill('SIGKILL');
    }
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }
}

export interface GoodputConfig {
  model: string;
  serveArgs: string[];
  /** Rounds of (capacity, overload); the figures are the median round's. */
  rounds: number;
  capacityMs: number;
  overloadMs: number;
  overloadFactor: number;
  maxInFlight: number;
  log?: (line: string) => void;
}

export interface GoodputRound {
  /** Closed-loop capacity phases just before and just after this round's overload. */
  before: PhaseResult;
  after: PhaseResult;
  overload: PhaseResult;
  /** 200s per second under overload over the mean capacity (req/s) around it. */
  goodput: number;
  /**
   * The same per CPU second the server got: 200s per server core-second under overload over the
   * capacity's requests per core-second. What the server does with the CPU it has, whatever
   * other processes on a shared machine left it.
   */
  goodputPerCpu: number;
}

export interface GoodputResult {
  rounds: GoodputRound[];
  /** Medians over the rounds. */
  goodput: number;
  goodputPerCpu: number;
  serverAlive: boolean;
}

const perCpu = (p: PhaseResult): number => p.okRps / Math.max(p.serverCpu, 0.01);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Goodput on a shared machine: capacity and overload alternate in short rounds (capacity,
 * overload at `overloadFactor` × that capacity, capacity, …), and each overload is judged against
 * the capacities measured right before and after it, in requests per second and per CPU second
 * the server got. The median over the rounds drops the one a burst of foreign load hit.
 */
export async function runGoodput(cfg: GoodputConfig): Promise<GoodputResult> {
  const log = cfg.log ?? (() => undefined);
  const probes = await makeProbes(cfg.model);
  const { child, url } = await startServer(cfg);
  const pid = child.pid!;
  const pool = new RawHttpClient(url, cfg.maxInFlight);
  try {
    await closedLoop(pool, probes, 16, 1_000, pid); // warm-up: JIT, sessions, connections
    let before = await closedLoop(pool, probes, 64, cfg.capacityMs, pid);
    const rounds: GoodputRound[] = [];
    for (let i = 0; i < cfg.rounds; i++) {
      const overload = await openLoop(
        pool,
        probes,
        `overload ${cfg.overloadFactor}× (round ${i + 1})`,
        before.okRps * cfg.overloadFactor,
        cfg.overloadMs,
        pid,
        cfg.maxInFlight,
      );
      const after = await closedLoop(pool, probes, 64, cfg.capacityMs, pid);
      const goodput = overload.okRps / ((before.okRps + after.okRps) / 2);
      const goodputPerCpu = perCpu(overload) / ((perCpu(before) + perCpu(after)) / 2);
      rounds.push({ before, after, overload, goodput, goodputPerCpu });
      log(
        `round ${i + 1}: capacity ${before.okRps} → ${after.okRps} req/s (server CPU ${before.serverCpu} → ${after.serverCpu}); ` +
          `offered ${overload.offeredRps}/s, 200 ${overload.okRps}/s, 503 ${(overload.rejectedShare * 100).toFixed(0)}%, ` +
          `server CPU ${overload.serverCpu}, generator CPU ${overload.generatorCpu}; goodput ${(goodput * 100).toFixed(0)}% of capacity, ${(goodputPerCpu * 100).toFixed(0)}% per CPU second`,
      );
      before = after;
    }
    return {
      rounds,
      goodput: median(rounds.map((r) => r.goodput)),
      goodputPerCpu: median(rounds.map((r) => r.goodputPerCpu)),
      serverAlive: child.exitCode === null && child.signalCode === null,
    };
  } finally {
    pool.close();
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }
}
