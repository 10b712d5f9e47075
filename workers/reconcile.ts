/**
 * `runway up` at start: every variant a route names gets a live replica before the router takes
 * traffic. Routes outlive model servers (the demo stops its servers, a reboot stops all of them),
 * so a route can name endpoints where nothing listens. Each such variant comes back from its
 * registry artifact, sha256 checked, with the replicas and serving options the fleet remembers
 * (one replica with the server's defaults when the fleet state is gone too). A variant that
 * cannot come back is reported with its version and the reason, never skipped quietly.
 */
import type { ActivityDeps } from '../activities';
import { deploymentName } from '../serving/fleet/driver';
import type { Route } from '../serving/router/route';

export interface UnservedVariant {
  model: string;
  variant: string;
  version?: string;
  weight: number;
  reason: string;
}

export interface ReconcileResult {
  routes: Map<string, Route>;
  /** Models whose route now names other endpoints than before. */
  changed: string[];
  /** Deployments that were (re)started, e.g. `fraud-detector-v2-production`. */
  restarted: string[];
  unserved: UnservedVariant[];
}

export async function reconcileRoutes(
  routes: ReadonlyMap<string, Route>,
  { fleet, registry, logger }: Pick<ActivityDeps, 'fleet' | 'registry' | 'logger'>,
): Promise<ReconcileResult> {
  const result: ReconcileResult = { routes: new Map(), changed: [], restarted: [], unserved: [] };
  for (const [model, route] of routes) {
    const variants = [];
    for (const variant of route.variants) {
      const version = /^v(.+)$/.exec(variant.name)?.[1];
      if (!version) {
        result.unserved.push({
          model,
          variant: variant.name,
          weight: variant.weight,
          reason: 'the variant name does not name a registry version (expected v<version>)',
        });
        variants.push(variant);
        continue;
      }
      const name = deploymentName(model, version, 'production');
      try {
        let deployment = await fleet.get(name);
        if (!deployment?.ready || deployment.endpoints.length === 0) {
          const verified = await registry.verify(model, version); // refuses tampered bytes
          deployment = await fleet.deploy({
            model,
            version,
            environment: 'production',
            artifactPath: verified.artifactPath,
            sha256: verified.sha256,
            replicas: Math.max(1, deployment?.replicas ?? 1),
            serving: deployment?.serving,
          });
          result.restarted.push(name);
          logger.info('replica brought back for its route', {
            model,
            variant: variant.name,
            endpoints: deployment.endpoints.join(','),
          });
        }
        variants.push({ ...variant, endpoints: deployment.endpoints });
      } catch (err) {
        const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
        result.unserved.push({ model, variant: variant.name, version, weight: variant.weight, reason });
        variants.push(variant);
      }
    }
    const next: Route = { ...route, variants };
    if (JSON.stringify(next.variants) !== JSON.stringify(route.variants)) result.changed.push(model);
    result.routes.set(model, next);
  }
  return result;
}

/** The loud line `runway up` prints for a variant it could not bring back. */
export function unservedMessage(u: UnservedVariant): string {
  const what = u.version ? `${u.model} v${u.version}` : `${u.model} variant ${u.variant}`;
  return (
    `${what} (${u.weight}% of its route) cannot be served: ${u.reason}\n` +
    `  its requests fail until it is fixed: push the version again, or \`runway rollback ${u.model} --to VERSION --reason "..."\``
  );
}
