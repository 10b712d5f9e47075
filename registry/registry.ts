/**
 * ModelRegistry: immutable artifacts by sha256, aliases, lineage, status.
 * `file` (a directory) is the default; MLflow's REST API can sit behind the same interface.
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
  metadata: Record<string, string>;
}

export interface PushOptions {
  version?: string;
  metadata?: Record<string, string>;
  pushedBy?: string;
  source?: string;
}

export interface ModelRegistry {
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
}
