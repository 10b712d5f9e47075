/**
 * A token bucket: `burst` requests may come at once, then `perSecond` on average. Refilled lazily
 * from the clock on each look, so an idle bucket costs nothing and there is no timer per key.
 */
import type { RateLimit } from './api-keys';

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly limit: RateLimit,
    now: number,
  ) {
    this.tokens = limit.burst;
    this.last = now;
  }

  /** Seconds until one token is there (0: one is there now). `now` in milliseconds. */
  wait(now: number): number {
    if (now > this.last) {
      this.tokens = Math.min(
        this.limit.burst,
        this.tokens + ((now - this.last) / 1000) * this.limit.perSecond,
      );
      this.last = now;
    }
    return this.tokens >= 1 ? 0 : (1 - this.tokens) / this.limit.perSecond;
  }

  /** Takes one token; call after wait() said 0. */
  take(): void {
    this.tokens -= 1;
  }
}

function sameLimit(a: RateLimit, b: RateLimit): boolean {
  return a.perSecond === b.perSecond && a.burst === b.burst;
}

/**
 * Buckets by name, kept across reloads of the limits: a bucket whose limit is unchanged keeps its
 * level (a reload must not hand every client a fresh burst), a changed one starts full.
 */
export class Buckets {
  private readonly buckets = new Map<string, TokenBucket>();

  /** Makes the set of buckets match `limits`. */
  sync(limits: ReadonlyMap<string, RateLimit>, now: number): void {
    for (const name of this.buckets.keys()) if (!limits.has(name)) this.buckets.delete(name);
    for (const [name, limit] of limits) {
      const b = this.buckets.get(name);
      if (!b || !sameLimit(b.limit, limit)) this.buckets.set(name, new TokenBucket(limit, now));
    }
  }

  get(name: string): TokenBucket | undefined {
    return this.buckets.get(name);
  }
}
