/**
 * The platform config picks each seam through its one factory; a missing, unknown or half-set
 * choice fails at worker start with the field and what was expected.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log';
import { ConfigError, parsePlatformConfig, type PlatformConfig } from '../../workers/config';
import { platformDeps } from '../../workers/platform';
import { createFleet } from '../../serving/fleet/factory';
import { KubernetesFleet } from '../../serving/fleet/kubernetes';
import { LocalFleet } from '../../serving/fleet/local';
import { createMetricsSource } from '../../serving/metrics/factory';
import { PrometheusMetricsSource } from '../../serving/metrics/prometheus';
import { ScrapeMetricsSource } from '../../serving/metrics/scrape';
import { BuiltinTrafficRouter } from '../../serving/traffic/builtin';
import { ConfigMapTrafficRouter } from '../../serving/traffic/configmap';
import { createTrafficRouter } from '../../serving/traffic/factory';
import { GatewayApiTrafficRouter } from '../../serving/traffic/gateway-api';

const quiet = createLogger('test', () => {});
const router = { url: 'http://127.0.0.1:8080', token: 't' };
const k8sFleet = {
  driver: 'kubernetes',
  namespace: 'runway-models',
  kubernetes: { image: 'runway:1', artifact: { kind: 'volume', claimName: 'runway-registry' } },
};

describe('platform configuration picks the seams', () => {
  it('defaults to the embedded platform: local fleet, builtin router, scrape metrics', () => {
    const deps = platformDeps(parsePlatformConfig({}), router, quiet);
    expect(deps.fleet).toBeInstanceOf(LocalFleet);
    expect(deps.router).toBeInstanceOf(BuiltinTrafficRouter);
    expect(deps.metrics).toBeInstanceOf(ScrapeMetricsSource);
  });

  it('Kubernetes: kubernetes fleet, ConfigMap routes, Prometheus metrics', () => {
    const config = parsePlatformConfig({
      fleet: k8sFleet,
      router: { driver: 'configmap', configMap: 'runway-system/runway-routes' },
      metrics: { source: 'prometheus', url: 'http://prometheus:9090' },
    });
    const deps = platformDeps(config, router, quiet);
    expect(deps.fleet).toBeInstanceOf(KubernetesFleet);
    expect(deps.router).toBeInstanceOf(ConfigMapTrafficRouter);
    expect(deps.metrics).toBeInstanceOf(PrometheusMetricsSource);
  });

  it('gateway-api is selectable, and needs no runway router when metrics come from Prometheus', () => {
    const config = parsePlatformConfig({
      fleet: k8sFleet,
      router: {
        driver: 'gateway-api',
        gatewayApi: {
          namespace: 'runway-models',
          parentRefs: [{ name: 'inference', namespace: 'gateways' }],
        },
      },
      metrics: { source: 'prometheus', url: 'http://prometheus:9090' },
    });
    const deps = platformDeps(config, undefined, quiet);
    expect(deps.router).toBeInstanceOf(GatewayApiTrafficRouter);
    expect(deps.router.kind).toBe('gateway-api');
    expect(deps.router.capabilities).toEqual({
      weights: true,
      mirror: true,
      sticky: false,
      feedback: false,
      preview: true,
    });
  });

  it('says which field is missing for each driver that needs more', () => {
    expect(() => parsePlatformConfig({ fleet: { driver: 'kubernetes' } })).toThrow(ConfigError);
    expect(() => parsePlatformConfig({ fleet: { driver: 'kubernetes' } })).toThrow(
      /fleet\.kubernetes: fleet\.driver "kubernetes" needs fleet\.namespace and fleet\.kubernetes/,
    );
    expect(() => parsePlatformConfig({ router: { driver: 'configmap' } })).toThrow(/router\.configMap/);
    expect(() => parsePlatformConfig({ router: { driver: 'configmap', configMap: 'no-slash' } })).toThrow(
      /expected NAMESPACE\/NAME/,
    );
    expect(() => parsePlatformConfig({ router: { driver: 'gateway-api' } })).toThrow(
      /router\.gatewayApi: router\.driver "gateway-api" needs router\.gatewayApi \{ namespace, parentRefs/,
    );
    expect(() =>
      parsePlatformConfig({
        router: { driver: 'gateway-api', gatewayApi: { namespace: 'm', parentRefs: [] } },
      }),
    ).toThrow(/router\.gatewayApi\.parentRefs: expected at least one Gateway/);
    expect(() => parsePlatformConfig({ metrics: { source: 'prometheus' } })).toThrow(/metrics\.url/);
  });

  it('names the expected values for an unknown choice', () => {
    expect(() => parsePlatformConfig({ router: { driver: 'linkerd' } })).toThrow(
      /router\.driver: Invalid option: expected one of "builtin"\|"configmap"\|"gateway-api"\|"istio"/,
    );
    expect(() => parsePlatformConfig({ fleet: { driver: 'nomad' } })).toThrow(
      /fleet\.driver: Invalid option: expected one of "local"\|"kubernetes"/,
    );
    expect(() => parsePlatformConfig({ metrics: { source: 'datadog' } })).toThrow(
      /metrics\.source: Invalid option: expected one of "scrape"\|"prometheus"/,
    );
  });

  it('refuses settings that the chosen driver would silently ignore', () => {
    expect(() => parsePlatformConfig({ router: { configMap: 'runway-system/runway-routes' } })).toThrow(
      /router\.configMap: router\.configMap is read only by router\.driver "configmap"/,
    );
    expect(() => parsePlatformConfig({ fleet: { kubernetes: k8sFleet.kubernetes } })).toThrow(
      /fleet\.kubernetes: fleet\.kubernetes is read only by fleet\.driver "kubernetes"/,
    );
  });

  it('the factories refuse what the schema would have (a config built in code) with the field', () => {
    const config = parsePlatformConfig({});
    const bogus = (o: object) => o as unknown as PlatformConfig['fleet'];
    expect(() => createFleet(bogus({ ...config.fleet, driver: 'nomad' }), quiet)).toThrow(
      /fleet\.driver: expected one of "local", "kubernetes", got "nomad"/,
    );
    expect(() => createFleet({ ...config.fleet, driver: 'kubernetes' }, quiet)).toThrow(
      /fleet\.kubernetes: /,
    );
    expect(() => createTrafficRouter(config.router, undefined)).toThrow(
      /router\.adminUrl: router\.driver "builtin" calls the runway router's admin API/,
    );
    expect(() =>
      createTrafficRouter(
        { ...config.router, driver: 'linkerd' } as unknown as PlatformConfig['router'],
        router,
      ),
    ).toThrow(
      /router\.driver: expected one of "builtin", "configmap", "gateway-api", "istio", got "linkerd"/,
    );
    expect(() => createMetricsSource(config.metrics, undefined, quiet)).toThrow(
      /metrics\.url: metrics\.source "scrape" reads a runway router's \/metrics/,
    );
  });
});
