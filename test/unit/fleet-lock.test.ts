/**
 * The fleet's lock file: mutual exclusion within and across callers, stale locks of dead
 * holders broken, live holders waited for, with clear errors on timeout and abort.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sleep } from '../../common/timers';
import { withFileLock } from '../../common/lock';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-fleet-lock-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A pid that certainly belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('withFileLock', () => {
  it('serializes concurrent holders and removes the lock afterwards', async () => {
    const file = path.join(tmp, 'serial.lock');
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    await Promise.all(
      [1, 2, 3, 4].map((i) =>
        withFileLock(file, {}, async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await sleep(30);
          order.push(i);
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(1);
    expect(order.sort()).toEqual([1, 2, 3, 4]);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('releases the lock when the body throws', async () => {
    const file = path.join(tmp, 'throws.lock');
    await expect(withFileLock(file, {}, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(fs.existsSync(file)).toBe(false);
  });

  it('breaks a lock whose holder process is dead', async () => {
    const file = path.join(tmp, 'stale.lock');
    fs.writeFileSync(
      file,
      JSON.stringify({ pid: deadPid(), host: os.hostname(), token: 'old', at: '2020-01-01T00:00:00Z' }),
    );
    const started = Date.now();
    expect(await withFileLock(file, { timeoutMs: 2_000 }, () => Promise.resolve('got it'))).toBe('got it');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('waits for a live holder, reporting who, and gives up at the deadline naming it', async () => {
    const file = path.join(tmp, 'live.lock');
    fs.writeFileSync(file, JSON.stringify({ pid: process.pid, host: os.hostname(), token: 'x', at: 'now' }));
    const waits: string[] = [];
    await expect(
      withFileLock(file, { timeoutMs: 300, onWait: (h) => waits.push(h) }, () => Promise.resolve()),
    ).rejects.toThrow(new RegExp(`lock .*live\\.lock is held by pid ${process.pid} on .*; gave up waiting`));
    expect(waits[0]).toBe(`pid ${process.pid} on ${os.hostname()}`);
    expect(fs.existsSync(file)).toBe(true); // Not ours to remove.
  });

  it('stops waiting when aborted', async () => {
    const file = path.join(tmp, 'abort.lock');
    fs.writeFileSync(file, JSON.stringify({ pid: process.pid, host: os.hostname(), token: 'x', at: 'now' }));
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('cancelled')), 100);
    await expect(withFileLock(file, { signal: ac.signal }, () => Promise.resolve())).rejects.toThrow(
      'cancelled',
    );
  });
});
