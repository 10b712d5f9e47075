/**
 * The one place that builds the TrafficRouter the platform config names (`router.driver`). A new
 * provider is a file beside these and a case here (docs/extending.md).
 */
import type { KubeConnection } from '../../common/k8s';
import { ConfigError, ROUTER_DRIVERS, type PlatformConfig } from '../../workers/config';
import { BuiltinTrafficRouter } from './builtin';
import { ConfigMapTrafficRouter, parseConfigMapRef } from './configmap';
import { GatewayApiTrafficRouter } from './gateway-api';
import { IstioTrafficRouter } from './istio';
import type { TrafficRouter } from './router';

/**
 * `admin`: the runway router's admin API (router.adminUrl, or the embedded router), which the
 * builtin provider calls. `connection`: the cluster, for the providers that write Kubernetes objects.
 */
export function createTrafficRouter(
  router: PlatformConfig['router'],
  admin: { url: string; token: string } | undefined,
  connection: KubeConnection = {},
): TrafficRouter {
  const driver: string = router.driver;
  switch (router.driver) {
    case 'builtin':
      if (!admin) {
        throw new ConfigError(
          'router.adminUrl: router.driver "builtin" calls the runway router\'s admin API; set router.adminUrl (or RUNWAY_ROUTER_ADMIN_URL)',
        );
      }
      return new BuiltinTrafficRouter({ url: admin.url, token: admin.token });
    case 'configmap':
      if (!router.configMap) {
        throw new ConfigError(
          'router.configMap: router.driver "configmap" needs router.configMap (NAMESPACE/NAME)',
        );
      }
      return new ConfigMapTrafficRouter(parseConfigMapRef(router.configMap), connection);
    case 'gateway-api':
      if (!router.gatewayApi) {
        throw new ConfigError(
          'router.gatewayApi: router.driver "gateway-api" needs router.gatewayApi { namespace, parentRefs: [{ name }] }',
        );
      }
      return new GatewayApiTrafficRouter({ ...router.gatewayApi, connection });
    case 'istio':
      if (!router.istio) {
        throw new ConfigError(
          'router.istio: router.driver "istio" needs router.istio { namespace } (the model Services\' namespace)',
        );
      }
      return new IstioTrafficRouter({ ...router.istio, connection });
    default:
      throw new ConfigError(
        `router.driver: expected one of ${ROUTER_DRIVERS.map((d) => `"${d}"`).join(', ')}, got "${driver}"`,
      );
  }
}
