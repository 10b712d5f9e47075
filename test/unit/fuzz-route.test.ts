/**
 * Input hardening of the router's admin API: any document is a Route or a RouteValidationError
 * naming the fields (never another exception, never a hang); model names never throw.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidModelName, parseRoute, RouteValidationError } from '../../serving/router/schema';

function onlyValidationErrors(doc: unknown): void {
  const started = performance.now();
  try {
    const route = parseRoute(doc);
    // whatever passes is a usable route: weights are integers in range
    for (const v of route.variants) expect(Number.isInteger(v.weight)).toBe(true);
  } catch (err) {
    if (!(err instanceof RouteValidationError)) throw err;
    expect(err.issues.length).toBeGreaterThan(0);
    for (const i of err.issues) expect(i.path.length).toBeGreaterThan(0);
  }
  expect(performance.now() - started).toBeLessThan(500);
}

const url = fc.oneof(
  fc.webUrl(),
  fc.string({ maxLength: 30 }),
  fc.constantFrom('http://', 'ftp://x', 'http://[::1]:1'),
);
const variant = fc.record(
  {
    name: fc.oneof(fc.string({ maxLength: 70 }), fc.constantFrom('v1', 'v2')),
    endpoints: fc.oneof(fc.array(url, { maxLength: 3 }), fc.anything({ maxDepth: 1 })),
    weight: fc.oneof(fc.integer({ min: -10, max: 110 }), fc.double(), fc.string({ maxLength: 3 })),
  },
  { requiredKeys: [] },
);

describe('route validation under arbitrary input', () => {
  it('arbitrary JSON values', () => {
    fc.assert(fc.property(fc.anything({ maxDepth: 4 }), onlyValidationErrors), { numRuns: 1000 });
  });

  it('documents shaped like a route', () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            variants: fc.array(variant, { maxLength: 5 }),
            mirror: fc.oneof(
              fc.record(
                { variant: fc.string({ maxLength: 4 }), percent: fc.double(), tolerance: fc.double() },
                { requiredKeys: [] },
              ),
              fc.anything({ maxDepth: 1 }),
            ),
            sticky: fc.oneof(
              fc.record({ header: fc.string({ maxLength: 20 }) }),
              fc.anything({ maxDepth: 1 }),
            ),
          },
          { requiredKeys: [] },
        ),
        onlyValidationErrors,
      ),
      { numRuns: 2000 },
    );
  });

  it('model names', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200, unit: 'binary' }), (name) => {
        expect(typeof isValidModelName(name)).toBe('boolean');
      }),
      { numRuns: 1000 },
    );
  });
});
