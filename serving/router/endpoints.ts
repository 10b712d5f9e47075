/**
 * Upstream endpoints: one keep-alive connection pool per model-server URL, with the state the
 * balancer needs (outstanding requests, consecutive failures, ejection). The state is keyed by
 * URL and outlives route swaps, so re-weighting a route does not forget that a replica is sick.
 */
import { Upstream } from './upstream';

export interface EjectionPolicy {
  /** Consecutive failures that eject an endpoint (default 5). */
  consecutiveFailures: number;
  /** How long an ejected endpoint sits out before it is tried again (default 5 s). */
  cooldownMs: number;
}

export const defaultEjection: EjectionPolicy = { consecutiveFailures: 5, cooldownMs: 5_000 };

/** Requests in flight to one replica at most (default 256): beyond it the router refuses at once. */
export const DEFAULT_MAX_IN_FLIGHT = 256;

export class Endpoint {
  readonly pool: Upstream;
  /** Other clients of this endpoint (its gRPC side), closed with it. */
  readonly extras: { close(): void }[] = [];
  outstanding = 0;
  private failures = 0;
  private ejectedUntil = 0;

  constructor(
    readonly url: string,
    private readonly policy: EjectionPolicy,
    now: () => number = Date.now,
    readonly maxInFlight = DEFAULT_MAX_IN_FLIGHT,
  ) {
    this.now = now;
    // One connection per request in flight: the pool never queues more than the bound lets in.
    this.pool = new Upstream(url, { connections: maxInFlight, idleMs: 30_000 });
  }

  /**
   * Every slot taken: a new request would wait in the router behind the replica's own queue, and
   * a router that queues turns a replica's quick 503 into a slow pile-up. The caller refuses it.
   */
  full(): boolean {
    return this.outstanding >= this.maxInFlight;
  }

  private readonly now: () => number;

  healthy(): boolean {
    return this.ejectedUntil === 0 || this.now() >= this.ejectedUntil;
  }

  succeeded(): void {
    this.failures = 0;
    this.ejectedUntil = 0;
  }

  failed(): void {
    this.failures++;
    if (this.failures >= this.policy.consecutiveFailures) {
      // Re-admitted after the cool-down on probation: one more failure ejects it again.
      this.ejectedUntil = this.now() + this.policy.cooldownMs;
      this.failures = this.policy.consecutiveFailures - 1;
    }
  }
}

/** All endpoints the router knows, shared by every route that names them. */
export class EndpointRegistry {
  private readonly endpoints = new Map<string, Endpoint>();

  constructor(
    private readonly policy: EjectionPolicy = defaultEjection,
    private readonly now: () => number = Date.now,
    private readonly maxInFlight = DEFAULT_MAX_IN_FLIGHT,
  ) {}

  get(url: string): Endpoint {
    const key = normalize(url);
    let ep = this.endpoints.get(key);
    if (!ep) {
      ep = new Endpoint(key, this.policy, this.now, this.maxInFlight);
      this.endpoints.set(key, ep);
    }
    return ep;
  }

  /** Closes pools no route uses any more (in-flight requests on them finish first). */
  retainOnly(urls: Set<string>): void {
    for (const [key, ep] of this.endpoints) {
      if (!urls.has(key)) {
        this.endpoints.delete(key);
        for (const x of ep.extras) x.close();
        void ep.pool.close().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    const all = [...this.endpoints.values()];
    this.endpoints.clear();
    for (const ep of all) for (const x of ep.extras) x.close();
    await Promise.all(all.map((ep) => ep.pool.destroy().catch(() => undefined)));
  }
}

/** The origin of a base URL: pools are per origin, so `http://h:1/` and `http://h:1` are one. */
export function normalize(url: string): string {
  return new URL(url).origin;
}

/**
 * Least outstanding requests among healthy endpoints; ties go round-robin from `start` so that
 * an idle variant still spreads its load. Undefined when none is healthy.
 */
export function pickEndpoint(endpoints: readonly Endpoint[], start: number): Endpoint | undefined {
  let best: Endpoint | undefined;
  const n = endpoints.length;
  for (let i = 0; i < n; i++) {
    const ep = endpoints[(start + i) % n]!;
    if (!ep.healthy()) continue;
    if (!best || ep.outstanding < best.outstanding) best = ep;
  }
  return best;
}

/** The refusal when every slot of a variant's least loaded replica is taken (HTTP 503, gRPC UNAVAILABLE). */
export function saturatedMessage(variant: string, model: string, limit: number): string {
  return `variant "${variant}" of model "${model}" has ${limit} requests in flight on its least loaded replica (the router's limit per replica); retry later`;
}
