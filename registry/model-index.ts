/**
 * One model's index (versions, aliases) as a chain of immutable revision files
 * `rev-0000000042.json`. A writer prepares revision N+1 in a temp file and publishes it with
 * link(2), which fails with EEXIST when another writer got there first: a compare-and-swap on the
 * file system. The loser re-reads and re-applies its change. No lock file, so no stale locks after
 * a crash, and a reader never sees a half-written index.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Alias, VersionStatus } from './registry';

export interface VersionRecord {
  version: string;
  sha256: string;
  size: number;
  status: VersionStatus;
  statusReason?: string;
  statusChangedAt?: string;
  createdAt: string;
  pushedBy: string;
  source?: string;
  metadata: Record<string, string>;
}

export interface ModelIndex {
  model: string;
  revision: number;
  /** In push order. */
  versions: VersionRecord[];
  aliases: Partial<Record<Alias, string>>;
}

const REV = /^rev-(\d{10})\.json$/;
/** Old revisions kept for forensics; a reader that loses a race with pruning simply retries. */
const KEEP_REVISIONS = 20;
const MAX_ATTEMPTS = 500;

const revFile = (n: number): string => `rev-${String(n).padStart(10, '0')}.json`;

export class ModelIndexStore {
  constructor(
    readonly dir: string,
    readonly model: string,
  ) {}

  async read(): Promise<ModelIndex | undefined> {
    for (let attempt = 0; ; attempt++) {
      const latest = await this.latestRevision();
      if (latest === 0) return undefined;
      try {
        const text = await fs.promises.readFile(path.join(this.dir, revFile(latest)), 'utf8');
        return JSON.parse(text) as ModelIndex;
      } catch (err) {
        // Pruned between readdir and open by a burst of writers: look again.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 10) continue;
        throw new Error(`cannot read registry index ${path.join(this.dir, revFile(latest))}: ${String(err)}`);
      }
    }
  }

  /**
   * Applies `change` to the latest index and publishes the result; retried on conflict, so
   * `change` must be a pure function of its input. Returning undefined means "nothing to write".
   */
  async update(change: (current: ModelIndex) => ModelIndex | undefined): Promise<ModelIndex> {
    await fs.promises.mkdir(this.dir, { recursive: true });
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = (await this.read()) ?? { model: this.model, revision: 0, versions: [], aliases: {} };
      const next = change(structuredClone(current));
      if (!next) return current;
      next.revision = current.revision + 1;
      const tmp = path.join(this.dir, `.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
      const fh = await fs.promises.open(tmp, 'wx');
      try {
        await fh.writeFile(JSON.stringify(next, null, 2) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await fs.promises.link(tmp, path.join(this.dir, revFile(next.revision)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        // Another writer published this revision first; back off a little and re-apply.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 + attempt * 2)));
        continue;
      } finally {
        await fs.promises.rm(tmp, { force: true });
      }
      await syncDir(this.dir);
      await this.prune(next.revision);
      return next;
    }
    throw new Error(
      `registry index for ${this.model} is too contended: gave up after ${MAX_ATTEMPTS} attempts`,
    );
  }

  private async latestRevision(): Promise<number> {
    let names: string[];
    try {
      names = await fs.promises.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    let max = 0;
    for (const n of names) {
      const m = REV.exec(n);
      if (m) max = Math.max(max, Number(m[1]));
    }
    return max;
  }

  private async prune(latest: number): Promise<void> {
    const names = await fs.promises.readdir(this.dir);
    for (const n of names) {
      const m = REV.exec(n);
      if (m && Number(m[1]) <= latest - KEEP_REVISIONS)
        await fs.promises.rm(path.join(this.dir, n), { force: true });
    }
  }
}

/** fsync a directory so a rename/link in it survives a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on directories; the data file itself was synced.
  } finally {
    await fh.close();
  }
}
