/**
 * The `gateway-api` TrafficRouter, for clusters that already run a Gateway implementation: a
 * model's route becomes one HTTPRoute (gateway.networking.k8s.io/v1) whose rule matches
 * `/v2/models/<model>` and splits it over the variants' Services by `weight`, with a
 * `RequestMirror` filter copying the mirror percent to the shadow, and for a blue-green preview a
 * rule before it matching the preview header. Weighted splits, mirroring and header matches are
 * all Gateway API can express, and all it declares (`capabilities`): a spec with an A/B test or a
 * bandit is refused at the promotion's start, before anything deploys.
 */
import type { Route, RouteVariant } from '../router/route';
import {
  apiMessage,
  applyObject,
  isNotFound,
  kubeName,
  lazyClient,
  readObject,
  verifyServed,
  type K8s,
  type KubeConnection,
} from '../../common/k8s';
import { parseRoute } from '../router/schema';
import { assertModelName, type RouterCapabilities, type TrafficRouter } from './router';

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
      'route.sticky: sticky assignment needs the runway router (router.driver: builtin or configmap); the gateway-api router only splits by weight',
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
  const path = { type: 'PathPrefix', value: `/v2/models/${model}` };
  const rules: Record<string, unknown>[] = [];
  if (route.preview) {
    // A blue-green preview: a rule with a header match wins over the weighted one (Gateway API
    // gives precedence to the match with more header matches). Any value is a regular expression,
    // which implementations support at their discretion; an exact value is core.
    const i = route.variants.findIndex((v) => v.name === route.preview!.variant);
    const s = services[i];
    if (!s) throw new Error(`preview.variant: "${route.preview.variant}" has no Service to send previews to`);
    const { header, value } = route.preview;
    rules.push({
      matches: [
        {
          path,
          headers: [
            value === undefined
              ? { type: 'RegularExpression', name: header, value: '.+' }
              : { type: 'Exact', name: header, value },
          ],
        },
      ],
      backendRefs: [{ ...ref(s), weight: 1 }],
    });
  }
  rules.push({ matches: [{ path }], backendRefs, ...(filters.length ? { filters } : {}) });
  return {
    apiVersion: HTTPROUTE_API,
    kind: 'HTTPRoute',
    metadata: {
      name: (o.routeName ?? kubeName)(model),
      namespace: o.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'runway', 'runway.dev/model': model },
      // The variant names and endpoints, which an HTTPRoute cannot hold, for getRoute.
      annotations: { [ROUTE_ANNOTATION]: JSON.stringify(route) },
    },
    spec: {
      parentRefs: o.parentRefs,
      ...(o.hostnames?.length ? { hostnames: o.hostnames } : {}),
      rules,
    },
  };
}

export class GatewayApiTrafficRouter implements TrafficRouter {
  readonly kind = 'gateway-api';
  /**
   * HTTPRoute splits by weight, mirrors and matches headers (a blue-green preview); it has no
   * sticky assignment and no reward endpoint.
   */
  readonly capabilities: RouterCapabilities = {
    weights: true,
    mirror: true,
    sticky: false,
    feedback: false,
    preview: true,
  };
  private readonly client: ReturnType<typeof lazyClient>;

  constructor(private readonly options: GatewayApiOptions) {
    this.client = lazyClient(options.connection);
  }

  /**
   * At worker start: the cluster serves HTTPRoute (the Gateway API CRDs are installed) and runway
   * may list them in its namespace. A promotion would otherwise fail at its first traffic change,
   * after deploying.
   */
  async verify(): Promise<void> {
    const { objects } = await this.client();
    await verifyServed(objects, {
      driver: 'gateway-api',
      apiVersion: HTTPROUTE_API,
      kind: 'HTTPRoute',
      namespace: this.options.namespace,
      install: 'install the Gateway API CRDs (standard channel)',
    });
  }

  async setRoute(model: string, route: Route): Promise<void> {
    assertModelName(model);
    const obj = httpRouteFor(model, parseRoute(route), this.options);
    await applyObject(
      await this.client(),
      obj as K8s.KubernetesObject,
      ' (are the Gateway API CRDs installed?)',
    );
  }

  async getRoute(model: string): Promise<Route | undefined> {
    assertModelName(model);
    const obj = await this.read(model);
    const text = obj?.metadata?.annotations?.[ROUTE_ANNOTATION];
    return text ? parseRoute(JSON.parse(text)) : undefined;
  }

  async deleteRoute(model: string): Promise<void> {
    assertModelName(model);
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
    return readObject(objects, {
      apiVersion: HTTPROUTE_API,
      kind: 'HTTPRoute',
      name: this.name(model),
      namespace: this.options.namespace,
    });
  }

  private name(model: string): string {
    return (this.options.routeName ?? kubeName)(model);
  }
}
