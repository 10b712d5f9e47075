/**
 * The serving defaults of the ModelSpec, as plain data: the schema's `.default()`s read them, and
 * the rollback workflow redeploys and routes with them when no spec is at hand. Pure (no zod), so workflow
 * code may import it.
 */
export const SERVING_DEFAULTS = {
  replicas: 1,
  device: 'cpu',
  instances: 1,
  batching: { maxBatchSize: 32, preferredBatchSizes: [8, 16], maxQueueDelayMs: 2, maxQueueSize: 1024 },
  resources: { cpu: '1', memory: '1Gi', gpu: 0 },
} as const;

/** The request header that keeps a unit (user, session) on one variant: experiment.unitHeader. */
export const UNIT_HEADER_DEFAULT = 'x-runway-unit';
