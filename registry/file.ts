/**
 * The `file` ModelRegistry: a directory that any number of processes on one host (or a shared
 * POSIX file system) may read and write at once.
 *
 *   <root>/blobs/sha256/<hex>          immutable, read-only artifacts, content-addressed
 *   <root>/models/<model>/rev-N.json   the model's index (see model-index.ts)
 *
 * Artifacts are written to a temp file, fsynced and renamed into place, so a blob either exists
 * whole or not at all. Versions never change their bytes: a second push of different bytes to an
 * existing version is refused, the same bytes again is a no-op.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stateDir } from '../common/paths';
import { createLogger } from '../common/log';
import { digestFile } from './digest';
import { ModelIndexStore, syncDir, type ModelIndex, type VersionRecord } from './model-index';
import { checkAlias, checkMetadata, checkModelName, checkStatus, checkVersion, versionAt } from './names';
import type { Alias, Lineage, ModelRegistry, ModelVersion, PushOptions, VersionStatus } from './registry';

const log = createLogger('registry');

/** `--registry DIR`, else `RUNWAY_REGISTRY`, else `<state dir>/registry`. */
export function registryDir(explicit?: string): string {
  return path.resolve(explicit ?? process.env.RUNWAY_REGISTRY ?? path.join(stateDir(), 'registry'));
}

export function defaultPusher(): string {
  try {
    return os.userInfo().username;
  } catch {
    // No passwd entry (some containers): fall back to the environment.
    return process.env.USER ?? process.env.LOGNAME ?? 'unknown';
  }
}

export class FileRegistry implements ModelRegistry {
  readonly root: string;

  constructor(root?: string) {
    this.root = registryDir(root);
  }

  get location(): string {
    return this.root;
  }

  blobPath(sha256: string): string {
    return path.join(this.root, 'blobs', 'sha256', sha256);
  }

  async push(model: string, file: string, opts: PushOptions = {}): Promise<ModelVersion> {
    checkModelName(model);
    if (opts.version !== undefined) checkVersion(opts.version);
    const metadata = checkMetadata(opts.metadata ?? {});
    const stat = await fs.promises.stat(file).catch(() => undefined);
    if (!stat?.isFile())
      throw new Error(`cannot push ${model}: artifact ${file} does not exist or is not a file`);

    const { sha256, size } = await this.storeBlob(file);
    let result: VersionRecord | undefined;
    await this.index(model).update((idx) => {
      const same = (v: VersionRecord): boolean => v.sha256 === sha256;
      const existing = opts.version
        ? idx.versions.find((v) => v.version === opts.version)
        : idx.versions.find(same); // Unversioned re-push of known bytes: that version, not a new one.
      if (existing) {
        if (!same(existing)) {
          throw new Error(
            `${model} version ${existing.version} already exists with different bytes: ` +
              `registered sha256 ${existing.sha256}, pushed ${file} has sha256 ${sha256}; ` +
              'versions are immutable, push it as a new version',
          );
        }
        result = existing;
        return undefined;
      }
      const record: VersionRecord = {
        version: opts.version ?? nextVersion(idx),
        sha256,
        size,
        status: 'candidate',
        createdAt: new Date().toISOString(),
        pushedBy: opts.pushedBy ?? defaultPusher(),
        ...(opts.source !== undefined ? { source: opts.source } : {}),
        metadata: opts.runId !== undefined ? { run_id: opts.runId, ...metadata } : metadata,
      };
      idx.versions.push(record);
      result = record;
      return idx;
    });
    if (!result) throw new Error('unreachable: push produced no version');
    log.info('pushed', { model, version: result.version, sha256, size });
    return this.toVersion(model, result);
  }

  async get(model: string, version: string): Promise<ModelVersion | undefined> {
    checkModelName(model);
    const idx = await this.index(model).read();
    const rec = idx?.versions.find((v) => v.version === version);
    return rec ? this.toVersion(model, rec) : undefined;
  }

  async list(model?: string): Promise<ModelVersion[]> {
    const models = model !== undefined ? [checkModelName(model)] : await this.models();
    const out: ModelVersion[] = [];
    for (const m of models) {
      const idx = await this.index(m).read();
      for (const rec of idx?.versions ?? []) out.push(this.toVersion(m, rec));
    }
    return out;
  }

  /** Names of every model with at least one version, sorted. */
  async models(): Promise<string[]> {
    const names = await fs.promises.readdir(path.join(this.root, 'models')).catch(() => [] as string[]);
    return names.filter((n) => !n.startsWith('.')).sort();
  }

  async aliases(model: string): Promise<Partial<Record<Alias, string>>> {
    checkModelName(model);
    return (await this.index(model).read())?.aliases ?? {};
  }

  async resolveAlias(model: string, alias: Alias): Promise<ModelVersion | undefined> {
    return versionAt(this, model, alias);
  }

  async setAlias(model: string, alias: Alias, version: string | undefined): Promise<void> {
    checkModelName(model);
    checkAlias(alias);
    await this.index(model).update((idx) => {
      if (version === undefined) {
        if (idx.aliases[alias] === undefined) return undefined;
        delete idx.aliases[alias];
        return idx;
      }
      this.require(idx, model, version);
      if (idx.aliases[alias] === version) return undefined;
      idx.aliases[alias] = version;
      return idx;
    });
    log.info('alias set', { model, alias, version: version ?? '(removed)' });
  }

  async setStatus(model: string, version: string, status: VersionStatus, reason?: string): Promise<void> {
    checkModelName(model);
    checkStatus(status);
    await this.index(model).update((idx) => {
      const rec = this.require(idx, model, version);
      if (rec.status === status && rec.statusReason === reason) return undefined;
      rec.status = status;
      if (reason === undefined) delete rec.statusReason;
      else rec.statusReason = reason;
      rec.statusChangedAt = new Date().toISOString();
      return idx;
    });
    log.info('status set', { model, version, status, reason });
  }

  async verify(model: string, version: string): Promise<ModelVersion> {
    const v = await this.get(model, version);
    if (!v) throw new Error(`${model} version ${version} is not in the registry at ${this.root}`);
    const actual = await digestFile(v.artifactPath).catch((err: NodeJS.ErrnoException) => {
      throw new Error(
        `artifact of ${model} version ${version} is missing or unreadable at ${v.artifactPath}: ${err.code ?? err.message}`,
      );
    });
    if (actual.sha256 !== v.sha256 || actual.size !== v.size) {
      throw new Error(
        `artifact of ${model} version ${version} at ${v.artifactPath} was modified after push: ` +
          `expected sha256 ${v.sha256} (${v.size} bytes), found sha256 ${actual.sha256} (${actual.size} bytes)`,
      );
    }
    return v;
  }

  /**
   * A directory knows no training runs: what it has is what the pusher wrote into the metadata
   * (`--run-id`, `--metadata commit=...`).
   */
  async lineage(model: string, version: string): Promise<Lineage | undefined> {
    const v = await this.get(model, version);
    const runId = v?.metadata.run_id;
    if (!v || !runId) return undefined;
    return {
      runId,
      ...(v.metadata.commit ? { gitCommit: v.metadata.commit } : {}),
      ...(v.source ? { sourceName: v.source } : {}),
      params: {},
      metrics: {},
      datasets: [],
    };
  }

  private index(model: string): ModelIndexStore {
    return new ModelIndexStore(path.join(this.root, 'models', model), model);
  }

  private require(idx: ModelIndex, model: string, version: string): VersionRecord {
    const rec = idx.versions.find((v) => v.version === version);
    if (!rec) {
      const known = idx.versions.map((v) => v.version).join(', ') || 'none';
      throw new Error(`${model} version ${version} is not in the registry (known versions: ${known})`);
    }
    return rec;
  }

  /** Copies the artifact into the content-addressed store; hashes what was copied, not the source. */
  private async storeBlob(file: string): Promise<{ sha256: string; size: number }> {
    const dir = path.join(this.root, 'blobs', 'sha256');
    await fs.promises.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
    try {
      await fs.promises.copyFile(file, tmp);
      const fh = await fs.promises.open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      const digest = await digestFile(tmp);
      const dest = this.blobPath(digest.sha256);
      if (fs.existsSync(dest)) {
        const stored = await digestFile(dest).catch(() => undefined);
        if (stored?.sha256 === digest.sha256) return digest;
        // The stored copy was damaged or tampered with: the fresh, verified copy replaces it.
        log.warn('replacing damaged blob', { sha256: digest.sha256, found: stored?.sha256 ?? 'unreadable' });
      }
      await fs.promises.chmod(tmp, 0o444);
      await fs.promises.rename(tmp, dest);
      await syncDir(dir);
      return digest;
    } finally {
      await fs.promises.rm(tmp, { force: true });
    }
  }

  private toVersion(model: string, rec: VersionRecord): ModelVersion {
    const runId = rec.metadata.run_id;
    return {
      model,
      ...rec,
      ...(runId ? { runId } : {}),
      metadata: { ...rec.metadata },
      artifactPath: this.blobPath(rec.sha256),
    };
  }
}

/** One past the largest integer version; non-numeric versions do not count. */
function nextVersion(idx: ModelIndex): string {
  let max = 0;
  for (const v of idx.versions) if (/^\d+$/.test(v.version)) max = Math.max(max, Number(v.version));
  return String(max + 1);
}
