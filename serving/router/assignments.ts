/**
 * Recent assignments (request id or unit → variant), so feedback that arrives after the answer
 * is credited to the variant that served. Bounded (least recently used entries go first) and
 * expiring (a reward for an answer older than the TTL is no longer attributable).
 */
export class AssignmentMemory {
  // Map iteration order is insertion order: re-inserting on touch makes the first entry the LRU.
  private readonly entries = new Map<string, { variant: string; expiresAt: number }>();

  constructor(
    private readonly capacity = 200_000,
    private readonly ttlMs = 60 * 60 * 1000,
    private readonly now: () => number = Date.now,
  ) {}

  remember(key: string, variant: string): void {
    this.entries.delete(key);
    this.entries.set(key, { variant, expiresAt: this.now() + this.ttlMs });
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  recall(key: string): string | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.now() >= e.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    // Touch: recently used entries move to the back of the eviction line (expiry unchanged).
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.variant;
  }

  get size(): number {
    return this.entries.size;
  }
}

export const requestKey = (model: string, id: string): string => `r\u0000${model}\u0000${id}`;
export const unitKey = (model: string, unit: string): string => `u\u0000${model}\u0000${unit}`;
