/**
 * Names that end up in file paths, deployment names (`<model>-v<version>-<env>`) and Kubernetes
 * objects, so they are held to DNS-label rules up front with errors that say what was expected.
 */
import type { Alias, ModelRegistry, ModelVersion, VersionStatus } from './registry';

const MODEL_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const VERSION = /^[a-z0-9]([a-z0-9.-]{0,30}[a-z0-9])?$/;
export const ALIASES: readonly Alias[] = ['staging', 'production', 'previous'];
export const STATUSES: readonly VersionStatus[] = ['candidate', 'rejected', 'production', 'archived'];

export function checkModelName(model: string): string {
  if (typeof model !== 'string' || !MODEL_NAME.test(model)) {
    throw new Error(
      `invalid model name ${JSON.stringify(model)}: expected 1-63 lowercase letters, digits or dashes, ` +
        'starting and ending with a letter or digit (e.g. fraud-detector)',
    );
  }
  return model;
}

export function checkVersion(version: string): string {
  if (typeof version !== 'string' || !VERSION.test(version)) {
    throw new Error(
      `invalid version ${JSON.stringify(version)}: expected 1-32 lowercase letters, digits, dots or dashes, ` +
        'starting and ending with a letter or digit (e.g. 7 or 1.2.0)',
    );
  }
  return version;
}

export function checkAlias(alias: string): Alias {
  if (!(ALIASES as readonly string[]).includes(alias)) {
    throw new Error(`invalid alias ${JSON.stringify(alias)}: expected one of ${ALIASES.join(', ')}`);
  }
  return alias as Alias;
}

export function checkStatus(status: string): VersionStatus {
  if (!(STATUSES as readonly string[]).includes(status)) {
    throw new Error(`invalid status ${JSON.stringify(status)}: expected one of ${STATUSES.join(', ')}`);
  }
  return status as VersionStatus;
}

export function checkMetadata(metadata: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (!/^[A-Za-z0-9_.\-/]{1,128}$/.test(k)) {
      throw new Error(`invalid metadata key ${JSON.stringify(k)}: expected 1-128 letters, digits or _ . - /`);
    }
    if (typeof v !== 'string') throw new Error(`metadata ${k}: expected a string value, got ${typeof v}`);
    out[k] = v;
  }
  return out;
}

/** An alias's version through the registry's own aliases() and get(): the same for every driver. */
export async function versionAt(
  registry: Pick<ModelRegistry, 'aliases' | 'get'>,
  model: string,
  alias: Alias,
): Promise<ModelVersion | undefined> {
  checkAlias(alias);
  const version = (await registry.aliases(model))[alias];
  return version === undefined ? undefined : registry.get(model, version);
}
