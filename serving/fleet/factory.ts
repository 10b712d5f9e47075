/**
 * The one place that builds the FleetDriver the platform config names (`fleet.driver`). A new
 * driver is a file beside these and a case here (docs/extending.md).
 */
import type { Logger } from '../../common/log';
import { ConfigError, FLEET_DRIVERS, type PlatformConfig } from '../../workers/config';
import type { FleetDriver } from './driver';
import { KubernetesFleet } from './kubernetes';
import { LocalFleet } from './local';

export function createFleet(fleet: PlatformConfig['fleet'], logger: Logger): FleetDriver {
  const driver: string = fleet.driver;
  switch (fleet.driver) {
    case 'local':
      return new LocalFleet({ dir: fleet.stateDir, logger });
    case 'kubernetes': {
      if (!fleet.namespace || !fleet.kubernetes) {
        throw new ConfigError(
          'fleet.kubernetes: fleet.driver "kubernetes" needs fleet.namespace and fleet.kubernetes { image, artifact }',
        );
      }
      return new KubernetesFleet({
        namespace: fleet.namespace,
        connection: { kubeconfig: fleet.kubeconfig, context: fleet.context },
        ...fleet.kubernetes,
        logger,
      });
    }
    default:
      throw new ConfigError(
        `fleet.driver: expected one of ${FLEET_DRIVERS.map((d) => `"${d}"`).join(', ')}, got "${driver}"`,
      );
  }
}
