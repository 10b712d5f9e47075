/**
 * The `gateway-api` TrafficRouter, for clusters that already run a Gateway implementation: a
 * model's route becomes one HTTPRoute (gateway.networking.k8s.io/v1) whose rule matches
 * `/v2/models/<model>` and splits it over the variants' Services by `weight`, with a
 * `RequestMirror` filter copying the mirror percent to the shadow. Weighted splits and mirroring
 * are all Gateway API can express: sticky A/B assignment and bandits need the built-in router.
 */
import type { Route, RouteVariant, TrafficRouter } from './route';
import {
  apiMessage,
  isNotFound,
  kubeConfig,
  loadK8s,
  type K8s,
  type KubeConnection,
} from '../fleet/k8s-client';
import { isValidModelName, parseRoute } from './schema';

export const HTTPROUTE_API = 'gateway.networking.k8s.io/v1';
const ROUTE_ANNOTATION = 'runway.dev/route';

export interface GatewayApiOptions {
  /** Namespace of the HTTPRoutes (and, by default, of the Services they point at). */
  namespace: string;
  /** The Gateway (listener) the routes attach to. */
  parentRefs: { name: string; namespace?: string; sectionName?: string }[];
  hostnames?: string[];
  connection?: KubeConnection;
  /** HTTPRoute name for a model. Default: the model name. */
  routeName?: (model: string) => string;
}

/** A backendRef: a Service and its port. */
export interface ServiceRef {
  name: string;
  namespace?: string;
  port: number;
}

/**
 * The Service behind a variant, read from its endpoint URL: the kubernetes fleet reports
 * `http://<service>.<namespace>.svc[.cluster.local][:port]`, and that is the only kind of
 * endpoint a Gateway can route to.
 */
export function serviceOf(v: RouteVariant, index: number): ServiceRef {
  const url = v.endpoints[0];
  const field = `variants[${index}].endpoints`;
  if (!url) throw new Error(`${field}: the gateway-api router needs the variant's Service URL, got none`);
  if (v.endpoints.length > 1) {
    throw new Error(
      `${field}: the gateway-api router routes to one Service per variant, got ${v.endpoints.length} URLs`,
    );
  }
  const u = new URL(url);
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$/.exec(
    u.hostname,
  );
  if (!m) {
    throw new Error(
      `${field}: expected an in-cluster Service URL such as http://fraud-v7-production.models.svc.cluster.local, got ${url}`,
    );
  }
  return {
    name: m[1]!,
    namespace: m[3]!,
    port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80,
  };
}

/** Gateway API mirrors by integer `percent`, or by `fraction` for shares such as 2.5 %. */
export function mirrorShare(
  percent: number,
): { percent: number } | { fraction: { numerator: number; denominator: number } } {
  if (Number.isInteger(percent)) return { percent };
  return { fraction: { numerator: Math.round(percent * 10_000), denominator: 1_000_000 } };
}

/** The HTTPRoute for a model's route. Pure: tests read it without a cluster. */
export function httpRouteFor(model: string, route: Route, o: GatewayApiOptions): Record<string, unknown> {
  if (route.sticky) {
    throw new Error(
      'route.sticky: sticky assignment needs the builtin router (traffic.router: builtin); the gateway-api router only splits by weight',
    );
  }
  const ref = (s: ServiceRef): Record<string, unknown> => ({
    kind: 'Service',
    name: s.name,
    ...(s.namespace && s.namespace !== o.namespace ? { namespace: s.namespace } : {}),
    port: s.port,
  });
  const services = route.variants.map((v, i) =>
    v.endpoints.length || v.weight > 0 ? serviceOf(v, i) : undefined,
  );
  const backendRefs = route.variants.flatMap((v, i) => {
    const s = services[i];
    return s ? [{ ...ref(s), weight: v.weight }] : [];
  });
  const filters: Record<string, unknown>[] = [];
  if (route.mirror && route.mirror.percent > 0) {
    const i = route.variants.findIndex((v) => v.name === route.mirror!.variant);
    const s = services[i];
    if (!s) throw new Error(`mirror.variant: "${route.mirror.variant}" has no Service to mirror to`);
    filters.push({
      type: 'RequestMirror',
      requestMirror: { backendRef: ref(s), ...mirrorShare(route.mirror.percent) },
    });
  }
  return {
    apiVersion: HTTPROUTE_API,
    kind: 'HTTPRoute',
    metadata: {
      name: (o.routeName ?? defaultRouteName)(model),
      namespace: o.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'runway', 'runway.dev/model': model },
      // The variant names and endpoints, which an HTTPRoute cannot hold, for getRoute.
      annotations: { [ROUTE_ANNOTATION]: JSON.stringify(route) },
    },
    spec: {
      parentRefs: o.parentRefs,
      ...(o.hostnames?.length ? { hostnames: o.hostnames } : {}),
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: `/v2/models/${model}` } }],
          backendRefs,
          ...(filters.length ? { filters } : {}),
        },
      ],
    },
  };
}

/**
 * Refuses a ModelSpec the gateway-api router cannot run, naming the field. Call it where the
 * platform picks the router (the workflow's start, `runway promote`).
 */
export function checkGatewayApiSupport(spec: { experiment?: { kind?: string } }): void {
  const kind = spec.experiment?.kind;
  if (kind === 'ab' || kind === 'bandit') {
    throw new Error(
      `experiment.kind: "${kind}" needs the builtin router (sticky assignment${kind === 'bandit' ? ', per-request rewards' : ''}); ` +
        'the gateway-api router only splits by weight and mirrors. Use experiment.kind: none, or router: builtin',
    );
  }
}

export class GatewayApiTrafficRouter implements TrafficRouter {
  private api?: Promise<{ k8s: typeof K8s; objects: K8s.KubernetesObjectApi }>;

  constructor(private readonly options: GatewayApiOptions) {}

  async setRoute(model: string, route: Route): Promise<void> {
    checkModel(model);
    const obj = httpRouteFor(model, parseRoute(route), this.options);
    const { k8s, objects } = await this.client();
    try {
      await objects.patch(
        obj as K8s.KubernetesObject,
        undefined,
        undefined,
        'runway',
        true,
        k8s.PatchStrategy.ServerSideApply,
      );
    } catch (err) {
      const hint = isNotFound(err) ? ' (are the Gateway API CRDs installed?)' : '';
      throw new Error(
        `apply HTTPRoute ${this.options.namespace}/${this.name(model)}: ${apiMessage(err)}${hint}`,
      );
    }
  }

  async getRoute(model: string): Promise<Route | undefined> {
    checkModel(model);
    const obj = await this.read(model);
    const text = obj?.metadata?.annotations?.[ROUTE_ANNOTATION];
    return text ? parseRoute(JSON.parse(text)) : undefined;
  }

  async deleteRoute(model: string): Promise<void> {
    checkModel(model);
    const obj = await this.read(model);
    if (!obj || obj.metadata?.labels?.['app.kubernetes.io/managed-by'] !== 'runway') return;
    const { objects } = await this.client();
    try {
      await objects.delete({
        apiVersion: HTTPROUTE_API,
        kind: 'HTTPRoute',
        metadata: { name: this.name(model), namespace: this.options.namespace },
      });
    } catch (err) {
      if (!isNotFound(err)) throw new Error(`delete HTTPRoute ${this.name(model)}: ${apiMessage(err)}`);
    }
  }

  /** The HTTPRoute as stored (for inspection and tests). */
  async read(model: string): Promise<K8s.KubernetesObject | undefined> {
    const { objects } = await this.client();
    try {
      return await objects.read({
        apiVersion: HTTPROUTE_API,
        kind: 'HTTPRoute',
        metadata: { name: this.name(model), namespace: this.options.namespace },
      });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Error(`read HTTPRoute ${this.name(model)}: ${apiMessage(err)}`);
    }
  }

  private name(model: string): string {
    return (this.options.routeName ?? defaultRouteName)(model);
  }

  private client(): Promise<{ k8s: typeof K8s; objects: K8s.KubernetesObjectApi }> {
    this.api ??= (async () => {
      const k8s = await loadK8s();
      return {
        k8s,
        objects: k8s.KubernetesObjectApi.makeApiClient(await kubeConfig(this.options.connection)),
      };
    })();
    return this.api;
  }
}

function checkModel(model: string): void {
  if (!isValidModelName(model)) {
    throw new Error(`model name "${model}" is invalid: expected letters, digits, ".", "_" or "-"`);
  }
}

/** Model names allow "_" and capitals; Kubernetes object names do not. */
function defaultRouteName(model: string): string {
  return model.toLowerCase().replace(/_/g, '-');
}
