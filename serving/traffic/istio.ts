/**
 * The `istio` TrafficRouter, for meshes that already run Istio: a model's route becomes
 *   - a Service `<model>` over all of the model's production pods (the mesh host),
 *   - a DestinationRule with one subset per variant (the pods of that version's Deployment),
 *   - a VirtualService on that host: weighted destinations over the subsets, `mirror` +
 *     `mirrorPercentage` for the shadow, a header match `x-runway-variant: <name>` that pins a
 *     request to a variant, and, with `route.sticky`, header matches that keep each unit on one
 *     variant (below).
 * Istio has no reward endpoint, so `feedback` is false: A/B tests and bandits need the runway router.
 *
 * Sticky units: Istio cannot hash a header into weighted buckets, but it can match a header by
 * regex. The unit header's last character picks one of 16 buckets (0-9a-f), shared out over the
 * variants in proportion to their weights (largest remainder; steps of 6.25%). That is sticky and
 * proportional when the unit ids end in a uniformly distributed hex digit, as hashed user ids and
 * UUIDs do; requests without the header get the weighted split.
 */
import type { Route } from '../router/route';
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
import { serviceOf } from './gateway-api';
import { assertModelName, type RouterCapabilities, type TrafficRouter } from './router';

export const ISTIO_API = 'networking.istio.io/v1';
const ROUTE_ANNOTATION = 'runway.dev/route';
/** A request with this header is served by the variant it names (QA, replays, upstream assignment). */
export const PIN_HEADER = 'x-runway-variant';
const HEX = '0123456789abcdef';

export interface IstioOptions {
  /** Namespace of the model Services, and of the objects this router writes. */
  namespace: string;
  /** More VirtualService hosts (e.g. models.example.com), beside the in-mesh `<model>` Service. */
  hosts?: string[];
  /** Istio Gateways to bind to (`mesh` is always included, for in-mesh clients). */
  gateways?: string[];
  connection?: KubeConnection;
}

type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: Record<string, unknown> };

/** Shares 16 hex buckets out over weights (largest remainder), in variant order. */
export function stickyBuckets(weights: number[]): number[] {
  const exact = weights.map((w) => (w * HEX.length) / 100);
  const counts = exact.map(Math.floor);
  let left = HEX.length - counts.reduce((a, b) => a + b, 0);
  const order = exact
    .map((e, i) => [e - Math.floor(e), i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left-- <= 0) break;
    counts[i]! += 1;
  }
  return counts;
}

/** The Service, DestinationRule and VirtualService for a model's route. Pure. */
export function istioObjectsFor(model: string, route: Route, o: IstioOptions): Obj[] {
  const name = kubeName(model);
  const host = `${name}.${o.namespace}.svc.cluster.local`;
  const labels = { 'app.kubernetes.io/managed-by': 'runway', 'runway.dev/model': model };
  const subsets = route.variants.map((v, i) => {
    const s = serviceOf(v, i);
    if (s.namespace && s.namespace !== o.namespace) {
      throw new Error(
        `variants[${i}].endpoints: the istio router's subsets live in ${o.namespace}; ${v.name} is in ${s.namespace}`,
      );
    }
    // The fleet names each Deployment's Service after its instance label: the subset's pods.
    return { name: v.name, labels: { 'app.kubernetes.io/instance': s.name } };
  });
  const dest = (variant: string): Record<string, unknown> => ({ host, subset: variant });
  const weighted = route.variants.filter((v) => v.weight > 0);
  const http: Record<string, unknown>[] = route.variants.map((v) => ({
    name: `pin-${v.name}`,
    match: [{ headers: { [PIN_HEADER]: { exact: v.name } } }],
    route: [{ destination: dest(v.name) }],
  }));
  if (route.preview) {
    // A blue-green preview: requests carrying the header (that value, or any) go to the candidate.
    const { variant, header, value } = route.preview;
    http.push({
      name: 'preview',
      match: [{ headers: { [header]: value === undefined ? { regex: '.+' } : { exact: value } } }],
      route: [{ destination: dest(variant) }],
    });
  }
  if (route.sticky) {
    const counts = stickyBuckets(weighted.map((v) => v.weight));
    let at = 0;
    weighted.forEach((v, i) => {
      const chars = HEX.slice(at, at + counts[i]!);
      at += counts[i]!;
      if (!chars) return;
      http.push({
        name: `sticky-${v.name}`,
        match: [
          {
            headers: {
              [route.sticky!.header]: { regex: `.*[${chars}${chars.replace(/[0-9]/g, '').toUpperCase()}]` },
            },
          },
        ],
        route: [{ destination: dest(v.name) }],
      });
    });
  }
  const split: Record<string, unknown> = {
    name: 'split',
    route: weighted.map((v) => ({ destination: dest(v.name), weight: v.weight })),
  };
  if (route.mirror && route.mirror.percent > 0) {
    split.mirror = dest(route.mirror.variant);
    split.mirrorPercentage = { value: route.mirror.percent };
  }
  http.push(split);
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: o.namespace, labels },
      spec: {
        selector: {
          'runway.dev/model': model,
          'runway.dev/env': 'production',
          'app.kubernetes.io/managed-by': 'runway',
        },
        ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
      },
    },
    {
      apiVersion: ISTIO_API,
      kind: 'DestinationRule',
      metadata: { name, namespace: o.namespace, labels },
      spec: { host, subsets },
    },
    {
      apiVersion: ISTIO_API,
      kind: 'VirtualService',
      metadata: {
        name,
        namespace: o.namespace,
        labels,
        annotations: { [ROUTE_ANNOTATION]: JSON.stringify(route) },
      },
      spec: {
        hosts: [host, ...(o.hosts ?? [])],
        ...(o.gateways?.length ? { gateways: ['mesh', ...o.gateways] } : {}),
        http,
      },
    },
  ];
}

export class IstioTrafficRouter implements TrafficRouter {
  readonly kind = 'istio';
  /** Weights, mirroring, header-sticky units and a preview header match; no reward endpoint. */
  readonly capabilities: RouterCapabilities = {
    weights: true,
    mirror: true,
    sticky: true,
    feedback: false,
    preview: true,
  };
  private readonly client: ReturnType<typeof lazyClient>;

  constructor(private readonly options: IstioOptions) {
    this.client = lazyClient(options.connection);
  }

  /** At worker start: the cluster serves Istio's networking API and runway may list it here. */
  async verify(): Promise<void> {
    const { objects } = await this.client();
    await verifyServed(objects, {
      driver: 'istio',
      apiVersion: ISTIO_API,
      kind: 'VirtualService',
      namespace: this.options.namespace,
      install: 'install Istio (or its CRDs)',
    });
  }

  async setRoute(model: string, route: Route): Promise<void> {
    assertModelName(model);
    const client = await this.client();
    // Subsets before the routes that name them, so no request meets an unknown subset.
    for (const obj of istioObjectsFor(model, parseRoute(route), this.options)) {
      await applyObject(client, obj as K8s.KubernetesObject);
    }
  }

  async getRoute(model: string): Promise<Route | undefined> {
    assertModelName(model);
    const obj = await this.read('VirtualService', model);
    const text = obj?.metadata?.annotations?.[ROUTE_ANNOTATION];
    return text ? parseRoute(JSON.parse(text)) : undefined;
  }

  async deleteRoute(model: string): Promise<void> {
    assertModelName(model);
    const { objects } = await this.client();
    for (const [apiVersion, kind] of [
      [ISTIO_API, 'VirtualService'],
      [ISTIO_API, 'DestinationRule'],
      ['v1', 'Service'],
    ] as const) {
      const obj = await this.read(kind, model);
      if (!obj || obj.metadata?.labels?.['app.kubernetes.io/managed-by'] !== 'runway') continue;
      try {
        await objects.delete({
          apiVersion,
          kind,
          metadata: { name: obj.metadata.name, namespace: this.options.namespace },
        });
      } catch (err) {
        if (!isNotFound(err)) throw new Error(`delete ${kind} ${obj.metadata.name}: ${apiMessage(err)}`);
      }
    }
  }

  /** One of the model's objects as stored (for inspection and tests). */
  async read(
    kind: 'VirtualService' | 'DestinationRule' | 'Service',
    model: string,
  ): Promise<K8s.KubernetesObject | undefined> {
    const { objects } = await this.client();
    return readObject(objects, {
      apiVersion: kind === 'Service' ? 'v1' : ISTIO_API,
      kind,
      name: kubeName(model),
      namespace: this.options.namespace,
    });
  }
}
