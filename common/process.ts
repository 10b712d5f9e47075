/** Process liveness, one definition for the router, the Temporal dev server and the fleet. */
import fs from 'node:fs';

/**
 * Whether `pid` runs: kill(0) answers (EPERM means it exists but is not ours), and on Linux it is
 * not a zombie (exited, not yet reaped by its parent, which kill(0) still answers for).
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // No procfs (macOS): kill(0) is all we have.
  }
}

/** SIGKILLs `pid` and resolves once it is gone (fault tests, and stuck children). */
export async function sigkillAndWait(pid: number, timeoutMs = 10_000): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} still alive ${timeoutMs} ms after SIGKILL`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
