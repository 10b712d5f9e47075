/** The registry factory: what the platform config names is what runs, and a bad choice fails at start. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../registry/factory';
import { FileRegistry } from '../../registry/file';
import { MlflowRegistry } from '../../registry/mlflow';
import { parsePlatformConfig, redacted, type PlatformConfig } from '../../workers/config';

describe('registry factory', () => {
  it('builds the file registry by default and the mlflow one when configured', () => {
    const file = createRegistry(parsePlatformConfig({ registry: { dir: '/tmp/reg' } }).registry);
    expect(file).toBeInstanceOf(FileRegistry);
    expect(file.location).toBe(path.resolve('/tmp/reg'));
    const cfg = parsePlatformConfig({
      registry: {
        driver: 'mlflow',
        mlflow: {
          trackingUri: 'http://127.0.0.1:5000/',
          username: 'ci',
          password: 'hunter2',
          cacheMaxBytes: 1024,
        },
      },
    });
    const mlflow = createRegistry(cfg.registry);
    expect(mlflow).toBeInstanceOf(MlflowRegistry);
    expect(mlflow.location).toBe('MLflow http://127.0.0.1:5000');
    expect((mlflow as MlflowRegistry).cache.maxBytes).toBe(1024);
    expect(cfg.registry.mlflow?.cacheDir).toMatch(/mlflow-cache$/);
    expect(JSON.stringify(redacted(cfg))).not.toContain('hunter2');
  });

  it('names the field and the expected values for an unknown or half-configured choice', () => {
    expect(() => parsePlatformConfig({ registry: { driver: 'sagemaker' } })).toThrow(
      /registry\.driver: .*"file"\|"mlflow"|registry\.driver: .*file.*mlflow/,
    );
    expect(() => parsePlatformConfig({ registry: { driver: 'mlflow' } })).toThrow(
      /registry\.mlflow: registry\.driver "mlflow" needs registry\.mlflow\.trackingUri/,
    );
    expect(() =>
      parsePlatformConfig({ registry: { driver: 'mlflow', mlflow: { trackingUri: 'not a url' } } }),
    ).toThrow(/registry\.mlflow\.trackingUri: expected an absolute URL/);
    expect(() =>
      parsePlatformConfig({
        registry: { driver: 'mlflow', mlflow: { trackingUri: 'http://x:1', password: 'p' } },
      }),
    ).toThrow(/registry\.mlflow\.username: a password needs registry\.mlflow\.username/);
    // built in code rather than parsed: the factory itself refuses
    const odd = { driver: 'oci', dir: '/tmp' } as unknown as PlatformConfig['registry'];
    expect(() => createRegistry(odd)).toThrow(
      'registry.driver: "oci" is not a registry runway knows; expected one of file, mlflow',
    );
    const half = { driver: 'mlflow', dir: '/tmp' } as PlatformConfig['registry'];
    expect(() => createRegistry(half)).toThrow(
      /registry\.mlflow\.trackingUri: registry\.driver "mlflow" needs/,
    );
  });

  it('reads the MLflow client environment variables', async () => {
    const { loadPlatformConfig } = await import('../../workers/config');
    const cfg = loadPlatformConfig({
      file: null,
      env: {
        RUNWAY_REGISTRY_DRIVER: 'mlflow',
        MLFLOW_TRACKING_URI: 'http://127.0.0.1:5000',
        MLFLOW_TRACKING_USERNAME: 'ci',
        MLFLOW_TRACKING_PASSWORD: 'pw',
      },
    });
    expect(cfg.registry).toMatchObject({
      driver: 'mlflow',
      mlflow: { trackingUri: 'http://127.0.0.1:5000', username: 'ci', password: 'pw', experiment: 'runway' },
    });
  });
});
