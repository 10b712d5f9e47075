/** Traffic activities: turn the dial. Endpoints are read from the fleet at the moment of the change. */
import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import type { SetTrafficInput } from './contracts';
import { sha256Hex } from '../serving/router/feedback';
import type { Route } from '../serving/router/route';

export function trafficActivities({ fleet, router, logger, feedbackTokens }: ActivityDeps) {
  const log = logger.child('traffic');
  return {
    async setTraffic(input: SetTrafficInput): Promise<Route & { feedbackTokenRequired?: boolean }> {
      const variants = [];
      for (const v of input.variants) {
        const deployment = await fleet.get(v.deployment);
        if (!deployment || deployment.endpoints.length === 0) {
          // Retryable: the fleet may be replacing a replica; the workflow's retry policy bounds it.
          throw ApplicationFailure.retryable(
            `deployment ${v.deployment} has no ready endpoint for variant ${v.name}`,
          );
        }
        variants.push({ name: v.name, endpoints: deployment.endpoints, weight: v.weight });
      }
      const route: Route = { variants, sticky: input.sticky };
      if (input.mirror && input.mirror.percent > 0) route.mirror = input.mirror;
      if (input.reward !== undefined) route.reward = input.reward;
      const token = feedbackTokens?.[input.model];
      await router.setRoute(
        input.model,
        token === undefined ? route : { ...route, feedback: { tokenSha256: sha256Hex(token) } },
      );
      log.info('route set', {
        model: input.model,
        weights: variants.map((v) => `${v.name}=${v.weight}`).join(','),
        mirror: route.mirror ? `${route.mirror.variant}:${route.mirror.percent}%` : undefined,
        reason: input.reason,
        feedback: token === undefined ? 'open' : 'token',
      });
      // The result lands in the workflow history: it says a token is required, never its digest.
      return token === undefined ? route : { ...route, feedbackTokenRequired: true };
    },

    async removeRoute({ model }: { model: string }): Promise<void> {
      await router.deleteRoute(model);
    },
  };
}
