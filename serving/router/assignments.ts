/**
 * Recent assignments (request id or unit → the variant that served), so feedback that arrives
 * after the answer is credited to that variant, once. Each served request opens at most one
 * reward slot; a slot takes one reward and refuses the rest (the first is kept).
 *
 * - A request id keeps its slot while it is remembered and served by the same variant: an id
 *   sent again is the same request as far as feedback can tell.
 * - A unit (the sticky header) has one slot per assignment window: the window opens with the
 *   unit's first request to a variant and lasts `ttlMs` from there, however many requests the
 *   unit makes in it; a request after it, or one that the route sends to another variant, opens
 *   the next window. The request that opens a unit's window shares its slot with the unit, so a
 *   request with both an id and a unit earns one reward, not two: accepted rewards never exceed
 *   the requests served.
 *
 * Bounded (least recently used keys go first beyond `capacity`) and expiring (after `ttlMs`). A
 * forgotten slot cannot be rewarded at all (404), so eviction never lets a duplicate in.
 */
export interface Slot {
  variant: string;
  expiresAt: number;
  /** The reward accepted for this slot, as sent. */
  reward?: number;
}

export class AssignmentMemory {
  // Map iteration order is insertion order: re-inserting on touch makes the first entry the LRU.
  private readonly entries = new Map<string, Slot>();

  constructor(
    private readonly capacity = 200_000,
    readonly ttlMs = 60 * 60 * 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records that `variant` answered a request with this id and/or unit. */
  served(model: string, id: string | undefined, unit: string | undefined, variant: string): void {
    let opened: Slot | undefined;
    if (unit !== undefined) {
      const key = unitKey(model, unit);
      const live = this.recall(key);
      if (live?.variant !== variant) opened = this.put(key, this.slot(variant), live !== undefined);
    }
    if (id !== undefined) {
      const key = requestKey(model, id);
      const live = this.recall(key);
      if (live?.variant !== variant) this.put(key, opened ?? this.slot(variant), live !== undefined);
    }
  }

  /** The live slot of `key` (touching it), or undefined when unknown or expired. */
  recall(key: string): Slot | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.now() >= e.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    // Touch: recently used entries move to the back of the eviction line (expiry unchanged).
    this.entries.delete(key);
    this.entries.set(key, e);
    return e;
  }

  get size(): number {
    return this.entries.size;
  }

  private slot(variant: string): Slot {
    return { variant, expiresAt: this.now() + this.ttlMs };
  }

  /** `present`: the key is in the map (recall found it), so it moves to the back. */
  private put(key: string, slot: Slot, present: boolean): Slot {
    if (present) this.entries.delete(key);
    this.entries.set(key, slot);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return slot;
  }
}

export const requestKey = (model: string, id: string): string => `r\u0000${model}\u0000${id}`;
export const unitKey = (model: string, unit: string): string => `u\u0000${model}\u0000${unit}`;
