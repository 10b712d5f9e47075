/**
 * ModelRegistry: immutable artifacts by sha256, aliases, lineage, status.
 * `file` (a directory, file.ts) is the default; `mlflow` (mlflow.ts) is MLflow's Model Registry over
 * its REST API. factory.ts builds the one the platform config names.
 */
export type VersionStatus = 'candidate' | 'rejected' | 'production' | 'archived';
export type Alias = 'staging' | 'production' | 'previous';

export interface ModelVersion {
  model: string;
  version: string;
  sha256: string;
  size: number;
  /** Where the immutable artifact lives (a path for `file`). */
  artifactPath: string;
  status: VersionStatus;
  statusReason?: string;
  /** When the status last changed (absent while it is the initial `candidate`). */
  statusChangedAt?: string;
  createdAt: string;
  pushedBy: string;
  source?: string;
  /** The training run this version came from (MLflow's run_id), when the registry knows one. */
  runId?: string;
  metadata: Record<string, string>;
}

/** Where a version came from: its training run, as the registry recorded it. */
export interface Lineage {
  runId: string;
  runName?: string;
  experimentId?: string;
  /** A link a human can open (the MLflow UI's run page). */
  runUrl?: string;
  status?: string;
  user?: string;
  gitCommit?: string;
  /** The entry point or notebook that trained it (`mlflow.source.name`). */
  sourceName?: string;
  params: Record<string, string>;
  /** The last value logged for each metric. */
  metrics: Record<string, number>;
  datasets: LineageDataset[];
  /** Params or metrics beyond the recorded bound were left out (the history stays small). */
  truncated?: boolean;
}

export interface LineageDataset {
  name: string;
  digest: string;
  sourceType?: string;
  source?: string;
  /** `training`, `validation`, ... (the `mlflow.data.context` input tag). */
  context?: string;
}

/**
 * A registry call that failed for a reason that passes (server unreachable, 5xx, timeout): the
 * activity retries it. Anything else a registry throws is taken as permanent.
 */
export class RegistryUnavailableError extends Error {
  override name = 'RegistryUnavailable';
  readonly transient = true;
}

export interface PushOptions {
  version?: string;
  metadata?: Record<string, string>;
  pushedBy?: string;
  source?: string;
  /** MLflow: the training run to link the version to (its artifacts receive the file). */
  runId?: string;
}

export interface ModelRegistry {
  /** Where it is, for messages: a directory, a tracking server URL. */
  readonly location: string;
  /** Stores the artifact; pushing different bytes to an existing version is refused. */
  push(model: string, file: string, opts?: PushOptions): Promise<ModelVersion>;
  get(model: string, version: string): Promise<ModelVersion | undefined>;
  list(model?: string): Promise<ModelVersion[]>;
  aliases(model: string): Promise<Partial<Record<Alias, string>>>;
  resolveAlias(model: string, alias: Alias): Promise<ModelVersion | undefined>;
  setAlias(model: string, alias: Alias, version: string | undefined): Promise<void>;
  setStatus(model: string, version: string, status: VersionStatus, reason?: string): Promise<void>;
  /** Re-hashes the artifact; throws a clear error naming both digests when it was tampered with. */
  verify(model: string, version: string): Promise<ModelVersion>;
  /** The version's training run (params, metrics, datasets, commit), or undefined when it has none. */
  lineage(model: string, version: string): Promise<Lineage | undefined>;
}
