/**
 * The live side of `runway status` and `runway traffic`: the model's route as the router holds it
 * and how many requests it has answered, read through the platform's traffic and metrics seams.
 */
import { createLogger } from '../common/log';
import { formatDuration } from '../specs/duration';
import type { PlatformConfig } from '../workers/config';
import { platformDeps, routerToken, runningRouterUrl } from '../workers/platform';

export interface LiveView {
  /** Where clients send requests (the router). */
  url: string;
  /** Variant → weight of the model's route, or undefined when it has none. */
  weights(model: string): Promise<Record<string, number> | undefined>;
  /** Requests the router has answered for the model since it started. */
  requests(model: string): Promise<number>;
}

/** The configured router, else the embedded one when it runs; undefined when there is none. */
export function liveView(config: PlatformConfig): LiveView | undefined {
  const embedded = config.router.adminUrl ? undefined : runningRouterUrl();
  const url = config.router.adminUrl ?? embedded;
  if (!url) return undefined;
  const token = config.router.token ?? (embedded ? routerToken() : '');
  const { router, metrics } = platformDeps(config, { url, token }, createLogger('cli'));
  return {
    url,
    async weights(model) {
      const route = await router.getRoute(model);
      return route && Object.fromEntries(route.variants.map((v) => [v.name, v.weight]));
    },
    async requests(model) {
      const snap = await metrics.snapshot(model);
      return Object.values(snap.variants).reduce((n, v) => n + v.requests, 0);
    },
  };
}

/** What a look with no requests says, with both ways to send some. */
export function noTrafficHint(model: string, url: string, sinceMs: number): string {
  return (
    `no traffic to ${model} in the last ${formatDuration(sinceMs)}: send requests to ${url}/v2/models/${model}/infer, ` +
    `or run \`runway traffic ${model}\``
  );
}
