/**
 * FleetDriver: the seam between the promotion and wherever model servers run.
 * `local` runs `runway serve` child processes; `kubernetes` applies Deployments. The workflow
 * never knows which: the platform config picks one.
 */
export type Environment = 'staging' | 'production';

/** Batching and runtime knobs passed to `runway serve` (mirrors its flags). */
export interface ServingOptions {
  maxBatchSize?: number;
  preferredBatchSizes?: number[];
  maxQueueDelayMs?: number;
  maxQueueSize?: number;
  instances?: number;
  device?: 'cpu' | 'cuda';
  threads?: number;
  /** onnxruntime's idle threads spin-wait for work (`--spin-wait`); default off. */
  spinWait?: boolean;
  /** Reference bins for the drift histograms, as JSON (`--drift-reference`); the watch reads them. */
  driftReference?: string;
}

/** The `runway serve` flags for these knobs: one list for every driver, unset knobs left to its defaults. */
export function servingFlags(s: ServingOptions): string[] {
  const args: string[] = [];
  if (s.maxBatchSize !== undefined) args.push('--max-batch-size', String(s.maxBatchSize));
  if (s.preferredBatchSizes?.length) args.push('--preferred-batch-sizes', s.preferredBatchSizes.join(','));
  if (s.maxQueueDelayMs !== undefined) args.push('--max-queue-delay-ms', String(s.maxQueueDelayMs));
  if (s.maxQueueSize !== undefined) args.push('--max-queue-size', String(s.maxQueueSize));
  if (s.instances !== undefined) args.push('--instances', String(s.instances));
  if (s.device !== undefined) args.push('--device', s.device);
  if (s.threads !== undefined) args.push('--threads', String(s.threads));
  if (s.spinWait) args.push('--spin-wait');
  if (s.driftReference) args.push('--drift-reference', s.driftReference);
  return args;
}

export interface DeploymentRequest {
  model: string;
  version: string;
  environment: Environment;
  /** Local path (or URL for drivers that fetch) of the verified artifact. */
  artifactPath: string;
  /** When set, the server verifies the artifact before loading. */
  sha256?: string;
  replicas: number;
  serving?: ServingOptions;
  /**
   * The traffic share (0–100) it takes when it comes up; default 100. A driver that scales with
   * weight sizes a new deployment for it (`replicas` stays its full size); a running one keeps its
   * count, since every traffic change resizes it (scaleToWeight).
   */
  weight?: number;
}

export interface Deployment {
  /** Deterministic name, see deploymentName(). */
  name: string;
  model: string;
  version: string;
  environment: Environment;
  replicas: number;
  /** Its size at 100% of the traffic, when scaleWithWeight runs it smaller; absent: `replicas`. */
  fullReplicas?: number;
  /** Base URLs of ready replicas, e.g. http://127.0.0.1:41234 */
  endpoints: string[];
  ready: boolean;
  /** The serving options it was deployed with, where the driver keeps them (local: its state). */
  serving?: ServingOptions;
}

export interface FleetCallOptions {
  signal?: AbortSignal;
  /** Called while waiting for readiness; activities heartbeat from here. */
  onProgress?: (message: string) => void;
}

export interface FleetDriver {
  /** Idempotent: deploying what already runs returns the same endpoints. Resolves when ready. */
  deploy(req: DeploymentRequest, opts?: FleetCallOptions): Promise<Deployment>;
  scale(name: string, replicas: number, opts?: FleetCallOptions): Promise<Deployment>;
  /**
   * Sizes a deployment for `weight` percent of its model's traffic (replicasForWeight of its full
   * size), never above `atMost` (the promotion's replica budget while traffic moves). Drivers that
   * keep every version at full size (local; kubernetes without scaleWithWeight) say so and return
   * the deployment as it is. Called by the traffic activity around every route change.
   */
  scaleToWeight(
    name: string,
    weight: number,
    opts?: FleetCallOptions & { atMost?: number },
  ): Promise<Deployment>;
  get(name: string): Promise<Deployment | undefined>;
  list(filter?: { model?: string; environment?: Environment }): Promise<Deployment[]>;
  /** Idempotent: tearing down what is gone succeeds. */
  teardown(name: string, opts?: FleetCallOptions): Promise<void>;
}

/** The model server refused the artifact (digest, file, signature): deploying it again cannot succeed. */
export class DeployRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeployRefusedError';
  }
}

/** One definition of the naming for the promotion, its rollback and every driver. */
export { deploymentName } from '../../workflows/deployments';
