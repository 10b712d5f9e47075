/**
 * Replica processes as the operating system sees them: alive or not, still ours or a reused pid,
 * stopped politely (SIGTERM drains in-flight work) and then firmly.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { pidAlive } from '../../common/process';

/** Children this process spawned: their exit is known exactly, and a zombie is not "alive". */
const children = new Map<number, ChildProcess>();

export function trackChild(child: ChildProcess): void {
  if (child.pid === undefined) return;
  const pid = child.pid;
  children.set(pid, child);
  child.once('exit', () => setTimeout(() => children.delete(pid), 60_000).unref());
}

export function childExit(pid: number): { code: number | null; signal: NodeJS.Signals | null } | undefined {
  const c = children.get(pid);
  if (!c || (c.exitCode === null && c.signalCode === null)) return undefined;
  return { code: c.exitCode, signal: c.signalCode };
}

/**
 * How a child of ours ended. The kernel may report it dead (a zombie) a moment before Node has
 * reaped it and fired 'exit', so wait briefly for that event.
 */
export async function settledExit(pid: number, waitMs = 1_000): Promise<string> {
  const c = children.get(pid);
  if (c && c.exitCode === null && c.signalCode === null) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, waitMs);
      c.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  const exit = childExit(pid);
  if (!exit) return 'exit status unknown';
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

/** Alive, and not one of our children that has already exited (known exactly, without a race). */
export function replicaAlive(pid: number): boolean {
  return !childExit(pid) && pidAlive(pid);
}

/**
 * Whether `pid` is still the `runway serve` we started on `port` for `model`, and not an unrelated
 * process that inherited a recycled pid. Reads /proc where there is one; elsewhere trusts the pid.
 */
export function isOurReplica(pid: number, port: number, model: string): boolean {
  if (!replicaAlive(pid)) return false;
  let argv: string[];
  try {
    argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return !fs.existsSync('/proc/self');
  }
  const after = (flag: string): string | undefined => argv[argv.indexOf(flag) + 1];
  return argv.includes('serve') && after('--port') === String(port) && after('--name') === model;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!replicaAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !replicaAlive(pid);
}

/** SIGTERM (the server drains), then SIGKILL after `graceMs`. Resolves once the pid is gone. */
export async function stopProcess(pid: number, graceMs: number): Promise<'terminated' | 'killed' | 'gone'> {
  if (!replicaAlive(pid)) return 'gone';
  signal(pid, 'SIGTERM');
  if (await waitGone(pid, graceMs)) return 'terminated';
  signal(pid, 'SIGKILL');
  if (await waitGone(pid, 5_000)) return 'killed';
  throw new Error(`process ${pid} survived SIGKILL for 5 s`);
}

/** The last lines of a replica's log, for errors that should explain themselves. */
export function logTail(file: string, maxBytes = 4096, maxLines = 25): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, maxBytes);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      const lines = buf.toString('utf8').split('\n');
      if (size > len) lines.shift(); // Partial first line.
      return lines
        .slice(-maxLines - 1)
        .join('\n')
        .trim();
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '(no log)';
  }
}
