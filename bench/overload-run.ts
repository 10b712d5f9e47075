/**
 * Overload harness, shared by `npm run bench:overload` and test/integration/fault-overload.test.ts:
 * a real `runway serve` process, its capacity measured closed-loop, then an open-loop load (a
 * fixed arrival rate that does not slow down when the server does, as real clients behave) at a
 * multiple of that capacity, then at a fraction of it to see it recover. The server's RSS is
 * sampled from /proc throughout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { Pool } from 'undici';
import { runwayBin } from '../common/paths';

export interface OverloadConfig {
  model: string;
  /** `runway serve` flags besides model/name/port. */
  serveArgs: string[];
  capacityMs: number;
  overloadMs: number;
  overloadFactor: number;
  recoveryMs: number;
  recoveryFactor: number;
  /** Requests the generator keeps in flight at most; beyond it a due request is counted as not sent. */
  maxInFlight: number;
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
  /** Any other status, or a 200 whose body is not a well-formed answer. */
  otherStatus: Record<string, number>;
  malformed: number;
  /** Connection-level failures: the request never got an answer. */
  transportErrors: number;
  p50Ms: number;
  p99Ms: number;
  peakRssMb: number;
  /** CPU used over the phase, in cores (1 = one core busy all the time). */
  serverCpu: number;
  generatorCpu: number;
}

export interface OverloadResult {
  idleRssMb: number;
  capacityRps: number;
  phases: PhaseResult[];
  serverAlive: boolean;
}

const BODY = JSON.stringify({
  inputs: [
    { name: 'features', datatype: 'FP32', shape: [1, 8], data: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8] },
  ],
});

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

async function startServer(cfg: OverloadConfig): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [runwayBin, 'serve', '--model', cfg.model, '--name', 'm', '--port', '0', ...cfg.serveArgs],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUNWAY_LOG_LEVEL: 'warn' } },
  );
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`runway serve did not start: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`runway serve exited ${code}: ${err}`));
    });
  });
  return { child, url };
}

function wellFormed(body: string): boolean {
  try {
    const doc = JSON.parse(body) as { outputs?: { data?: unknown[] }[] };
    const v = doc.outputs?.[0]?.data?.[0];
    return typeof v === 'number' && Number.isFinite(v);
  } catch {
    return false;
  }
}

class Tally {
  private readonly cpu0: { server: number; self: NodeJS.CpuUsage };
  serverCpu = 0;
  generatorCpu = 0;
  constructor(private readonly pid: number) {
    this.cpu0 = { server: cpuSeconds(pid), self: process.cpuUsage() };
  }
  /** Closes the CPU accounting over `seconds` of wall time. */
  cpu(seconds: number): void {
    const self = process.cpuUsage(this.cpu0.self);
    this.serverCpu = Math.round(((cpuSeconds(this.pid) - this.cpu0.server) / seconds) * 100) / 100;
    this.generatorCpu = Math.round(((self.user + self.system) / 1e6 / seconds) * 100) / 100;
  }
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

async function send(pool: Pool, t: Tally): Promise<void> {
  const start = performance.now();
  t.sent++;
  try {
    const res = await pool.request({
      path: '/v2/models/m/infer',
      method: 'POST',
      body: BODY,
      headers: { 'content-type': 'application/json' },
    });
    const text = await res.body.text();
    if (res.statusCode === 200) {
      if (wellFormed(text)) {
        t.ok++;
        t.latencies.push(performance.now() - start);
      } else t.malformed++;
    } else if (res.statusCode === 503) t.rejected++;
    else t.other[res.statusCode] = (t.other[res.statusCode] ?? 0) + 1;
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
    peakRssMb: t.peakRss,
    serverCpu: t.serverCpu,
    generatorCpu: t.generatorCpu,
  };
}

/** Closed loop: `concurrency` clients back to back; the server's sustainable rate. */
async function closedLoop(pool: Pool, concurrency: number, ms: number, pid: number): Promise<PhaseResult> {
  const t = new Tally(pid);
  const until = performance.now() + ms;
  const t0 = performance.now();
  const rss = setInterval(() => (t.peakRss = Math.max(t.peakRss, rssMb(pid))), 200);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) await send(pool, t);
    }),
  );
  clearInterval(rss);
  const seconds = (performance.now() - t0) / 1000;
  return summarize('capacity (closed loop)', t, seconds, t.sent / seconds);
}

/** Open loop: requests fall due at `rps` whatever the server does. */
async function openLoop(
  pool: Pool,
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
        const p = send(pool, t).finally(() => inFlight.delete(p));
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
  const { child, url } = await startServer(cfg);
  const pid = child.pid!;
  const pool = new Pool(url, { connections: cfg.maxInFlight, pipelining: 1 });
  try {
    await closedLoop(pool, 16, 1_000, pid); // warm-up: JIT, sessions, connections
    const idleRssMb = rssMb(pid);
    log(`server pid ${pid} at ${url}, RSS after warm-up ${idleRssMb} MB`);
    const capacity = await closedLoop(pool, 64, cfg.capacityMs, pid);
    const capacityRps = capacity.okRps;
    log(`capacity: ${capacityRps} req/s closed-loop at concurrency 64 (p99 ${capacity.p99Ms} ms)`);
    const phases = [capacity];
    const over = await openLoop(
      pool,
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
    };
  } finally {
    await pool.close().catch(() => undefined);
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }
}
