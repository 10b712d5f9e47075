/**
 * Traffic activities: turn the dial. Endpoints are read from the fleet at the moment of the change,
 * and the fleet is sized around it (scaleWithWeight, serving/fleet/sizing.ts): whoever gains weight
 * grows before the route changes, whoever loses shrinks after, within the spec's replica budget.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import type { SetTrafficInput } from './contracts';
import { cancellationSignal, heartbeat } from './context';
import { sha256Hex } from '../common/digest';
import { deploymentName, type Deployment } from '../serving/fleet/driver';
import { planScaling, type ScalePlan, type ScaleStep } from '../serving/fleet/sizing';
import type { Route } from '../serving/router/route';
import { unsupportedNeeds, type SpecTrafficNeeds, type TrafficRouter } from '../serving/traffic/router';

/**
 * Refuses, before anything deploys, a spec that needs what the configured router cannot do (an
 * A/B test on a router without sticky assignment): permanent, since retrying changes nothing.
 */
export function refuseUnsupported(spec: SpecTrafficNeeds, router: TrafficRouter): void {
  const missing = unsupportedNeeds(spec, router);
  if (missing.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `this platform's router cannot run the spec: ${missing.join('; ')}. Change the spec or use router.driver "builtin" or "configmap"`,
      'RouterUnsupported',
    );
  }
}

/**
 * Blue-green sizing: every version in the route back at full size before traffic moves, and
 * nothing shrinks after (the old version keeps its size until it is torn down).
 */
function fullSize(deployments: Deployment[]): ScalePlan {
  const before = deployments
    .filter((d) => d.replicas < (d.fullReplicas ?? d.replicas))
    .map((d) => ({ name: d.name, weight: 100, replicas: d.fullReplicas ?? d.replicas }));
  return { budget: Infinity, before, after: [] };
}

export function trafficActivities({ fleet, router, registry, logger, feedbackTokens }: ActivityDeps) {
  const log = logger.child('traffic');
  const scaleOpts = () => ({
    signal: cancellationSignal(),
    onProgress: (message: string) => heartbeat({ message }),
  });

  async function apply(steps: ScaleStep[], model: string, when: string): Promise<void> {
    for (const s of steps) {
      const d = await fleet.scaleToWeight(s.name, s.weight, { ...scaleOpts(), atMost: s.atMost });
      log.info('sized for traffic', { model, name: s.name, weight: s.weight, replicas: d.replicas, when });
    }
  }

  /** Deployments that take all the traffic back as a rollback: a version that served production. */
  async function rollbackTargets(model: string, input: SetTrafficInput): Promise<Set<string>> {
    const full = input.variants.filter((v) => v.weight === 100);
    if (full.length === 0) return new Set();
    const served = new Set<string>();
    for (const alias of ['production', 'previous'] as const) {
      // Traffic never waits on the registry: with it down (an MLflow outage) the route still
      // moves, sized by weight alone, and the rollback-to-full-size exception is skipped.
      const v = await registry.resolveAlias(model, alias).catch((err: unknown) => {
        log.warn('registry unreadable while sizing for a route change; sizing by weight alone', {
          model,
          alias,
          error: err instanceof Error ? err.message : String(err),
        });
        return undefined;
      });
      if (v) served.add(deploymentName(model, v.version, 'production'));
    }
    return new Set(full.map((v) => v.deployment).filter((d) => served.has(d)));
  }

  return {
    async setTraffic(input: SetTrafficInput): Promise<Route & { feedbackTokenRequired?: boolean }> {
      const named = new Map<string, Deployment>();
      for (const v of input.variants) {
        const deployment = await fleet.get(v.deployment);
        if (!deployment || deployment.endpoints.length === 0) {
          // Retryable: the fleet may be replacing a replica; the workflow's retry policy bounds it.
          throw ApplicationFailure.retryable(
            `deployment ${v.deployment} has no ready endpoint for variant ${v.name}`,
          );
        }
        named.set(v.deployment, deployment);
      }
      // Every production version of the model counts against the budget; one missing from the
      // route takes no traffic and shrinks to its smallest size.
      const others = await fleet.list({ model: input.model, environment: 'production' });
      const all = [...named.values(), ...others.filter((d) => !named.has(d.name))];
      const shares = new Map<string, number>();
      for (const v of input.variants) {
        const mirrored = input.mirror && input.mirror.variant === v.name ? input.mirror.percent : 0;
        shares.set(v.deployment, Math.max(shares.get(v.deployment) ?? 0, v.weight, Math.min(100, mirrored)));
      }
      const plan =
        input.sizing === 'full'
          ? fullSize([...named.values()])
          : planScaling(
              all.map((d) => ({
                name: d.name,
                replicas: d.replicas,
                fullReplicas: d.fullReplicas ?? d.replicas,
              })),
              shares,
              await rollbackTargets(input.model, input),
            );
      await apply(plan.before, input.model, 'before the route change');

      // Endpoints after growing: a replica added before the change takes its share at once.
      const grown = new Set(plan.before.map((s) => s.name));
      const variants = [];
      for (const v of input.variants) {
        let d = named.get(v.deployment)!;
        if (grown.has(v.deployment)) d = (await fleet.get(v.deployment)) ?? d;
        variants.push({ name: v.name, endpoints: d.endpoints, weight: v.weight });
      }
      const route: Route = { variants };
      // A router without sticky assignment splits by weight alone; specs that need stickiness
      // (experiments) were refused before anything deployed (prepareCandidate).
      if (input.sticky && router.capabilities.sticky) route.sticky = input.sticky;
      if (input.mirror && input.mirror.percent > 0) route.mirror = input.mirror;
      if (input.reward !== undefined) route.reward = input.reward;
      if (input.preview) {
        if (!router.capabilities.preview) {
          throw ApplicationFailure.nonRetryable(
            `blueGreen.preview needs routing by request header, which router.driver "${router.kind}" does not provide`,
            'RouterUnsupported',
          );
        }
        route.preview = input.preview;
      }
      const token = feedbackTokens?.[input.model];
      await router.setRoute(
        input.model,
        token === undefined ? route : { ...route, feedback: { tokenSha256: sha256Hex(token) } },
      );
      log.info('route set', {
        model: input.model,
        weights: variants.map((v) => `${v.name}=${v.weight}`).join(','),
        mirror: route.mirror ? `${route.mirror.variant}:${route.mirror.percent}%` : undefined,
        preview: route.preview ? `${route.preview.header} → ${route.preview.variant}` : undefined,
        reason: input.reason,
        feedback: token === undefined ? 'open' : 'token',
      });

      // A Service endpoint stays the same as it shrinks; a driver that lists one endpoint per
      // replica loses some here, and the router fails those requests over to the rest.
      await apply(plan.after, input.model, 'after the route change');
      // The result lands in the workflow history: it says a token is required, never its digest.
      return token === undefined ? route : { ...route, feedbackTokenRequired: true };
    },

    async removeRoute({ model }: { model: string }): Promise<void> {
      await router.deleteRoute(model);
    },
  };
}
