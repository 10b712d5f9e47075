/**
 * Downloaded artifacts, kept by sha256 so the model servers load a local file and a second
 * promotion of the same bytes downloads nothing:
 *
 *   <dir>/sha256/<hex>     read-only, verified copies
 *   <dir>/.tmp-*           downloads in flight (hashed as they are written)
 *
 * Bounded by bytes: after each admission the least recently used copies (by mtime, which every
 * use touches) are removed until the total fits. The copy just admitted is never evicted, even
 * when it alone is larger than the bound. An evicted copy is simply downloaded again.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { createLogger, type Logger } from '../common/log';
import { digestFile, type Digest } from './digest';
import { syncDir } from './model-index';

export interface StagedArtifact extends Digest {
  tmp: string;
}

export class ArtifactCache {
  private readonly blobs: string;

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    private readonly log: Logger = createLogger('artifact-cache'),
  ) {
    this.blobs = path.join(dir, 'sha256');
  }

  blobPath(sha256: string): string {
    return path.join(this.blobs, sha256);
  }

  /** True when a copy with exactly this digest is here; a damaged copy is removed. */
  async holds(expected: Digest): Promise<boolean> {
    const file = this.blobPath(expected.sha256);
    const found = await digestFile(file).catch(() => undefined);
    if (!found) return false;
    if (found.sha256 !== expected.sha256 || found.size !== expected.size) {
      this.log.warn('removing a damaged cached artifact', { sha256: expected.sha256, found: found.sha256 });
      await fs.promises.rm(file, { force: true });
      return false;
    }
    const now = new Date();
    await fs.promises.utimes(file, now, now).catch(() => undefined);
    return true;
  }

  /** Writes a download to a temp file, hashing it on the way; nothing is admitted yet. */
  async stage(source: Readable | AsyncIterable<Buffer>): Promise<StagedArtifact> {
    await fs.promises.mkdir(this.blobs, { recursive: true });
    const tmp = path.join(this.dir, `.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
    const hash = crypto.createHash('sha256');
    let size = 0;
    const fh = await fs.promises.open(tmp, 'wx', 0o600);
    try {
      for await (const chunk of source) {
        const buf = chunk as Buffer;
        hash.update(buf);
        size += buf.length;
        await fh.write(buf);
      }
      await fh.sync();
    } catch (err) {
      await fh.close();
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    return { tmp, sha256: hash.digest('hex'), size };
  }

  async discard(staged: StagedArtifact): Promise<void> {
    await fs.promises.rm(staged.tmp, { force: true });
  }

  /** Moves a staged download into place under its digest and trims the cache to its bound. */
  async admit(staged: StagedArtifact): Promise<string> {
    const dest = this.blobPath(staged.sha256);
    await fs.promises.chmod(staged.tmp, 0o444);
    await fs.promises.rename(staged.tmp, dest);
    await syncDir(this.blobs);
    await this.trim(staged.sha256);
    return dest;
  }

  private async trim(keep: string): Promise<void> {
    const names = await fs.promises.readdir(this.blobs).catch(() => [] as string[]);
    const entries: { name: string; size: number; mtimeMs: number }[] = [];
    for (const name of names) {
      const st = await fs.promises.stat(path.join(this.blobs, name)).catch(() => undefined);
      if (st?.isFile()) entries.push({ name, size: st.size, mtimeMs: st.mtimeMs });
    }
    let total = entries.reduce((a, e) => a + e.size, 0);
    entries.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      if (e.name === keep) continue;
      await fs.promises.rm(path.join(this.blobs, e.name), { force: true });
      total -= e.size;
      this.log.info('evicted a cached artifact', { sha256: e.name, bytes: e.size, bound: this.maxBytes });
    }
  }
}
