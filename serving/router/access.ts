/**
 * Who may call the front door, and how fast: the API keys file (api-keys.ts) turned into one
 * decision per request, the same for HTTP and gRPC.
 *
 * Order: a key is needed (401), it must be one of ours (401), allowed for the model (403); then
 * the key's own bucket and the model's bucket must each have a token (429 with the seconds to
 * wait). Both buckets are looked at before either is charged, so a request refused by one limit
 * costs nothing against the other.
 *
 * The file is read again when it changes (the directory is watched, which also sees a Kubernetes
 * Secret's atomic symlink swap) or on SIGHUP (reload()). A file that no longer parses keeps the
 * keys in force and says so in the log and in `runway_router_api_key_reloads_total{result}`.
 * Keys are only ever hashed: nothing here logs, counts or returns a presented key.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../common/log';
import { allowsModel, type ApiKey, type ApiKeys, hashKey, loadApiKeys, type RateLimit } from './api-keys';
import type { RouterMetrics } from './metrics';
import { Buckets } from './rate-limit';

export type AccessOutcome =
  'accepted' | 'missing_key' | 'unknown_key' | 'forbidden' | 'rate_limited_key' | 'rate_limited_model';

export const ACCESS_OUTCOMES: readonly AccessOutcome[] = [
  'accepted',
  'missing_key',
  'unknown_key',
  'forbidden',
  'rate_limited_key',
  'rate_limited_model',
];

export type Admission =
  | { ok: true; keyId: string }
  | {
      ok: false;
      status: 401 | 403 | 429;
      outcome: Exclude<AccessOutcome, 'accepted'>;
      message: string;
      /** 429 only: whole seconds to wait (Retry-After), at least 1. */
      retryAfterS?: number;
    };

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The key a request presents: `Authorization: Bearer <key>`, else `x-api-key: <key>`. */
export function presentedKey(authorization: unknown, apiKeyHeader: unknown): string | undefined {
  if (typeof authorization === 'string') {
    const m = BEARER.exec(authorization);
    if (m) return m[1];
  }
  if (typeof apiKeyHeader === 'string' && apiKeyHeader.trim() !== '') return apiKeyHeader.trim();
  return undefined;
}

/** Request headers (and gRPC metadata keys) that carry a key: never forwarded to a replica. */
export const CREDENTIAL_HEADERS = ['authorization', 'x-api-key'] as const;

export interface AccessGateOptions {
  file: string;
  metrics: RouterMetrics;
  log: Logger;
  /** Milliseconds, monotonic. */
  clock?: () => number;
}

function describe(limit: RateLimit): string {
  return `${limit.perSecond} requests/s, burst ${limit.burst}`;
}

export class AccessGate {
  private keys: ApiKeys;
  private readonly keyBuckets = new Buckets();
  private readonly modelBuckets = new Buckets();
  private readonly clock: () => number;
  private watcher: fs.FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private reloading: Promise<boolean> | undefined;

  private constructor(
    private readonly o: AccessGateOptions,
    keys: ApiKeys,
  ) {
    this.clock = o.clock ?? (() => performance.now());
    this.keys = keys;
    this.apply(keys);
  }

  /** Loads the file; a missing or invalid file fails here, at start, with the field at fault. */
  static async open(o: AccessGateOptions): Promise<AccessGate> {
    const gate = new AccessGate(o, await loadApiKeys(o.file));
    o.metrics.apiKeyReloads.inc({ result: 'loaded' });
    o.log.info('API keys loaded', { file: o.file, ...gate.summary() });
    return gate;
  }

  private summary(): { keys: number; modelLimits: number } {
    return { keys: this.keys.byHash.size, modelLimits: this.keys.modelLimits.size };
  }

  private apply(keys: ApiKeys): void {
    const now = this.clock();
    const keyLimits = new Map<string, RateLimit>();
    for (const k of keys.byHash.values()) if (k.rateLimit) keyLimits.set(k.id, k.rateLimit);
    this.keyBuckets.sync(keyLimits, now);
    this.modelBuckets.sync(keys.modelLimits, now);
    this.keys = keys;
    this.o.metrics.apiKeys.set(keys.byHash.size);
  }

  /** Reads the file again; true when the new keys are in force. Concurrent calls share one read. */
  reload(reason: string): Promise<boolean> {
    this.reloading ??= (async () => {
      try {
        const next = await loadApiKeys(this.o.file);
        this.apply(next);
        this.o.metrics.apiKeyReloads.inc({ result: 'loaded' });
        this.o.log.info('API keys reloaded', { reason, ...this.summary() });
        return true;
      } catch (err) {
        this.o.metrics.apiKeyReloads.inc({ result: 'failed' });
        this.o.log.error('API keys file refused; the keys loaded before stay in force', {
          reason,
          error: (err as Error).message,
        });
        return false;
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  /** Reloads when the file (or, for a mounted Secret, its directory's `..data` link) changes. */
  watch(): void {
    if (this.watcher) return;
    const dir = path.dirname(this.o.file);
    const base = path.basename(this.o.file);
    try {
      this.watcher = fs.watch(dir, { persistent: false }, (_event, name) => {
        if (name !== null && name !== base && name !== '..data') return;
        clearTimeout(this.debounce);
        // Editors and kubelet write in several steps: read once they are done.
        this.debounce = setTimeout(() => void this.reload('file changed'), 150);
      });
      this.watcher.on('error', (err) =>
        this.o.log.warn('API keys watch stopped; SIGHUP still reloads', { err }),
      );
    } catch (err) {
      this.o.log.warn('cannot watch the API keys file; SIGHUP reloads it', { dir, err });
    }
  }

  close(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
    this.watcher = undefined;
  }

  /**
   * The verdict on one request for `model`. `routed`: the model has a route; an unrouted model
   * passes here (the caller answers 404) without touching any bucket or label set.
   */
  admit(presented: string | undefined, model: string, routed: boolean): Admission {
    const modelLabel = routed ? model : '';
    if (presented === undefined) {
      return this.refuse('', modelLabel, {
        status: 401,
        outcome: 'missing_key',
        message: 'this router needs an API key: send "Authorization: Bearer <key>" or "x-api-key: <key>"',
      });
    }
    const key: ApiKey | undefined = this.keys.byHash.get(hashKey(presented));
    if (!key) {
      return this.refuse('', modelLabel, {
        status: 401,
        outcome: 'unknown_key',
        message: 'the API key is not known to this router (revoked, mistyped, or for another router)',
      });
    }
    if (!allowsModel(key, model)) {
      return this.refuse(key.id, modelLabel, {
        status: 403,
        outcome: 'forbidden',
        message: `API key "${key.id}" is not allowed to call model "${model}"`,
      });
    }
    if (!routed) return { ok: true, keyId: key.id };
    const now = this.clock();
    const kb = this.keyBuckets.get(key.id);
    const mb = this.modelBuckets.get(model);
    const keyWait = kb?.wait(now) ?? 0;
    const modelWait = mb?.wait(now) ?? 0;
    if (keyWait > 0 || modelWait > 0) {
      const byKey = keyWait >= modelWait;
      const wait = Math.max(keyWait, modelWait);
      const limit = byKey ? kb!.limit : mb!.limit;
      return this.refuse(key.id, model, {
        status: 429,
        outcome: byKey ? 'rate_limited_key' : 'rate_limited_model',
        message: byKey
          ? `API key "${key.id}" is over its rate limit (${describe(limit)}); retry in ${wait.toFixed(3)} s`
          : `model "${model}" is over its rate limit (${describe(limit)}); retry in ${wait.toFixed(3)} s`,
        retryAfterS: Math.max(1, Math.ceil(wait)),
      });
    }
    kb?.take();
    mb?.take();
    this.o.metrics.access.inc({ key_id: key.id, model, outcome: 'accepted' });
    return { ok: true, keyId: key.id };
  }

  private refuse(
    keyId: string,
    model: string,
    verdict: Omit<Extract<Admission, { ok: false }>, 'ok'>,
  ): Admission {
    this.o.metrics.access.inc({ key_id: keyId, model, outcome: verdict.outcome });
    this.o.log.debug('request refused', { keyId: keyId || undefined, model, outcome: verdict.outcome });
    return { ok: false, ...verdict };
  }
}
