/**
 * Bound series against prom-client's own Counter and Histogram: the same observations, each in
 * its own Registry, must read back as the same exposition text, sample for sample.
 */
import fc from 'fast-check';
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BoundCounter, BoundHistogram, register } from '../../serving/metrics/bound-series';

const BUCKETS = [0.001, 0.005, 0.01, 0.1, 1];

describe('bound series', () => {
  it('read back exactly as prom-client formats the same counts and observations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            variant: fc.constantFrom('v1', 'v2'),
            code: fc.constantFrom('2xx', '5xx'),
            // Values on the bucket bounds too: both count them upper-inclusive.
            seconds: fc.oneof(fc.constantFrom(...BUCKETS, 0, 5), fc.double({ min: 0, max: 3, noNaN: true })),
          }),
          { maxLength: 200 },
        ),
        async (ops) => {
          const theirs = new Registry();
          const ours = new Registry();
          const c1 = new Counter({
            name: 'x_requests_total',
            help: 'h',
            labelNames: ['variant', 'code'],
            registers: [theirs],
          });
          const h1 = new Histogram({
            name: 'x_seconds',
            help: 'h',
            labelNames: ['variant'],
            buckets: BUCKETS,
            registers: [theirs],
          });
          const c2 = new BoundCounter('x_requests_total', 'h');
          const h2 = new BoundHistogram('x_seconds', 'h', BUCKETS);
          register(ours, c2, h2);
          for (const v of ['v1', 'v2']) {
            for (const code of ['2xx', '5xx']) {
              c1.inc({ variant: v, code }, 0);
              c2.child({ variant: v, code });
            }
            h1.zero({ variant: v });
            h2.child({ variant: v });
          }
          for (const o of ops) {
            c1.inc({ variant: o.variant, code: o.code });
            c2.child({ variant: o.variant, code: o.code }).inc();
            h1.observe({ variant: o.variant }, o.seconds);
            h2.child({ variant: o.variant }).observe(o.seconds);
          }
          const lines = async (r: Registry) => (await r.metrics()).split('\n').filter(Boolean).sort();
          expect(await lines(ours)).toEqual(await lines(theirs));
        },
      ),
      { numRuns: 50 },
    );
  });
});
