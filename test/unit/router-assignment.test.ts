import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cumulative, stickyPoint, variantAt } from '../../serving/router/assign';
import { AssignmentMemory, requestKey, unitKey } from '../../serving/router/assignments';
import { close, compareAnswers } from '../../serving/router/compare';
import { Endpoint, pickEndpoint } from '../../serving/router/endpoints';
import type { Route } from '../../serving/router/route';
import { parseRoute, RouteValidationError } from '../../serving/router/schema';

const route = (...weights: number[]): Route => ({
  variants: weights.map((weight, i) => ({ name: `v${i + 1}`, endpoints: ['http://127.0.0.1:1'], weight })),
});

describe('sticky assignment', () => {
  it('hashes a key to the same point every time, spread evenly over [0, 100)', () => {
    expect(stickyPoint('user-42')).toBe(stickyPoint('user-42'));
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 20_000; i++) buckets[Math.floor(stickyPoint(`user-${i}`) / 10)]++;
    for (const b of buckets) expect(Math.abs(b - 2_000)).toBeLessThan(200);
  });

  it('maps points onto cumulative weights, skipping weight-0 variants', () => {
    const b = cumulative(route(30, 0, 70));
    expect(b).toEqual([
      { name: 'v1', upTo: 30 },
      { name: 'v3', upTo: 100 },
    ]);
    expect(variantAt(b, 0)).toBe('v1');
    expect(variantAt(b, 29.99)).toBe('v1');
    expect(variantAt(b, 30)).toBe('v3');
    expect(variantAt(b, 99.999)).toBe('v3');
  });

  it('moves a unit only when a boundary moves past its point', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 100 }),
        (key, w1, w2) => {
          const p = stickyPoint(key);
          const before = variantAt(cumulative(route(w1, 100 - w1)), p);
          const after = variantAt(cumulative(route(w2, 100 - w2)), p);
          // The boundary sits at w: a unit changes variant iff its point lies between the two boundaries.
          const crossed = p < w1 !== p < w2;
          expect(before !== after).toBe(crossed);
        },
      ),
    );
  });
});

describe('route validation', () => {
  it('accepts a valid route and names every bad field otherwise', () => {
    expect(parseRoute(route(50, 50))).toEqual(route(50, 50));
    try {
      parseRoute({
        variants: [{ name: 'a', endpoints: ['nope'], weight: 100 }],
        sticky: { header: 'bad header' },
      });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(RouteValidationError);
      const paths = (err as RouteValidationError).issues.map((i) => i.path);
      expect(paths).toEqual(expect.arrayContaining(['variants[0].endpoints[0]', 'sticky.header']));
    }
    expect(() => parseRoute({ variants: [], extra: 1 })).toThrow(/Unrecognized key|at least one variant/);
    expect(() => parseRoute(null)).toThrow(/\(body\)/);
  });
});

describe('assignment memory', () => {
  it('forgets the least recently used beyond capacity and anything older than the TTL', () => {
    let now = 0;
    const m = new AssignmentMemory(2, 1_000, () => now);
    m.served('fd', 'a', undefined, 'v1');
    m.served('fd', 'b', undefined, 'v2');
    expect(m.recall(requestKey('fd', 'a'))?.variant).toBe('v1');
    m.served('fd', 'c', undefined, 'v1'); // evicts b: recalling a made b the least recently used
    expect(m.recall(requestKey('fd', 'b'))).toBeUndefined();
    expect(m.recall(requestKey('fd', 'c'))?.variant).toBe('v1');
    now = 1_000;
    expect(m.recall(requestKey('fd', 'a'))).toBeUndefined();
    expect(m.size).toBe(1);
  });

  it('gives a unit one slot per window, shared with the request that opened it', () => {
    let now = 0;
    const m = new AssignmentMemory(100, 1_000, () => now);
    m.served('fd', 'r1', 'alice', 'v1');
    m.served('fd', 'r2', 'alice', 'v1');
    expect(m.recall(unitKey('fd', 'alice'))?.variant).toBe('v1');
    // The opening request shares the unit's slot: a reward through one is the other's too.
    expect(m.reward(unitKey('fd', 'alice'), 1)).toBe(true);
    expect(m.recall(requestKey('fd', 'r1'))?.reward).toBe(1);
    expect(m.recall(requestKey('fd', 'r2'))?.reward).toBeUndefined();
    now = 500;
    m.served('fd', 'r3', 'alice', 'v1'); // same window: the rewarded slot stays
    expect(m.recall(unitKey('fd', 'alice'))?.reward).toBe(1);
    m.served('fd', 'r1', undefined, 'v1'); // the same id again: the same request, same slot
    expect(m.recall(requestKey('fd', 'r1'))?.reward).toBe(1);
    m.served('fd', 'r4', 'alice', 'v2'); // the route moved alice: a new assignment, a new slot
    expect(m.recall(unitKey('fd', 'alice'))).toEqual({ variant: 'v2', expiresAt: expect.any(Number) });
    now = 1_600;
    expect(m.recall(unitKey('fd', 'alice'))).toBeUndefined(); // window over, nothing to reward
    m.served('fd', undefined, 'alice', 'v2');
    expect(m.recall(unitKey('fd', 'alice'))).toEqual({ variant: 'v2', expiresAt: expect.any(Number) });
  });
});

/** The memory as it was before typed arrays (a Map in LRU order): the oracle for the one now. */
class MapMemory {
  private readonly entries = new Map<string, { variant: string; expiresAt: number; reward?: number }>();
  constructor(
    private readonly capacity: number,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}
  served(model: string, id: string | undefined, unit: string | undefined, variant: string): void {
    let opened: { variant: string; expiresAt: number; reward?: number } | undefined;
    if (unit !== undefined) {
      const key = unitKey(model, unit);
      if (this.recall(key)?.variant !== variant) opened = this.put(key, this.slot(variant));
    }
    if (id !== undefined) {
      const key = requestKey(model, id);
      if (this.recall(key)?.variant !== variant) this.put(key, opened ?? this.slot(variant));
    }
  }
  recall(key: string) {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    if (this.now() >= e.expiresAt) return undefined;
    this.entries.set(key, e);
    return e;
  }
  get size(): number {
    return this.entries.size;
  }
  private slot(variant: string) {
    return { variant, expiresAt: this.now() + this.ttlMs };
  }
  private put(key: string, slot: { variant: string; expiresAt: number }) {
    this.entries.delete(key);
    this.entries.set(key, slot);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return slot;
  }
}

describe('assignment memory against a Map in LRU order', () => {
  type Op =
    | { op: 'served'; model: string; id?: string; unit?: string; variant: string }
    | { op: 'feedback'; unit: boolean; model: string; value: string; reward: number }
    | { op: 'wait'; ms: number };
  const name = (prefix: string, n: number) => fc.integer({ min: 0, max: n }).map((i) => `${prefix}${i}`);
  /** `ids` distinct request ids: beyond 1024 live keys the memory grows its arrays. */
  const ops = (ids: number): fc.Arbitrary<Op> =>
    fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record(
          {
            op: fc.constant('served' as const),
            model: name('m', 1),
            id: name('r', ids),
            unit: name('u', 10),
            variant: name('v', 2),
          },
          { requiredKeys: ['op', 'model', 'variant'] },
        ),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant('feedback' as const),
          unit: fc.boolean(),
          model: name('m', 1),
          value: fc.oneof(name('r', ids), name('u', 10)),
          reward: fc.integer({ min: 0, max: 9 }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 400 }) }),
      },
    );

  it('finds every one of the last `capacity` keys after evicting 50 times as many', () => {
    const m = new AssignmentMemory(2000, 3_600_000, () => 0);
    for (let i = 0; i < 100_000; i++) m.served('m', `req-${i}`, undefined, i % 2 ? 'v1' : 'v2');
    expect(m.size).toBe(2000);
    let found = 0;
    for (let i = 98_000; i < 100_000; i++)
      if (m.recall(requestKey('m', `req-${i}`))?.variant === (i % 2 ? 'v1' : 'v2')) found++;
    expect(found).toBe(2000);
    expect(m.recall(requestKey('m', 'req-97999'))).toBeUndefined();
  });

  for (const capacity of [1, 7, 30, 1500]) {
    it(`remembers, forgets, shares and rewards exactly as the Map did (capacity ${capacity})`, () => {
      fc.assert(
        fc.property(
          fc.array(ops(capacity > 100 ? 4000 : 40), { maxLength: capacity > 100 ? 6000 : 300 }),
          (run) => {
            let now = 0;
            const clock = () => now;
            const typed = new AssignmentMemory(capacity, 1_000, clock);
            const oracle = new MapMemory(capacity, 1_000, clock);
            for (const o of run) {
              if (o.op === 'wait') now += o.ms;
              else if (o.op === 'served') {
                typed.served(o.model, o.id, o.unit, o.variant);
                oracle.served(o.model, o.id, o.unit, o.variant);
              } else {
                const key = o.unit ? unitKey(o.model, o.value) : requestKey(o.model, o.value);
                const want = oracle.recall(key);
                const got = typed.recall(key);
                expect(got).toEqual(want === undefined ? undefined : { ...want });
                // As the feedback desk does: the first reward is kept.
                if (want && want.reward === undefined) {
                  want.reward = o.reward;
                  expect(typed.reward(key, o.reward)).toBe(true);
                }
              }
              expect(typed.size).toBe(oracle.size);
            }
          },
        ),
        { numRuns: capacity > 100 ? 20 : 200 },
      );
    });
  }
});

describe('endpoint balancing', () => {
  it('picks the least outstanding healthy endpoint and re-admits an ejected one after the cool-down', async () => {
    let now = 0;
    const policy = { consecutiveFailures: 2, cooldownMs: 100 };
    const [a, b] = [
      new Endpoint('http://127.0.0.1:1', policy, () => now),
      new Endpoint('http://127.0.0.1:2', policy, () => now),
    ];
    a.outstanding = 3;
    b.outstanding = 1;
    expect(pickEndpoint([a, b], 0)).toBe(b);
    b.failed();
    b.failed();
    expect(b.healthy()).toBe(false);
    expect(pickEndpoint([a, b], 0)).toBe(a);
    a.failed();
    a.failed();
    expect(pickEndpoint([a, b], 0)).toBeUndefined();
    now = 100;
    expect(pickEndpoint([a, b], 0)).toBe(b);
    b.failed(); // on probation: one more failure ejects again
    expect(b.healthy()).toBe(false);
    await Promise.all([a.pool.close(), b.pool.close()]);
  });
});

describe('shadow comparison', () => {
  const json = (data: number[], status = 200) => ({
    status,
    body: Buffer.from(
      JSON.stringify({ outputs: [{ name: 'score', datatype: 'FP32', shape: [data.length, 1], data }] }),
    ),
  });
  const binary = (data: number[]) => {
    const header = Buffer.from(
      JSON.stringify({
        outputs: [
          {
            name: 'score',
            datatype: 'FP32',
            shape: [data.length, 1],
            parameters: { binary_data_size: data.length * 4 },
          },
        ],
      }),
    );
    const bytes = Buffer.alloc(data.length * 4);
    data.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
    return { status: 200, headerLength: header.length, body: Buffer.concat([header, bytes]) };
  };

  it('agrees within tolerance, across JSON and binary encodings', () => {
    expect(close(1, 1.00001, 1e-4)).toBe(true);
    expect(close(1000, 1000.05, 1e-4)).toBe(true); // relative
    expect(close(0.1, 0.2, 1e-4)).toBe(false);
    expect(compareAnswers(json([0.25, 0.5]), json([0.25, 0.50001]), 1e-4)).toBe('agree');
    expect(compareAnswers(json([0.25, 0.5]), binary([0.25, 0.5]), 1e-6)).toBe('agree');
    expect(compareAnswers(binary([0.25, 0.5]), binary([0.25, 0.75]), 1e-4)).toBe('disagree');
    expect(compareAnswers(json([0.25]), json([0.25, 0.5]), 1e-4)).toBe('disagree');
  });

  it('calls a failing or unreadable shadow an error', () => {
    expect(compareAnswers(json([0.5]), json([0.5], 500), 1e-4)).toBe('error');
    expect(compareAnswers(json([0.5]), { status: 200, body: Buffer.from('garbage') }, 1e-4)).toBe('error');
    expect(compareAnswers(json([0.5], 400), json([0.5], 400), 1e-4)).toBe('agree');
    expect(compareAnswers(json([0.5], 400), json([0.5]), 1e-4)).toBe('disagree');
  });
});
