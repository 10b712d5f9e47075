/**
 * The `mlflow` ModelRegistry: MLflow's Model Registry over its REST API, so teams keep the
 * registry they use and runway reads and writes it the way MLflow recommends:
 *
 * - registered models and their (MLflow-numbered) versions are runway's models and versions;
 * - aliases `production`, `previous`, `staging` (MLflow's replacement for stages) are moved by
 *   the promotion;
 * - runway's own state lives in version tags: `runway.status`, `runway.reason`,
 *   `runway.status_changed_at`, `runway.sha256` and `runway.size` (the digest runway recorded
 *   at push or first sight), `runway.pushed_by`; other tags are the version's metadata;
 * - artifacts come from the version's `source` (`mlflow-artifacts:` through the tracking
 *   server's proxy, `file:` or a path for a local store, `runs:/`, MLflow 3's `models:/m-…`),
 *   are hashed as they download into the artifact cache (artifact-cache.ts) and refused when
 *   they differ from the recorded digest. Nothing is served from MLflow directly.
 * - lineage: the version's `run_id` leads to the run's params, metrics, dataset inputs and git
 *   commit tag.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, type Logger } from '../common/log';
import { ArtifactCache, type StagedArtifact } from './artifact-cache';
import { digestFile } from './digest';
import { defaultPusher } from './file';
import { isNotFound, MlflowApiError, MlflowClient, type MlflowCredentials } from './mlflow-client';
import {
  ALIASES,
  STATUSES,
  checkAlias,
  checkMetadata,
  checkModelName,
  checkStatus,
  checkVersion,
  versionAt,
} from './names';
import type { Alias, Lineage, ModelRegistry, ModelVersion, PushOptions, VersionStatus } from './registry';

export interface MlflowRegistryOptions extends MlflowCredentials {
  /** The tracking server, e.g. http://127.0.0.1:5000. */
  trackingUri: string;
  /** Experiment for the runs runway creates when a push names no training run. */
  experiment?: string;
  cacheDir: string;
  cacheMaxBytes: number;
  requestTimeoutMs?: number;
  logger?: Logger;
}

interface Tag {
  key: string;
  value: string;
}
interface RawVersion {
  name: string;
  version: string;
  creation_timestamp?: number | string;
  last_updated_timestamp?: number | string;
  user_id?: string;
  source?: string;
  run_id?: string;
  status?: string;
  tags?: Tag[];
}
interface RawRun {
  info: {
    run_id: string;
    run_name?: string;
    experiment_id: string;
    artifact_uri: string;
    status?: string;
    user_id?: string;
  };
  data?: {
    params?: Tag[];
    metrics?: { key: string; value: number; timestamp?: number | string; step?: number | string }[];
    tags?: Tag[];
  };
  inputs?: {
    dataset_inputs?: {
      tags?: Tag[];
      dataset: { name: string; digest: string; source_type?: string; source?: string };
    }[];
  };
}

const T = {
  sha256: 'runway.sha256',
  size: 'runway.size',
  status: 'runway.status',
  reason: 'runway.reason',
  changedAt: 'runway.status_changed_at',
  pushedBy: 'runway.pushed_by',
  source: 'runway.source',
} as const;
/** Bounds on what lineage carries into the workflow history. */
const MAX_PARAMS = 100;
const MAX_METRICS = 100;
const MAX_DATASETS = 20;

/** Where an artifact URI's bytes are: through the tracking server, or a local path. */
type Location = { kind: 'proxy'; path: string } | { kind: 'file'; path: string };

export class MlflowRegistry implements ModelRegistry {
  readonly client: MlflowClient;
  readonly cache: ArtifactCache;
  private readonly log: Logger;
  private readonly experiment: string;

  constructor(opts: MlflowRegistryOptions) {
    this.client = new MlflowClient(opts.trackingUri, opts, opts.requestTimeoutMs);
    this.log = opts.logger ?? createLogger('registry');
    this.cache = new ArtifactCache(opts.cacheDir, opts.cacheMaxBytes, this.log.child('cache'));
    this.experiment = opts.experiment ?? 'runway';
  }

  get location(): string {
    return `MLflow ${this.client.url}`;
  }

  async push(model: string, file: string, opts: PushOptions = {}): Promise<ModelVersion> {
    checkModelName(model);
    if (opts.version !== undefined) checkVersion(opts.version);
    const metadata = checkMetadata(opts.metadata ?? {});
    const stat = await fs.promises.stat(file).catch(() => undefined);
    if (!stat?.isFile())
      throw new Error(`cannot push ${model}: artifact ${file} does not exist or is not a file`);
    const digest = await digestFile(file);

    const existing = await this.list(model);
    const known = async (v: ModelVersion): Promise<string> =>
      v.sha256 || (await this.verify(model, v.version)).sha256;
    if (opts.version !== undefined) {
      const same = existing.find((v) => v.version === opts.version);
      if (same) {
        const sha = await known(same);
        if (sha === digest.sha256) return same;
        throw new Error(
          `${model} version ${same.version} already exists with different bytes: ` +
            `registered sha256 ${sha}, pushed ${file} has sha256 ${digest.sha256}; ` +
            'versions are immutable, push it as a new version',
        );
      }
      const next = String(Math.max(0, ...existing.map((v) => Number(v.version) || 0)) + 1);
      if (opts.version !== next) {
        throw new Error(
          `MLflow numbers the versions of ${model} itself: the next one is ${next}, not ${opts.version}; ` +
            `push with --version ${next} or without --version`,
        );
      }
    } else {
      const same = existing.find((v) => v.sha256 === digest.sha256);
      if (same) return same;
    }

    await this.client
      .call('POST', 'registered-models/create', { body: { name: model } })
      .catch((err: unknown) => {
        if (!(err instanceof MlflowApiError && err.code === 'RESOURCE_ALREADY_EXISTS')) throw err;
      });
    const pushedBy = opts.pushedBy ?? defaultPusher();
    const run = opts.runId ? await this.run(opts.runId) : await this.pushRun(model, pushedBy);
    const source = `${run.info.artifact_uri.replace(/\/+$/, '')}/runway/${digest.sha256}/model.onnx`;
    await this.upload(source, file, digest.size);
    if (!opts.runId) {
      await this.client.call('POST', 'runs/update', {
        body: { run_id: run.info.run_id, status: 'FINISHED', end_time: Date.now() },
      });
    }
    const tags: Tag[] = [
      { key: T.sha256, value: digest.sha256 },
      { key: T.size, value: String(digest.size) },
      { key: T.pushedBy, value: pushedBy },
      ...(opts.source !== undefined ? [{ key: T.source, value: opts.source }] : []),
      ...Object.entries(metadata).map(([key, value]) => ({ key, value })),
    ];
    const created = await this.client.call<{ model_version: RawVersion }>('POST', 'model-versions/create', {
      body: { name: model, source, run_id: run.info.run_id, tags },
    });
    const v = this.toVersion(created.model_version);
    if (opts.version !== undefined && v.version !== opts.version) {
      this.log.warn('MLflow assigned another version number (a concurrent push)', {
        model,
        asked: opts.version,
        got: v.version,
      });
    }
    this.log.info('pushed', { model, version: v.version, sha256: digest.sha256, run: run.info.run_id });
    return v;
  }

  async get(model: string, version: string): Promise<ModelVersion | undefined> {
    const raw = await this.rawVersion(model, version);
    return raw ? this.toVersion(raw) : undefined;
  }

  async list(model?: string): Promise<ModelVersion[]> {
    if (model !== undefined) checkModelName(model);
    const out: ModelVersion[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.client.call<{ model_versions?: RawVersion[]; next_page_token?: string }>(
        'GET',
        'model-versions/search',
        {
          query: {
            filter: model !== undefined ? `name='${model}'` : undefined,
            max_results: '1000',
            page_token: pageToken,
          },
        },
      );
      for (const raw of page.model_versions ?? []) out.push(this.toVersion(raw));
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
    return out.sort((a, b) =>
      a.model === b.model ? Number(a.version) - Number(b.version) : a.model < b.model ? -1 : 1,
    );
  }

  async aliases(model: string): Promise<Partial<Record<Alias, string>>> {
    checkModelName(model);
    let found: { registered_model: { aliases?: { alias: string; version: string }[] } };
    try {
      found = await this.client.call('GET', 'registered-models/get', { query: { name: model } });
    } catch (err) {
      if (isNotFound(err)) return {};
      throw err;
    }
    const out: Partial<Record<Alias, string>> = {};
    for (const a of found.registered_model.aliases ?? []) {
      if ((ALIASES as readonly string[]).includes(a.alias)) out[a.alias as Alias] = a.version;
    }
    return out;
  }

  async resolveAlias(model: string, alias: Alias): Promise<ModelVersion | undefined> {
    return versionAt(this, model, alias);
  }

  async setAlias(model: string, alias: Alias, version: string | undefined): Promise<void> {
    checkModelName(model);
    checkAlias(alias);
    if (version === undefined) {
      // DELETE takes its arguments in a JSON body; removing an absent alias is a no-op.
      await this.client
        .call('DELETE', 'registered-models/alias', { body: { name: model, alias } })
        .catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
    } else {
      await this.client.call('POST', 'registered-models/alias', { body: { name: model, alias, version } });
    }
    this.log.info('alias set', { model, alias, version: version ?? '(removed)' });
  }

  async setStatus(model: string, version: string, status: VersionStatus, reason?: string): Promise<void> {
    checkModelName(model);
    checkStatus(status);
    const current = await this.get(model, version);
    if (!current) throw new Error(`${model} version ${version} is not in ${this.location}`);
    if (current.status === status && current.statusReason === reason) return;
    await this.setTag(model, version, T.status, status);
    if (reason === undefined) {
      await this.client
        .call('DELETE', 'model-versions/delete-tag', { body: { name: model, version, key: T.reason } })
        .catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
    } else await this.setTag(model, version, T.reason, reason);
    await this.setTag(model, version, T.changedAt, new Date().toISOString());
    this.log.info('status set', { model, version, status, reason });
  }

  /**
   * The version's bytes as a verified local file. A cached copy with the recorded digest is used
   * as is; otherwise the source is downloaded and hashed. With no digest recorded yet (a version
   * registered by MLflow's own client) this first sight records it; after that, different bytes
   * at the source are refused.
   */
  async verify(model: string, version: string): Promise<ModelVersion> {
    const raw = await this.rawVersion(model, version);
    if (!raw) throw new Error(`${model} version ${version} is not in ${this.location}`);
    const v = this.toVersion(raw);
    const recorded = v.sha256 ? { sha256: v.sha256, size: v.size } : undefined;
    if (recorded && (await this.cache.holds(recorded))) {
      return { ...v, artifactPath: this.cache.blobPath(recorded.sha256) };
    }
    if (!raw.source) throw new Error(`${model} version ${version} in ${this.location} has no source URI`);
    const staged = await this.download(raw.source);
    if (recorded && (staged.sha256 !== recorded.sha256 || staged.size !== recorded.size)) {
      await this.cache.discard(staged);
      throw new Error(
        `artifact of ${model} version ${version} at ${raw.source} was modified after runway recorded its digest: ` +
          `expected sha256 ${recorded.sha256} (${recorded.size} bytes, version tag ${T.sha256}), ` +
          `found sha256 ${staged.sha256} (${staged.size} bytes); nothing is served from it`,
      );
    }
    if (!recorded) {
      await this.setTag(model, version, T.sha256, staged.sha256);
      await this.setTag(model, version, T.size, String(staged.size));
      this.log.info('digest recorded at first sight', { model, version, sha256: staged.sha256 });
    }
    const artifactPath = await this.cache.admit(staged);
    return { ...v, sha256: staged.sha256, size: staged.size, artifactPath };
  }

  async lineage(model: string, version: string): Promise<Lineage | undefined> {
    const raw = await this.rawVersion(model, version);
    if (!raw?.run_id) return undefined;
    const run = await this.run(raw.run_id);
    const tags = Object.fromEntries((run.data?.tags ?? []).map((t) => [t.key, t.value]));
    const params: Record<string, string> = {};
    const metrics: Record<string, number> = {};
    const allParams = run.data?.params ?? [];
    const allMetrics = run.data?.metrics ?? [];
    for (const p of allParams.slice(0, MAX_PARAMS)) params[p.key] = p.value;
    for (const m of allMetrics.slice(0, MAX_METRICS)) metrics[m.key] = m.value;
    const inputs = run.inputs?.dataset_inputs ?? [];
    const datasets = inputs.slice(0, MAX_DATASETS).map((d) => {
      const context = d.tags?.find((t) => t.key === 'mlflow.data.context')?.value;
      return {
        name: d.dataset.name,
        digest: d.dataset.digest,
        ...(d.dataset.source_type ? { sourceType: d.dataset.source_type } : {}),
        ...(d.dataset.source ? { source: d.dataset.source } : {}),
        ...(context ? { context } : {}),
      };
    });
    const truncated =
      allParams.length > MAX_PARAMS || allMetrics.length > MAX_METRICS || inputs.length > MAX_DATASETS;
    const user = tags['mlflow.user'] ?? run.info.user_id;
    return {
      runId: run.info.run_id,
      experimentId: run.info.experiment_id,
      runUrl: `${this.client.url}/#/experiments/${run.info.experiment_id}/runs/${run.info.run_id}`,
      ...(run.info.run_name ? { runName: run.info.run_name } : {}),
      ...(run.info.status ? { status: run.info.status } : {}),
      ...(user ? { user } : {}),
      ...(tags['mlflow.source.git.commit'] ? { gitCommit: tags['mlflow.source.git.commit'] } : {}),
      ...(tags['mlflow.source.name'] ? { sourceName: tags['mlflow.source.name'] } : {}),
      params,
      metrics,
      datasets,
      ...(truncated ? { truncated } : {}),
    };
  }

  private async rawVersion(model: string, version: string): Promise<RawVersion | undefined> {
    checkModelName(model);
    try {
      const found = await this.client.call<{ model_version: RawVersion }>('GET', 'model-versions/get', {
        query: { name: model, version },
      });
      return found.model_version;
    } catch (err) {
      // A version that is not a number is no MLflow version either.
      if (isNotFound(err) || (err instanceof MlflowApiError && err.code === 'INVALID_PARAMETER_VALUE'))
        return undefined;
      throw err;
    }
  }

  private async run(runId: string): Promise<RawRun> {
    try {
      const found = await this.client.call<{ run: RawRun }>('GET', 'runs/get', { query: { run_id: runId } });
      return found.run;
    } catch (err) {
      if (isNotFound(err)) throw new Error(`MLflow run ${runId} does not exist at ${this.client.url}`);
      throw err;
    }
  }

  /** A run of runway's own for a push that names no training run: MLflow wants every source in one. */
  private async pushRun(model: string, pushedBy: string): Promise<RawRun> {
    let experimentId: string;
    try {
      const found = await this.client.call<{ experiment: { experiment_id: string } }>(
        'GET',
        'experiments/get-by-name',
        { query: { experiment_name: this.experiment } },
      );
      experimentId = found.experiment.experiment_id;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const created = await this.client
        .call<{ experiment_id: string }>('POST', 'experiments/create', { body: { name: this.experiment } })
        .catch(async (e: unknown) => {
          if (!(e instanceof MlflowApiError && e.code === 'RESOURCE_ALREADY_EXISTS')) throw e;
          const again = await this.client.call<{ experiment: { experiment_id: string } }>(
            'GET',
            'experiments/get-by-name',
            { query: { experiment_name: this.experiment } },
          );
          return { experiment_id: again.experiment.experiment_id };
        });
      experimentId = created.experiment_id;
    }
    const created = await this.client.call<{ run: RawRun }>('POST', 'runs/create', {
      body: {
        experiment_id: experimentId,
        run_name: `runway push ${model}`,
        start_time: Date.now(),
        tags: [{ key: 'mlflow.user', value: pushedBy }],
      },
    });
    return created.run;
  }

  private async setTag(model: string, version: string, key: string, value: string): Promise<void> {
    await this.client.call('POST', 'model-versions/set-tag', { body: { name: model, version, key, value } });
  }

  private async upload(uri: string, file: string, size: number): Promise<void> {
    const loc = await this.locate(uri);
    if (loc.kind === 'proxy') {
      await this.client.upload(loc.path, fs.createReadStream(file), size);
      return;
    }
    await fs.promises.mkdir(path.dirname(loc.path), { recursive: true });
    await fs.promises.copyFile(file, loc.path);
  }

  /** Downloads a version's source into the cache's staging area, hashing it on the way. */
  private async download(uri: string): Promise<StagedArtifact> {
    const loc = await this.locate(uri);
    const file = await this.onnxFileIn(loc, uri);
    if (file.kind === 'proxy') return this.cache.stage(await this.client.download(file.path));
    const stream = fs.createReadStream(file.path);
    return this.cache.stage(stream).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`cannot read artifact ${uri} at ${file.path}: ${err.code ?? err.message}`);
    });
  }

  /** An MLflow model directory holds one .onnx file (`model.onnx` for the onnx flavour). */
  private async onnxFileIn(loc: Location, uri: string): Promise<Location> {
    if (loc.path.endsWith('.onnx')) return loc;
    const names =
      loc.kind === 'proxy'
        ? (await this.client.listArtifacts(loc.path))
            .filter((f) => !f.is_dir)
            .map((f) => path.posix.basename(f.path))
        : await fs.promises.readdir(loc.path).catch(() => [] as string[]);
    const onnx = names.filter((n) => n.endsWith('.onnx'));
    const pick = onnx.includes('model.onnx') ? 'model.onnx' : onnx.length === 1 ? onnx[0] : undefined;
    if (!pick) {
      throw new Error(
        `${uri} is not an ONNX file and holds ${onnx.length === 0 ? 'no' : 'several'} .onnx files ` +
          `(${names.join(', ') || 'nothing'}); register the .onnx file itself as the version's source`,
      );
    }
    return { kind: loc.kind, path: `${loc.path.replace(/\/+$/, '')}/${pick}` };
  }

  private async locate(uri: string): Promise<Location> {
    if (uri.startsWith('mlflow-artifacts:')) {
      // mlflow-artifacts:/p or mlflow-artifacts://host:port/p: always through our tracking server.
      const rest = uri.slice('mlflow-artifacts:'.length);
      const p = rest.startsWith('//') ? rest.slice(2).replace(/^[^/]*/, '') : rest;
      return { kind: 'proxy', path: p.replace(/^\/+/, '') };
    }
    if (uri.startsWith('file:')) return { kind: 'file', path: fileURLToPath(new URL(uri)) };
    if (uri.startsWith('/')) return { kind: 'file', path: uri };
    const runs = /^runs:\/([^/]+)\/?(.*)$/.exec(uri);
    if (runs) {
      const run = await this.run(runs[1]!);
      return this.locate(`${run.info.artifact_uri.replace(/\/+$/, '')}/${runs[2] ?? ''}`);
    }
    const logged = /^models:\/(m-[^/]+)\/?(.*)$/.exec(uri);
    if (logged) {
      const found = await this.client.call<{ model: { info: { artifact_uri: string } } }>(
        'GET',
        `logged-models/${logged[1]}`,
      );
      return this.locate(`${found.model.info.artifact_uri.replace(/\/+$/, '')}/${logged[2] ?? ''}`);
    }
    throw new Error(
      `artifact URI ${uri}: runway reads mlflow-artifacts:, file:, runs:/ and models:/m-… sources ` +
        '(serve artifacts through the tracking server with --artifacts-destination)',
    );
  }

  private toVersion(raw: RawVersion): ModelVersion {
    const tags = Object.fromEntries((raw.tags ?? []).map((t) => [t.key, t.value]));
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(tags))
      if (!k.startsWith('runway.') && !k.startsWith('mlflow.')) metadata[k] = v;
    const sha256 = tags[T.sha256] ?? '';
    const statusTag = tags[T.status];
    const status: VersionStatus =
      statusTag && (STATUSES as readonly string[]).includes(statusTag)
        ? (statusTag as VersionStatus)
        : 'candidate';
    const created = Number(raw.creation_timestamp ?? 0);
    return {
      model: raw.name,
      version: String(raw.version),
      sha256,
      size: Number(tags[T.size] ?? 0),
      // Unverified versions have no local file yet: their source is the best answer.
      artifactPath: sha256 ? this.cache.blobPath(sha256) : (raw.source ?? ''),
      status,
      ...(tags[T.reason] !== undefined ? { statusReason: tags[T.reason] } : {}),
      ...(tags[T.changedAt] ? { statusChangedAt: tags[T.changedAt] } : {}),
      createdAt: new Date(created).toISOString(),
      pushedBy: tags[T.pushedBy] ?? (raw.user_id || 'unknown'),
      source: tags[T.source] ?? raw.source,
      ...(raw.run_id ? { runId: raw.run_id } : {}),
      metadata,
    };
  }
}
