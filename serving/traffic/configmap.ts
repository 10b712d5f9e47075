/**
 * The `configmap` TrafficRouter, for the runway router running in Kubernetes: one key per model
 * (the Route as JSON) in a ConfigMap that every router replica watches (serving/router/configmap.ts)
 * and applies within a second. The router does everything the builtin provider does; only the
 * path a route takes to it differs.
 */
import { apiMessage, isNotFound, lazyClient, type KubeConnection } from '../../common/k8s';
import type { Route } from '../router/route';
import { parseRoute } from '../router/schema';
import { assertModelName, type RouterCapabilities, type TrafficRouter } from './router';

export interface ConfigMapRef {
  namespace: string;
  name: string;
}

/** `NAMESPACE/NAME` → ref, with an error that says what was expected. */
export function parseConfigMapRef(text: string): ConfigMapRef {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(text.trim());
  if (!m) throw new Error(`expected NAMESPACE/NAME of a ConfigMap (lower-case DNS names), got "${text}"`);
  return { namespace: m[1]!, name: m[3]! };
}

const LABELS = { 'app.kubernetes.io/managed-by': 'runway', 'app.kubernetes.io/component': 'routes' };

export class ConfigMapTrafficRouter implements TrafficRouter {
  readonly kind = 'configmap';
  readonly capabilities: RouterCapabilities = {
    weights: true,
    mirror: true,
    sticky: true,
    feedback: true,
    preview: true,
  };
  private readonly client: ReturnType<typeof lazyClient>;

  constructor(
    private readonly ref: ConfigMapRef,
    connection: KubeConnection = {},
  ) {
    this.client = lazyClient(connection);
  }

  async setRoute(model: string, route: Route): Promise<void> {
    assertModelName(model);
    // The router would refuse it anyway; refusing here tells the caller, not just the router's log.
    const valid = parseRoute(route);
    await this.patchKey(model, JSON.stringify(valid));
  }

  async getRoute(model: string): Promise<Route | undefined> {
    assertModelName(model);
    const text = (await this.read())?.[model];
    return text === undefined ? undefined : parseRoute(JSON.parse(text));
  }

  async deleteRoute(model: string): Promise<void> {
    assertModelName(model);
    if ((await this.read()) === undefined) return;
    await this.patchKey(model, null);
  }

  /** Every key of the ConfigMap, unparsed (what `kubectl get cm -o yaml` shows). */
  async read(): Promise<Record<string, string> | undefined> {
    const { objects } = await this.client();
    try {
      const cm = (await objects.read({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: this.ref.name, namespace: this.ref.namespace },
      })) as { data?: Record<string, string> };
      return cm.data ?? {};
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Error(`read ConfigMap ${this.where()}: ${apiMessage(err)}`);
    }
  }

  private where(): string {
    return `${this.ref.namespace}/${this.ref.name}`;
  }

  /** A merge patch of one key, so writers of different models never overwrite each other. */
  private async patchKey(model: string, value: string | null): Promise<void> {
    const { k8s, objects } = await this.client();
    const meta = { name: this.ref.name, namespace: this.ref.namespace };
    const patch = { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta, data: { [model]: value } };
    try {
      await objects.patch(patch, undefined, undefined, 'runway', undefined, k8s.PatchStrategy.MergePatch);
      return;
    } catch (err) {
      if (!isNotFound(err) || value === null)
        throw new Error(`update ConfigMap ${this.where()}: ${apiMessage(err)}`);
    }
    try {
      await objects.create({ ...patch, metadata: { ...meta, labels: LABELS }, data: { [model]: value } });
    } catch (err) {
      // Another writer created it first: patch again.
      if ((err as { code?: number }).code !== 409)
        throw new Error(`create ConfigMap ${this.where()}: ${apiMessage(err)}`);
      await objects.patch(patch, undefined, undefined, 'runway', undefined, k8s.PatchStrategy.MergePatch);
    }
  }
}
