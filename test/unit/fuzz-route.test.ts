/**
 * Input hardening: a route document from the admin API is untrusted. parseRoute either returns a
 * Route or throws RouteValidationError naming each bad field; nothing else, and never slowly.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Route } from '../../serving/router/route';
import { parseRoute, RouteValidationError } from '../../serving/router/schema';

function onlyValidationErrors(input: unknown): Route | undefined {
  const started = performance.now();
  try {
    return parseRoute(input);
  } catch (err) {
    if (!(err instanceof RouteValidationError)) throw err;
    expect(err.issues.length).toBeGreaterThan(0);
    for (const issue of err.issues) {
      expect(issue.path.length).toBeGreaterThan(0);
      expect(issue.message.length).toBeGreaterThan(0);
    }
    return undefined;
  } finally {
    expect(performance.now() - started).toBeLessThan(200);
  }
}

const loose = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -5, max: 120 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.anything({ maxDepth: 1 }),
);
const url = fc.oneof(
  fc.constantFrom('http://127.0.0.1:8001', 'https://a.example', 'ftp://x', 'http://', 'not a url', ''),
  fc.webUrl(),
  fc.string({ maxLength: 16 }),
);
const variant = fc.record(
  {
    name: fc.oneof(fc.constantFrom('v1', 'v2', 'shadow', '-bad', ''), fc.string({ maxLength: 70 })),
    endpoints: fc.oneof(fc.array(url, { maxLength: 3 }), loose),
    weight: fc.oneof(fc.constantFrom(0, 50, 100), loose),
  },
  { requiredKeys: [] },
);
const routeLike = fc.record(
  {
    variants: fc.oneof(fc.array(variant, { maxLength: 4 }), loose),
    mirror: fc.oneof(
      fc.record(
        {
          variant: fc.oneof(fc.constantFrom('v1', 'v2', 'shadow'), loose),
          percent: fc.oneof(fc.double({ min: -10, max: 200 }), loose),
          allowWeightedMirror: fc.oneof(fc.boolean(), loose),
          tolerance: fc.oneof(fc.double(), loose),
          extra: loose,
        },
        { requiredKeys: [] },
      ),
      loose,
    ),
    sticky: fc.oneof(
      fc.record(
        { header: fc.oneof(fc.constantFrom('x-user', 'bad header', ''), loose) },
        { requiredKeys: [] },
      ),
      loose,
    ),
    unknownKey: loose,
  },
  { requiredKeys: [] },
);

describe('route parsing under arbitrary input', () => {
  it('arbitrary values', () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 3 }), (value) => void onlyValidationErrors(value)),
      { numRuns: 300 },
    );
  });

  it('route-shaped objects with arbitrary fields; what parses obeys the route invariants', () => {
    let accepted = 0;
    fc.assert(
      fc.property(routeLike, (value) => {
        const route = onlyValidationErrors(value);
        if (!route) return;
        accepted++;
        expect(route.variants.reduce((s, v) => s + v.weight, 0)).toBe(100);
        expect(new Set(route.variants.map((v) => v.name)).size).toBe(route.variants.length);
      }),
      { numRuns: 300 },
    );
    // Not a property, a guard that the generator is not all noise: some must be refused.
    expect(accepted).toBeLessThan(300);
  });

  it('a valid route with one field replaced by an arbitrary value is refused or still valid', () => {
    const base = {
      variants: [
        { name: 'v1', endpoints: ['http://127.0.0.1:8001'], weight: 90 },
        { name: 'v2', endpoints: ['http://127.0.0.1:8002'], weight: 10 },
      ],
    };
    expect(onlyValidationErrors(base)).toBeDefined();
    fc.assert(
      fc.property(
        fc.constantFrom('name', 'endpoints', 'weight'),
        fc.integer({ min: 0, max: 1 }),
        fc.anything({ maxDepth: 2 }),
        (key, i, value) => {
          const copy = structuredClone(base);
          (copy.variants[i] as Record<string, unknown>)[key] = value;
          onlyValidationErrors(copy);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('names the bad field', () => {
    try {
      parseRoute({ variants: [{ name: 'v1', endpoints: [], weight: 'x' }] });
      expect.unreachable('a string weight must be refused');
    } catch (err) {
      expect(err).toBeInstanceOf(RouteValidationError);
      expect((err as RouteValidationError).issues.map((i) => i.path)).toContain('variants[0].weight');
    }
  });
});
