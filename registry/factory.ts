/**
 * The one place that turns the platform config's `registry` block into a ModelRegistry, so the
 * worker, `runway registry` and `runway promote` always talk to the same one. A driver it does not
 * know, or one missing what it needs, fails here (at worker start) with the field and what was
 * expected, not at the first promotion.
 */
import { createLogger, type Logger } from '../common/log';
import { ConfigError, type PlatformConfig } from '../workers/config';
import { FileRegistry } from './file';
import { MlflowRegistry } from './mlflow';
import type { ModelRegistry } from './registry';

export const REGISTRY_DRIVERS = ['file', 'mlflow'] as const;

export function createRegistry(
  config: PlatformConfig['registry'],
  logger: Logger = createLogger('registry'),
): ModelRegistry {
  const driver: string = config.driver;
  if (driver === 'file') return new FileRegistry(config.dir);
  if (driver === 'mlflow') {
    const m = config.mlflow;
    if (!m?.trackingUri) {
      throw new ConfigError(
        'registry.mlflow.trackingUri: registry.driver "mlflow" needs the tracking server URL (e.g. http://127.0.0.1:5000)',
      );
    }
    if (!m.cacheDir)
      throw new ConfigError('registry.mlflow.cacheDir: expected a directory for verified artifacts');
    return new MlflowRegistry({
      trackingUri: m.trackingUri,
      username: m.username,
      password: m.password,
      token: m.token,
      experiment: m.experiment,
      cacheDir: m.cacheDir,
      cacheMaxBytes: m.cacheMaxBytes,
      logger,
    });
  }
  throw new ConfigError(
    `registry.driver: ${JSON.stringify(driver)} is not a registry runway knows; expected one of ${REGISTRY_DRIVERS.join(', ')}`,
  );
}
