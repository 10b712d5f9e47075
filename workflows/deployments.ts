/**
 * What a model version is called in the route and in the fleet, and what deploying it asks for:
 * one definition for the promotion, its cleanup and the standalone rollback.
 * Pure (no Node built-ins), so workflow code and the fleet drivers can share it.
 */
import type { DeployInput, VersionRef } from '../activities/contracts';
import type { Environment } from '../serving/fleet/driver';
import type { ModelSpec } from '../specs/schema';

/** A version's variant in the route: `v7`. */
export const variantName = (version: string): string => `v${version}`;

/** `fraud-detector-v7-production`: the same inputs always name the same deployment. */
export function deploymentName(model: string, version: string, environment: Environment): string {
  return `${model}-v${version}-${environment}`;
}

/** The deploy activity's input for a verified artifact. */
export function deployInput(
  model: string,
  ref: VersionRef,
  environment: Environment,
  serving: ModelSpec['serving'],
  opts: { replicas?: number; ifMissing?: boolean; fullSize?: boolean } = {},
): DeployInput {
  return {
    model,
    version: ref.version,
    environment,
    artifactPath: ref.artifactPath,
    sha256: ref.sha256,
    replicas: opts.replicas ?? serving.replicas,
    serving,
    ...(opts.ifMissing ? { ifMissing: true } : {}),
    ...(opts.fullSize ? { fullSize: true } : {}),
  };
}
