/**
 * Variant assignment. Weights become cumulative boundaries on [0, 100); a request lands at a point
 * and takes the variant whose interval holds it. Random requests land anywhere; a sticky unit
 * lands at a point fixed by a hash of its key, so it keeps its variant while the weights stand
 * and moves only when a boundary moves past its point.
 */
import type { Route } from './route';

export interface WeightedVariant {
  name: string;
  /** Exclusive upper boundary of this variant's interval on [0, 100). */
  upTo: number;
}

/** Cumulative boundaries of the variants with weight > 0, in route order. */
export function cumulative(route: Route): WeightedVariant[] {
  const out: WeightedVariant[] = [];
  let acc = 0;
  for (const v of route.variants) {
    if (v.weight <= 0) continue;
    acc += v.weight;
    out.push({ name: v.name, upTo: acc });
  }
  return out;
}

/** The variant whose interval holds `point` (0 ≤ point < 100). */
export function variantAt(boundaries: readonly WeightedVariant[], point: number): string | undefined {
  for (const b of boundaries) if (point < b.upTo) return b.name;
  return boundaries[boundaries.length - 1]?.name;
}

/**
 * Stable point in [0, 100) for a unit key: FNV-1a (32-bit) followed by a murmur3 finalizer so
 * that similar keys (`user-1`, `user-2`) spread evenly. Same key, same point, in every process.
 */
export function stickyPoint(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return ((h >>> 0) / 0x1_0000_0000) * 100;
}
