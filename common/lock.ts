/**
 * A cross-process lock file, held for the length of an operation that two processes must not run
 * at once: a fleet deploy (a minute; two controllers must not start twins), the start of the
 * embedded Temporal server. A lock whose holder
 * process is gone (crash, SIGKILL) is stale and broken; breaking it is done by renaming it
 * aside first, so two breakers cannot both believe they removed the same stale lock.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { pidAlive } from './process';
import { sleep } from './timers';

interface Holder {
  pid: number;
  host: string;
  token: string;
  at: string;
}

export interface LockOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Called (at most every few seconds) while another holder keeps the lock. */
  onWait?: (holder: string) => void;
}

function readHolder(file: string): Holder | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Holder;
  } catch {
    return undefined;
  }
}

function isStale(file: string, holder: Holder | undefined): boolean {
  if (!holder) {
    // Empty or torn: the holder died between create and write, or is writing right now.
    try {
      return Date.now() - fs.statSync(file).mtimeMs > 5_000;
    } catch {
      return false;
    }
  }
  return holder.host === os.hostname() && !pidAlive(holder.pid);
}

/** Tries to remove a stale lock; true when this caller removed exactly the lock it judged stale. */
function breakStale(file: string, judged: Holder | undefined): boolean {
  const aside = `${file}.stale-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(file, aside);
  } catch {
    return false; // Someone else broke or released it first.
  }
  const moved = readHolder(aside);
  if (judged && moved?.token !== judged.token) {
    // We moved a fresh lock that replaced the stale one in between: put it back.
    try {
      fs.linkSync(aside, file);
    } catch {
      // A third party took the lock meanwhile; theirs stands.
    }
    fs.rmSync(aside, { force: true });
    return false;
  }
  fs.rmSync(aside, { force: true });
  return true;
}

export async function withFileLock<T>(file: string, opts: LockOptions, body: () => Promise<T>): Promise<T> {
  const me: Holder = {
    pid: process.pid,
    host: os.hostname(),
    token: crypto.randomUUID(),
    at: new Date().toISOString(),
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
  let lastNotice = 0;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const fd = fs.openSync(file, 'wx');
      try {
        fs.writeSync(fd, JSON.stringify(me));
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readHolder(file);
    if (isStale(file, holder) && breakStale(file, holder)) continue;
    if (Date.now() > deadline) {
      throw new Error(
        `lock ${file} is held by pid ${holder?.pid ?? '?'} on ${holder?.host ?? '?'} since ${holder?.at ?? '?'}; gave up waiting`,
      );
    }
    if (opts.onWait && Date.now() - lastNotice > 2_000) {
      lastNotice = Date.now();
      opts.onWait(`pid ${holder?.pid ?? '?'} on ${holder?.host ?? '?'}`);
    }
    await sleep(25 + Math.random() * 50);
  }
  try {
    return await body();
  } finally {
    if (readHolder(file)?.token === me.token) fs.rmSync(file, { force: true });
  }
}
