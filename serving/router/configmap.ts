/**
 * The router's side of the `configmap` TrafficRouter (serving/traffic/configmap.ts): every router
 * replica watches the routes ConfigMap and applies a change within a second. Each key is checked
 * by the router's own validation; a bad one is logged with its field error and the model keeps its
 * previous route, so a typo in a `kubectl edit` never takes traffic down.
 */
import { createLogger, type Logger } from '../../common/log';
import { apiMessage, isNotFound, kubeConfig, loadK8s, type KubeConnection } from '../../common/k8s';
import { sleep } from '../../common/timers';
import type { ConfigMapRef } from '../traffic/configmap';
import type { Route } from './route';
import { isValidModelName, parseRoute, RouteValidationError } from './schema';

export interface RouteWatchOptions {
  ref: ConfigMapRef;
  connection?: KubeConnection;
  /** Publishes the complete route table (the router's replace-all). */
  apply: (routes: Map<string, Route>) => Promise<void>;
  logger?: Logger;
}

export interface RouteWatch {
  /** Resolves once the first read has been applied. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Keeps the router's routes equal to the ConfigMap's valid keys. Lists first, then watches from
 * that resourceVersion; a closed or failed watch lists and watches again (with backoff), so an
 * API server restart loses nothing.
 */
export function watchRouteConfigMap(o: RouteWatchOptions): RouteWatch {
  const log = o.logger ?? createLogger('router.configmap');
  const where = `${o.ref.namespace}/${o.ref.name}`;
  /** Last accepted route per model with the text it came from: unchanged keys keep their object. */
  const accepted = new Map<string, { text: string; route: Route }>();
  const rejected = new Map<string, string>();
  let stopped = false;
  let abort: AbortController | undefined;
  const stopSignal = new AbortController();

  async function absorb(data: Record<string, string>): Promise<void> {
    const next = new Map<string, Route>();
    for (const [model, text] of Object.entries(data)) {
      const prev = accepted.get(model);
      if (prev?.text === text) {
        next.set(model, prev.route);
        continue;
      }
      try {
        if (!isValidModelName(model)) throw new Error(`key "${model}" is not a valid model name`);
        let doc: unknown;
        try {
          doc = JSON.parse(text);
        } catch (err) {
          throw new Error(`not valid JSON: ${(err as Error).message}`);
        }
        const route = parseRoute(doc);
        accepted.set(model, { text, route });
        rejected.delete(model);
        next.set(model, route);
      } catch (err) {
        const why = err instanceof RouteValidationError ? err.message : (err as Error).message;
        // Log each distinct bad text once, not on every resync.
        if (rejected.get(model) !== text) {
          log.error('route in ConfigMap refused; keeping the previous route', {
            configmap: where,
            model,
            error: why,
          });
          rejected.set(model, text);
        }
        if (prev) next.set(model, prev.route);
      }
    }
    for (const model of accepted.keys()) if (!(model in data)) accepted.delete(model);
    await o.apply(next);
  }

  async function run(firstRead: (err?: Error) => void): Promise<void> {
    const k8s = await loadK8s();
    const kc = await kubeConfig(o.connection);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const watch = new k8s.Watch(kc);
    let backoff = 250;
    let first = true;
    while (!stopped) {
      try {
        let rv: string | undefined;
        try {
          const cm = await core.readNamespacedConfigMap({ name: o.ref.name, namespace: o.ref.namespace });
          rv = cm.metadata?.resourceVersion;
          await absorb(cm.data ?? {});
        } catch (err) {
          if (!isNotFound(err)) throw err;
          // No ConfigMap yet: no routes until a writer creates it.
          if (first) log.warn('routes ConfigMap does not exist yet; waiting for it', { configmap: where });
          await absorb({});
        }
        if (first) {
          first = false;
          firstRead();
        }
        backoff = 250;
        const ended = new Promise<void>((resolve) => {
          void watch
            .watch(
              `/api/v1/namespaces/${o.ref.namespace}/configmaps`,
              {
                fieldSelector: `metadata.name=${o.ref.name}`,
                allowWatchBookmarks: true,
                ...(rv ? { resourceVersion: rv } : {}),
              },
              (phase: string, obj: { data?: Record<string, string> }) => {
                if (phase === 'ADDED' || phase === 'MODIFIED') {
                  absorb(obj.data ?? {}).catch((err: unknown) =>
                    log.error('applying routes failed', { configmap: where, err }),
                  );
                } else if (phase === 'DELETED') {
                  // Deleting the ConfigMap is more likely a mistake than a wish for zero traffic.
                  log.warn('routes ConfigMap deleted; keeping the current routes', { configmap: where });
                }
              },
              (err: unknown) => {
                if (err && !stopped && (err as Error).name !== 'AbortError') {
                  log.warn('ConfigMap watch ended; watching again', {
                    configmap: where,
                    error: apiMessage(err),
                  });
                }
                resolve();
              },
            )
            .then((ctl) => {
              abort = ctl;
              if (stopped) ctl.abort();
            })
            .catch((err: unknown) => {
              log.warn('ConfigMap watch failed to start', { configmap: where, error: apiMessage(err) });
              resolve();
            });
        });
        await ended;
      } catch (err) {
        const e = new Error(`routes ConfigMap ${where}: ${apiMessage(err)}`);
        if (first) {
          first = false;
          firstRead(e);
          return;
        }
        log.warn('reading routes ConfigMap failed; retrying', {
          configmap: where,
          error: e.message,
          retryMs: backoff,
        });
      }
      if (stopped) break;
      await sleep(backoff, stopSignal.signal).catch(() => undefined);
      backoff = Math.min(backoff * 2, 5_000);
    }
  }

  let loop: Promise<void> = Promise.resolve();
  const ready = new Promise<void>((resolve, reject) => {
    loop = run((err) => (err ? reject(err) : resolve())).catch((err: unknown) => reject(err as Error));
  });
  return {
    ready,
    async stop(): Promise<void> {
      stopped = true;
      stopSignal.abort();
      abort?.abort();
      await loop.catch(() => undefined);
    },
  };
}
