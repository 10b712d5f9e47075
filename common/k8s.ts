/**
 * Access to the Kubernetes API through @kubernetes/client-node, one place for every seam that
 * talks to a cluster (the kubernetes fleet, the configmap and gateway-api traffic providers, the
 * router's ConfigMap watch). The library (1.x) is ESM-only, so it is loaded with a dynamic import:
 * the CommonJS build keeps `import()` as is, and commands that never touch Kubernetes (most of
 * them) do not pay its load time (about a second).
 */
import type * as K8s from '@kubernetes/client-node' with { 'resolution-mode': 'import' };

export type { K8s };

export interface KubeConnection {
  /** Path of a kubeconfig file. Unset: $KUBECONFIG, ~/.kube/config, or the in-cluster service account. */
  kubeconfig?: string;
  /** Context to use from the kubeconfig (default: its current context). */
  context?: string;
  /** Use the pod's service account even when a kubeconfig exists. */
  inCluster?: boolean;
}

let loaded: Promise<typeof K8s> | undefined;

export function loadK8s(): Promise<typeof K8s> {
  loaded ??= import('@kubernetes/client-node');
  return loaded;
}

export async function kubeConfig(conn: KubeConnection = {}): Promise<K8s.KubeConfig> {
  const k8s = await loadK8s();
  const kc = new k8s.KubeConfig();
  try {
    if (conn.inCluster) kc.loadFromCluster();
    else if (conn.kubeconfig) kc.loadFromFile(conn.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    const where = conn.inCluster
      ? 'the in-cluster service account'
      : (conn.kubeconfig ?? 'the default kubeconfig');
    throw new Error(`cannot load Kubernetes credentials from ${where}: ${(err as Error).message}`);
  }
  if (conn.context) {
    if (!kc.getContexts().some((c) => c.name === conn.context)) {
      throw new Error(
        `kubeconfig has no context "${conn.context}" (has: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(', ') || 'none'
        })`,
      );
    }
    kc.setCurrentContext(conn.context);
  }
  if (!kc.getCurrentCluster()) throw new Error('kubeconfig selects no cluster (set a current context)');
  return kc;
}

export interface KubeClient {
  k8s: typeof K8s;
  config: K8s.KubeConfig;
  /** Generic object API: server-side apply, read, list, delete of any kind. */
  objects: K8s.KubernetesObjectApi;
}

/**
 * A lazily built client for `conn`: credentials load on first use, so constructing a driver never
 * fails or blocks, and a bad kubeconfig is reported by the first call that needs it.
 */
export function lazyClient(conn: KubeConnection = {}): () => Promise<KubeClient> {
  let client: Promise<KubeClient> | undefined;
  return () => {
    client ??= (async () => {
      const k8s = await loadK8s();
      const config = await kubeConfig(conn);
      return { k8s, config, objects: k8s.KubernetesObjectApi.makeApiClient(config) };
    })();
    // A failed load (file missing, then fixed) is tried again next time rather than cached.
    client.catch(() => (client = undefined));
    return client;
  };
}

/** The HTTP status of a failed API call, when it is one. */
export function apiStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/** A short, human reason out of an API error (the Status message, not a stack of JSON). */
export function apiMessage(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  let body = e?.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      /* not JSON: keep the text */
    }
  }
  const msg =
    body && typeof body === 'object' && 'message' in body
      ? String((body as { message: unknown }).message)
      : typeof body === 'string' && body
        ? body
        : (e?.message ?? String(err));
  return e?.code ? `${msg} (HTTP ${e.code})` : msg;
}

export const isNotFound = (err: unknown): boolean => apiStatus(err) === 404;

/**
 * At worker start: the cluster serves `kind` of `apiVersion` and runway may list it in its
 * namespace. A promotion would otherwise fail at its first traffic change, after deploying.
 */
export async function verifyServed(
  objects: KubeClient['objects'],
  what: { driver: string; apiVersion: string; kind: string; namespace: string; install: string },
): Promise<void> {
  try {
    await objects.list(
      what.apiVersion,
      what.kind,
      what.namespace,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      1,
    );
  } catch (err) {
    const msg = apiMessage(err);
    const missing = isNotFound(err) || /unrecognized api version and kind|not found/i.test(msg);
    throw new Error(
      missing
        ? `router.driver "${what.driver}": the cluster does not serve ${what.apiVersion} ${what.kind}; ${what.install} first (${msg})`
        : `router.driver "${what.driver}": cannot list ${what.kind}s in namespace ${what.namespace}: ${msg}`,
    );
  }
}

/** The field manager of everything runway applies. */
export const FIELD_MANAGER = 'runway';

/**
 * Server-side apply with force: runway owns these objects, so a human's `kubectl edit` of a field
 * it manages is taken back. A failure names the object; `hint` says what may be missing.
 */
export async function applyObject(client: KubeClient, obj: K8s.KubernetesObject, hint = ''): Promise<void> {
  try {
    await client.objects.patch(
      obj,
      undefined,
      undefined,
      FIELD_MANAGER,
      true,
      client.k8s.PatchStrategy.ServerSideApply,
    );
  } catch (err) {
    const where = `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
    throw new Error(`apply ${obj.kind} ${where}: ${apiMessage(err)}${isNotFound(err) ? hint : ''}`);
  }
}

/** An object as stored, or undefined when there is none. */
export async function readObject(
  objects: KubeClient['objects'],
  ref: { apiVersion: string; kind: string; name: string; namespace: string },
): Promise<K8s.KubernetesObject | undefined> {
  try {
    return await objects.read({
      apiVersion: ref.apiVersion,
      kind: ref.kind,
      metadata: { name: ref.name, namespace: ref.namespace },
    });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw new Error(`read ${ref.kind} ${ref.namespace}/${ref.name}: ${apiMessage(err)}`);
  }
}

/** Model names allow "_" and capitals; Kubernetes object names do not. */
export const kubeName = (model: string): string => model.toLowerCase().replace(/_/g, '-');
