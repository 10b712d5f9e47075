/**
 * TrafficRouter: the seam the promotion turns like a dial. Providers sit side by side in this
 * folder (`builtin`: the runway router's admin API; `configmap`: a ConfigMap the runway routers
 * watch; `gateway-api`: an HTTPRoute; `istio`: a VirtualService and DestinationRule), and `factory.ts` builds the one the platform config names.
 *
 * Each provider declares what it can do, so a ModelSpec that needs more (an A/B on a router
 * without sticky assignment) is refused before anything deploys, not halfway through.
 */
import type { Route } from '../router/route';
import { isValidModelName } from '../router/schema';

/** What a router can carry out; the runway router (builtin, configmap) does all of it. */
export interface RouterCapabilities {
  /** Split requests over variants by integer weight. */
  weights: boolean;
  /** Copy a share of requests to a shadow variant and drop its answers. */
  mirror: boolean;
  /** Keep a unit (the spec's `experiment.unitHeader`) on one variant while weights hold. */
  sticky: boolean;
  /** Take rewards (`POST /v1/feedback`) and count them per variant, for A/B tests and bandits. */
  feedback: boolean;
  /** Send requests carrying a header to one variant whatever the weights (a blue-green preview). */
  preview: boolean;
}

export type RouterCapability = keyof RouterCapabilities;

export interface TrafficRouter {
  /** The provider's name in the platform config (`router.driver`), for messages. */
  readonly kind: string;
  readonly capabilities: RouterCapabilities;
  setRoute(model: string, route: Route): Promise<void>;
  getRoute(model: string): Promise<Route | undefined>;
  deleteRoute(model: string): Promise<void>;
  /** At worker start: the backend can take routes (e.g. its CRDs are installed). Optional. */
  verify?(): Promise<void>;
}

/** What the promotion of a spec asks of its router, each with the spec field that asks it. */
export interface SpecTrafficNeeds {
  shadow: { enabled: boolean; mirrorPercent: number };
  experiment: { kind: 'none' | 'ab' | 'bandit' };
  /** Absent in runs started before strategies: a canary. */
  strategy?: string;
  blueGreen?: { preview?: unknown };
}

export function requiredCapabilities(
  spec: SpecTrafficNeeds,
): { capability: RouterCapability; field: string }[] {
  const needs: { capability: RouterCapability; field: string }[] = [
    { capability: 'weights', field: 'canary.steps' },
  ];
  if (spec.shadow.enabled && spec.shadow.mirrorPercent > 0)
    needs.push({ capability: 'mirror', field: 'shadow.enabled' });
  if (spec.strategy === 'blue-green' && spec.blueGreen?.preview)
    needs.push({ capability: 'preview', field: 'blueGreen.preview' });
  if (spec.experiment.kind !== 'none') {
    needs.push({ capability: 'sticky', field: `experiment.kind: ${spec.experiment.kind}` });
    needs.push({ capability: 'feedback', field: `experiment.kind: ${spec.experiment.kind}` });
  }
  return needs;
}

const DESCRIBE: Record<RouterCapability, string> = {
  weights: 'weighted splits',
  mirror: 'request mirroring',
  sticky: 'sticky assignment by header',
  feedback: 'per-request rewards (POST /v1/feedback)',
  preview: 'routing by request header',
};

/**
 * Why `router` cannot run a promotion of `spec`, one line per missing capability naming the spec
 * field and the router; empty when it can.
 */
export function unsupportedNeeds(
  spec: SpecTrafficNeeds,
  router: Pick<TrafficRouter, 'kind' | 'capabilities'>,
): string[] {
  const out: string[] = [];
  for (const { capability, field } of requiredCapabilities(spec)) {
    if (!router.capabilities[capability]) {
      out.push(
        `${field} needs ${DESCRIBE[capability]}, which router.driver "${router.kind}" does not provide`,
      );
    }
  }
  return [...new Set(out)];
}

/** Model names become object names and URL segments: refuse a bad one before any call. */
export function assertModelName(model: string): void {
  if (!isValidModelName(model)) {
    throw new Error(`model name "${model}" is invalid: expected letters, digits, ".", "_" or "-"`);
  }
}
