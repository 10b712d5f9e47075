/**
 * Routes compiled for the hot path, shared by the router's HTTP and gRPC front doors, and the
 * failover choice both make when an attempt produced no answer.
 */
import type { WeightedVariant } from './assign';
import { type Endpoint, pickEndpoint } from './endpoints';
import type { VariantInstruments } from './metrics';
import type { Route } from './route';

export interface ActiveVariant {
  name: string;
  instruments: VariantInstruments;
  endpoints: Endpoint[];
  /** Round-robin start for tie-breaking among equally loaded endpoints. */
  next: number;
}

/** A route compiled for the hot path. Immutable once published in the table. */
export interface ActiveRoute {
  route: Route;
  boundaries: WeightedVariant[];
  variants: Map<string, ActiveVariant>;
  stickyHeader: string;
  mirror?: { variant: ActiveVariant; percent: number; tolerance?: number; threshold?: number };
  /** Header routing (a blue-green preview); `header` lower-cased. */
  preview?: { variant: ActiveVariant; header: string; value?: string };
}

/**
 * The preview variant when a request's preview header (its value from the HTTP headers or the
 * gRPC metadata) asks for it: any non-empty value, or exactly the route's `value` when it has one.
 */
export function previewTarget(active: ActiveRoute, value: unknown): ActiveVariant | undefined {
  const p = active.preview;
  if (!p || typeof value !== 'string' || value === '') return undefined;
  return p.value === undefined || p.value === value ? p.variant : undefined;
}

/**
 * Where an attempt that produced no answer goes next: another healthy replica of the same variant,
 * else the heaviest other variant of the route that has one. Mirror-only variants (weight 0) never
 * answer clients. Undefined when nothing is left to try.
 */
export function failoverTarget(
  active: ActiveRoute,
  from: ActiveVariant,
  tried: ReadonlySet<Endpoint>,
): { variant: ActiveVariant; endpoint: Endpoint } | undefined {
  const untried = (v: ActiveVariant): Endpoint[] => v.endpoints.filter((e) => !tried.has(e));
  const same = pickEndpoint(untried(from), from.next++);
  if (same) return { variant: from, endpoint: same };
  const others = active.route.variants
    .filter((v) => v.name !== from.name && v.weight > 0)
    .sort((a, b) => b.weight - a.weight);
  for (const o of others) {
    const variant = active.variants.get(o.name)!;
    const endpoint = pickEndpoint(untried(variant), variant.next++);
    if (endpoint) return { variant, endpoint };
  }
  return undefined;
}
