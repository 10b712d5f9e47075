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
 *
 * Every served request writes here, so it lives in typed arrays rather than a Map of strings to
 * objects: with a Map, each request's key and slot survived into the old generation and the
 * collector marked 200 000 of them over and over (bench:router: 7 µs of a routed request's ~45 µs).
 * A key is kept as two independent 32-bit hashes, seeded per process, of `requestKey` /
 * `unitKey`: two live keys are mistaken for each other with odds of about n²/2⁶⁵ (10⁻⁹ at
 * 200 000), and nobody outside the process can aim for a collision.
 */
export interface Slot {
  variant: string;
  expiresAt: number;
  /** The reward accepted for this slot, as sent. */
  reward?: number;
}

const NONE = -1;
const FIRST_POOL = 1024;

/** The hashes of the last key hashed (two results without an allocation). */
let hashA = 0;
let hashB = 0;
const SEED_A = (Math.random() * 2 ** 32) >>> 0;
const SEED_B = (Math.random() * 2 ** 32) >>> 0;

function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function feed(s: string): void {
  let a = hashA;
  let b = hashB;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x5bd1e995);
    a ^= a >>> 15;
    b = Math.imul(b ^ c, 0x27d4eb2f);
    b ^= b >>> 13;
  }
  // The separator: ("ab", "c") and ("a", "bc") hash apart.
  hashA = Math.imul(a, 0x5bd1e995);
  hashB = Math.imul(b, 0x27d4eb2f);
}

/** Hashes `${kind}\0${model}\0${value}` (the key's text) into hashA / hashB, without building it. */
function hashKey(kind: string, model: string, value: string): void {
  hashA = SEED_A;
  hashB = SEED_B;
  feed(kind);
  feed(model);
  feed(value);
  hashA = fmix(hashA);
  hashB = fmix(hashB ^ 0x9e3779b9);
}

export class AssignmentMemory {
  // Records, linked from the least recently used (head) to the most (tail); a free list reuses
  // removed ones. A record holds its key's hashes and its slot; a slot shared by a unit and the
  // request that opened its window is kept in both records, linked as partners.
  private keyA = new Uint32Array(0);
  private keyB = new Uint32Array(0);
  private variantOf = new Uint32Array(0);
  private expires = new Float64Array(0);
  /** NaN: no reward yet. */
  private rewardOf = new Float64Array(0);
  private partner = new Int32Array(0);
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private head = NONE;
  private tail = NONE;
  private free = NONE;
  private used = 0;
  private count = 0;
  /** Open addressing with linear probing: record + 1 per cell, 0 for empty. */
  private index = new Int32Array(0);
  private mask = 0;
  private readonly variants: string[] = [];
  private readonly variantIds = new Map<string, number>();

  constructor(
    private readonly capacity = 200_000,
    readonly ttlMs = 60 * 60 * 1000,
    private readonly now: () => number = Date.now,
  ) {
    if (!(Number.isInteger(capacity) && capacity >= 1))
      throw new Error(`assignment memory capacity: expected a whole number ≥ 1, got ${capacity}`);
    this.resize(Math.min(capacity, FIRST_POOL));
  }

  /** Records that `variant` answered a request with this id and/or unit. */
  served(model: string, id: string | undefined, unit: string | undefined, variant: string): void {
    const v = this.variantId(variant);
    let opened = NONE;
    if (unit !== undefined) {
      hashKey('u', model, unit);
      const live = this.live(hashA, hashB);
      if (live === NONE || this.variantOf[live] !== v) opened = this.open(live, hashA, hashB, v);
    }
    if (id !== undefined) {
      hashKey('r', model, id);
      const live = this.live(hashA, hashB);
      if (live === NONE || this.variantOf[live] !== v) {
        const r = this.open(live, hashA, hashB, v);
        if (opened !== NONE) {
          this.expires[r] = this.expires[opened]!;
          this.partner[r] = opened;
          this.partner[opened] = r;
        }
      }
    }
  }

  /** The live slot of `key` (touching it), or undefined when unknown or expired. */
  recall(key: string): Slot | undefined {
    const r = this.find(key);
    if (r === NONE) return undefined;
    const slot: Slot = { variant: this.variants[this.variantOf[r]!]!, expiresAt: this.expires[r]! };
    const reward = this.rewardOf[r]!;
    if (!Number.isNaN(reward)) slot.reward = reward;
    return slot;
  }

  /** Keeps `reward` in the live slot of `key` (and of its partner); false when there is none. */
  reward(key: string, reward: number): boolean {
    const r = this.find(key);
    if (r === NONE) return false;
    this.rewardOf[r] = reward;
    const p = this.partner[r]!;
    if (p !== NONE) this.rewardOf[p] = reward;
    return true;
  }

  get size(): number {
    return this.count;
  }

  private find(key: string): number {
    // `${kind}\0${model}\0${value}`: model names never hold a NUL (schema.ts), values may.
    const end = key.indexOf('\u0000', 2);
    if (key[1] !== '\u0000' || end < 0) return NONE;
    hashKey(key[0]!, key.slice(2, end), key.slice(end + 1));
    return this.live(hashA, hashB);
  }

  /** The record of a live key, touched; an expired one is removed. */
  private live(a: number, b: number): number {
    let i = a & this.mask;
    for (;;) {
      const e = this.index[i]!;
      if (e === 0) return NONE;
      const r = e - 1;
      if (this.keyA[r] === a && this.keyB[r] === b) {
        if (this.now() >= this.expires[r]!) {
          this.remove(r);
          return NONE;
        }
        this.touch(r);
        return r;
      }
      i = (i + 1) & this.mask;
    }
  }

  /** A fresh slot for the key: in its live record `r` (already touched), or in a new record. */
  private open(r: number, a: number, b: number, v: number): number {
    if (r === NONE) {
      r = this.allocate();
      this.keyA[r] = a;
      this.keyB[r] = b;
      this.place(r);
      this.append(r);
      this.count++;
    } else this.unpartner(r);
    this.variantOf[r] = v;
    this.expires[r] = this.now() + this.ttlMs;
    this.rewardOf[r] = NaN;
    return r;
  }

  private allocate(): number {
    if (this.free !== NONE) {
      const r = this.free;
      this.free = this.next[r]!;
      return r;
    }
    if (this.used === this.keyA.length) {
      if (this.keyA.length < this.capacity) this.resize(Math.min(this.capacity, this.keyA.length * 2));
      else {
        // Full: the least recently used key goes.
        const r = this.head;
        this.remove(r);
        return this.allocate();
      }
    }
    return this.used++;
  }

  private remove(r: number): void {
    this.unpartner(r);
    this.unplace(r);
    this.unlink(r);
    this.next[r] = this.free;
    this.free = r;
    this.count--;
  }

  private unpartner(r: number): void {
    const p = this.partner[r]!;
    if (p !== NONE) this.partner[p] = NONE;
    this.partner[r] = NONE;
  }

  private touch(r: number): void {
    if (r === this.tail) return;
    this.unlink(r);
    this.append(r);
  }

  private unlink(r: number): void {
    const p = this.prev[r]!;
    const n = this.next[r]!;
    if (p === NONE) this.head = n;
    else this.next[p] = n;
    if (n === NONE) this.tail = p;
    else this.prev[n] = p;
  }

  private append(r: number): void {
    this.prev[r] = this.tail;
    this.next[r] = NONE;
    if (this.tail === NONE) this.head = r;
    else this.next[this.tail] = r;
    this.tail = r;
  }

  private place(r: number): void {
    let i = this.keyA[r]! & this.mask;
    while (this.index[i] !== 0) i = (i + 1) & this.mask;
    this.index[i] = r + 1;
  }

  /** Takes `r` out of the index, shifting later cells of its probe run back (no tombstones). */
  private unplace(r: number): void {
    const mask = this.mask;
    let hole = this.keyA[r]! & mask;
    while (this.index[hole] !== r + 1) hole = (hole + 1) & mask;
    this.index[hole] = 0;
    let j = hole;
    for (;;) {
      j = (j + 1) & mask;
      const e = this.index[j]!;
      if (e === 0) return;
      const home = this.keyA[e - 1]! & mask;
      // The entry at j may fill the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!stays) {
        this.index[hole] = e;
        this.index[j] = 0;
        hole = j;
      }
    }
  }

  private resize(size: number): void {
    const grow = <T extends Uint32Array | Int32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const out = make(size);
      out.set(old);
      return out;
    };
    this.keyA = grow(this.keyA, (n) => new Uint32Array(n));
    this.keyB = grow(this.keyB, (n) => new Uint32Array(n));
    this.variantOf = grow(this.variantOf, (n) => new Uint32Array(n));
    this.expires = grow(this.expires, (n) => new Float64Array(n));
    this.rewardOf = grow(this.rewardOf, (n) => new Float64Array(n));
    this.partner = grow(this.partner, (n) => new Int32Array(n).fill(NONE));
    this.prev = grow(this.prev, (n) => new Int32Array(n));
    this.next = grow(this.next, (n) => new Int32Array(n));
    // At most half full: probe runs stay short.
    let cells = 1;
    while (cells < size * 2) cells *= 2;
    this.index = new Int32Array(cells);
    this.mask = cells - 1;
    for (let r = this.head; r !== NONE; r = this.next[r]!) this.place(r);
  }

  private variantId(name: string): number {
    let id = this.variantIds.get(name);
    if (id === undefined) {
      id = this.variants.length;
      this.variants.push(name);
      this.variantIds.set(name, id);
    }
    return id;
  }
}

export const requestKey = (model: string, id: string): string => `r\u0000${model}\u0000${id}`;
export const unitKey = (model: string, unit: string): string => `u\u0000${model}\u0000${unit}`;
