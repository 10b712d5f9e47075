/**
 * wrk (Debian's, installed by `bash scripts/tools.sh wrk`) as the benchmarks' cheapest closed-loop
 * load generator: one C thread, a few µs of CPU per request, which on 2 shared cores leaves the
 * CPU to what is measured. Its own CPU comes from bash's `times` after it exits.
 */
import { execFileSync, spawn } from 'node:child_process';

export function onPath(tool: string): string | undefined {
  try {
    return execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface WrkResult {
  requests: number;
  /** Non-2xx answers and socket errors. */
  errors: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds wrk used. */
  cpuS: number;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 'ms' ? n : unit === 's' ? n * 1000 : n * 60_000;
}

/** One wrk run against `url` with a Lua `script` (its `init(args)` gets `scriptArgs`). */
export function runWrk(
  wrk: string,
  url: string,
  opts: { connections: number; seconds: number; script: string; scriptArgs?: string[] },
): Promise<WrkResult> {
  const args = [
    '-t1',
    `-c${opts.connections}`,
    `-d${opts.seconds}s`,
    '--latency',
    '-s',
    opts.script,
    url,
    ...(opts.scriptArgs?.length ? ['--', ...opts.scriptArgs] : []),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', '"$0" "$@"; s=$?; times; exit $s', wrk, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => {
      const done = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(out);
      const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
      const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
      const times =
        out
          .trim()
          .split('\n')
          .slice(-1)[0]!
          .match(/(\d+)m([\d.]+)s/g) ?? [];
      if (code !== 0 || !done || !p50 || !p99 || times.length !== 2) {
        reject(new Error(`wrk failed (exit ${code}):\n${out}`));
        return;
      }
      const cpuS = times
        .map((t) => /(\d+)m([\d.]+)s/.exec(t)!)
        .reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
      resolve({
        requests: Number(done[1]),
        errors: non2xx + sockErrors,
        seconds: toMs(done[2]!, done[3]!) / 1000,
        p50Ms: toMs(p50[1]!, p50[2]!),
        p99Ms: toMs(p99[1]!, p99[2]!),
        cpuS,
      });
    });
  });
}
