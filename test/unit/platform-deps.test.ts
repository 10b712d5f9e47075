import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log';
import { ConfigError, parsePlatformConfig } from '../../workers/config';
import { platformDeps } from '../../workers/platform';
import { KubernetesFleet } from '../../serving/fleet/kubernetes';
import { LocalFleet } from '../../serving/fleet/local';
import { ConfigMapTrafficRouter } from '../../serving/router/configmap';
import { BuiltinTrafficRouter } from '../../serving/router/builtin';
import { PrometheusMetricsSource } from '../../serving/metrics/prometheus';
import { ScrapeMetricsSource } from '../../serving/metrics/scrape';

const quiet = createLogger('test', () => {});
const router = { url: 'http://127.0.0.1:8080', token: 't' };

describe('platform configuration picks the seams', () => {
  it('defaults to the embedded platform: local fleet, builtin router, scrape metrics', () => {
    const deps = platformDeps(parsePlatformConfig({}), router, quiet);
    expect(deps.fleet).toBeInstanceOf(LocalFleet);
    expect(deps.router).toBeInstanceOf(BuiltinTrafficRouter);
    expect(deps.metrics).toBeInstanceOf(ScrapeMetricsSource);
  });

  it('Kubernetes: kubernetes fleet, ConfigMap routes, Prometheus metrics', () => {
    const config = parsePlatformConfig({
      fleet: {
        driver: 'kubernetes',
        namespace: 'runway-models',
        kubernetes: { image: 'runway:1', artifact: { kind: 'volume', claimName: 'runway-registry' } },
      },
      router: { driver: 'configmap', configMap: 'runway-system/runway-routes' },
      metrics: { source: 'prometheus', url: 'http://prometheus:9090' },
    });
    const deps = platformDeps(config, router, quiet);
    expect(deps.fleet).toBeInstanceOf(KubernetesFleet);
    expect(deps.router).toBeInstanceOf(ConfigMapTrafficRouter);
    expect(deps.metrics).toBeInstanceOf(PrometheusMetricsSource);
  });

  it('says which field is missing for the kubernetes driver and the ConfigMap router', () => {
    expect(() => parsePlatformConfig({ fleet: { driver: 'kubernetes' } })).toThrow(ConfigError);
    expect(() => parsePlatformConfig({ fleet: { driver: 'kubernetes' } })).toThrow(
      /fleet\.kubernetes: fleet\.driver "kubernetes" needs fleet\.namespace and fleet\.kubernetes/,
    );
    expect(() => parsePlatformConfig({ router: { driver: 'configmap' } })).toThrow(/router\.configMap/);
    expect(() => parsePlatformConfig({ router: { driver: 'configmap', configMap: 'no-slash' } })).toThrow(
      /expected NAMESPACE\/NAME/,
    );
  });
});
