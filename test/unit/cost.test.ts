/** Cost per 1,000 inferences and a promotion's replica-hours (common/cost.ts). */
import { describe, expect, it } from 'vitest';
import {
  costVerdict,
  money,
  parseCpu,
  parseMemoryGiB,
  promotionCost,
  replicaPrice,
  variantCost,
  type ReplicaPrice,
  type VariantUsage,
} from '../../common/cost';

const resources = { cpu: '2', memory: '4Gi', gpu: 1 };
const price: ReplicaPrice = { currency: 'USD', perHour: 3.6, basis: 'test' };
const usage = (over: Partial<VariantUsage> = {}): VariantUsage => ({
  variant: 'v2',
  requests: 1000,
  latencySeconds: 10,
  replicas: 1,
  instances: 1,
  windowSeconds: 100,
  ...over,
});

describe('replica prices', () => {
  it('parses Kubernetes quantities and refuses others with the field', () => {
    expect(parseCpu('500m')).toBe(0.5);
    expect(parseCpu('2')).toBe(2);
    expect(parseMemoryGiB('512Mi')).toBe(0.5);
    expect(parseMemoryGiB('2Gi')).toBe(2);
    expect(parseMemoryGiB('1G')).toBeCloseTo(0.931, 3);
    expect(() => parseCpu('two')).toThrow(/serving\.resources\.cpu.*"two"/);
    expect(() => parseMemoryGiB('4 gigs')).toThrow(/serving\.resources\.memory/);
  });

  it('sums resources at their prices, or takes the instance type of the device', () => {
    const p = replicaPrice(
      { currency: 'USD', perHour: { cpu: 0.04, memoryGiB: 0.005, gpu: 1.2 } },
      resources,
      'cuda',
    );
    expect(p?.perHour).toBeCloseTo(2 * 0.04 + 4 * 0.005 + 1.2, 9);
    expect(p?.basis).toBe('2 CPU × 0.04 + 4 GiB × 0.005 + 1 GPU × 1.2');
    const i = replicaPrice(
      { currency: 'EUR', perHour: { cpu: 1 }, instances: { cuda: { type: 'g5.xlarge', perHour: 1.006 } } },
      resources,
      'cuda',
    );
    expect(i).toEqual({ currency: 'EUR', perHour: 1.006, basis: 'instance g5.xlarge' });
    // The cpu device has no instance type here: its resources are priced instead.
    expect(
      replicaPrice(
        { currency: 'EUR', perHour: { cpu: 1 }, instances: { cuda: { type: 'g5', perHour: 1 } } },
        resources,
        'cpu',
      )?.perHour,
    ).toBe(2);
    expect(replicaPrice(undefined, resources, 'cpu')).toBeUndefined();
    expect(
      replicaPrice({ currency: 'USD', perHour: { gpu: 2 } }, { ...resources, gpu: 0 }, 'cpu'),
    ).toBeUndefined();
  });
});

describe('variantCost', () => {
  it('prices the window on the replicas held, and at full load by busy time', () => {
    // 1 replica for 100 s at 3.6 $/h = 0.1 $ for 1000 requests: 0.1 $/1k; busy 10 s of 100 s.
    const c = variantCost(usage(), price);
    expect(c.cost).toBeCloseTo(0.1, 9);
    expect(c.per1k).toBeCloseTo(0.1, 9);
    expect(c.utilisation).toBeCloseTo(0.1, 9);
    expect(c.per1kAtFullLoad).toBeCloseTo(0.01, 9);
    expect(c.replicaHours).toBeCloseTo(100 / 3600, 6);
  });

  it('a small share on a whole replica costs more per 1k, but the same at full load', () => {
    const canary = variantCost(usage({ requests: 50, latencySeconds: 0.5 }), price);
    const baseline = variantCost(usage({ variant: 'v1', requests: 950, latencySeconds: 9.5 }), price);
    expect(canary.per1k! / baseline.per1k!).toBeCloseTo(19, 3);
    expect(canary.per1kAtFullLoad).toBeCloseTo(baseline.per1kAtFullLoad!, 9);
  });

  it('sessions share a replica: two instances halve the busy share and the full-load cost', () => {
    const one = variantCost(usage(), price);
    const two = variantCost(usage({ instances: 2 }), price);
    expect(two.utilisation).toBeCloseTo(one.utilisation! / 2, 9);
    expect(two.per1kAtFullLoad).toBeCloseTo(one.per1kAtFullLoad! / 2, 9);
  });

  it('no requests: no per-1k figure; no latency sum: utilisation unknown', () => {
    const idle = variantCost(usage({ requests: 0, latencySeconds: 0 }), price);
    expect(idle.per1k).toBeNull();
    expect(idle.utilisation).toBeNull();
    expect(idle.cost).toBeCloseTo(0.1, 9);
    expect(variantCost(usage({ latencySeconds: undefined }), price).per1kAtFullLoad).toBeNull();
  });
});

describe('costVerdict', () => {
  const gate = { minRequests: 20 };
  it('informs without a gate, in the words of the issue', () => {
    const v = costVerdict(price, usage(), usage({ variant: 'v1', latencySeconds: 5 }), gate);
    expect(v.result).toBe('pass');
    expect(v.reason).toMatch(
      /^candidate v2 0\.1 \$\/1k at 10% utilisation vs baseline v1 0\.1 \$\/1k at 5% utilisation; at full load 0\.01 \$ vs 0\.005 \$\/1k \(\+100%\)$/,
    );
    expect(v.increase).toBeCloseTo(1, 9);
    expect(v.maxIncrease).toBeUndefined();
  });

  it('fails a candidate dearer at full load than the gate allows, passes one within', () => {
    const slow = costVerdict(price, usage({ latencySeconds: 15 }), usage({ variant: 'v1' }), {
      ...gate,
      maxIncrease: 0.2,
    });
    expect(slow.result).toBe('fail');
    expect(slow.reason).toMatch(/^candidate costs \+50% per inference at full load, over the limit \+20%/);
    const ok = costVerdict(price, usage({ latencySeconds: 11 }), usage({ variant: 'v1' }), {
      ...gate,
      maxIncrease: 0.2,
    });
    expect(ok.result).toBe('pass');
    expect(ok.reason).toMatch(/within the limit \+20%$/);
  });

  it('too few requests or unknown utilisation is inconclusive under a gate, never a pass', () => {
    const few = costVerdict(price, usage({ requests: 5 }), usage({ variant: 'v1' }), {
      ...gate,
      maxIncrease: 0.2,
    });
    expect(few.result).toBe('inconclusive');
    expect(few.reason).toMatch(/v2 answered 5 requests, 20 needed/);
    const blind = costVerdict(price, usage({ latencySeconds: 0 }), usage({ variant: 'v1' }), {
      ...gate,
      maxIncrease: 0.2,
    });
    expect(blind.result).toBe('inconclusive');
    expect(costVerdict(price, usage(), undefined, { ...gate, maxIncrease: 0.2 }).result).toBe('inconclusive');
  });
});

describe('money', () => {
  it('three significant digits, no exponent', () => {
    expect(money(0.042, 'USD')).toBe('0.042 $');
    expect(money(0.00001234, 'EUR')).toBe('0.0000123 EUR');
    expect(money(12.345, 'USD')).toBe('12.3 $');
    expect(money(1234.5, 'USD')).toBe('1235 $');
  });
});

describe('promotionCost', () => {
  it('integrates piecewise-constant replica counts over each phase and prices them', () => {
    const t = (s: number): string => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();
    const c = promotionCost(
      [
        { phase: 'staging', from: t(0), to: t(3600), replicas: [{ at: t(0), replicas: 1 }] },
        {
          phase: 'canary',
          from: t(3600),
          to: t(3 * 3600),
          replicas: [
            { at: t(0), replicas: 1 },
            { at: t(2 * 3600), replicas: 3 },
          ],
        },
        { phase: 'shadow', from: t(10), to: t(5), replicas: [{ at: t(0), replicas: 9 }] },
      ],
      { ...price, source: 'history' },
    );
    expect(c.phases).toEqual([
      { phase: 'staging', replicaHours: 1, cost: 3.6 },
      { phase: 'canary', replicaHours: 4, cost: 14.4 },
    ]);
    expect(c).toMatchObject({ replicaHours: 5, cost: 18, currency: 'USD' });
    expect(promotionCost([]).cost).toBeUndefined();
  });
});

describe('platform config `cost`', () => {
  it('takes prices per resource or per instance type, and names the field of a bad one', async () => {
    const { parsePlatformConfig } = await import('../../workers/config');
    expect(parsePlatformConfig({}).cost).toBeUndefined();
    expect(
      parsePlatformConfig({ cost: { perHour: { cpu: 0.04, memoryGiB: 0.005, gpu: 2.5 } } }).cost,
    ).toEqual({
      currency: 'USD',
      perHour: { cpu: 0.04, memoryGiB: 0.005, gpu: 2.5 },
    });
    expect(
      parsePlatformConfig({
        cost: { currency: 'EUR', instances: { cuda: { type: 'g5.xlarge', perHour: 1.006 } } },
      }).cost?.instances?.cuda,
    ).toEqual({ type: 'g5.xlarge', perHour: 1.006 });
    expect(() => parsePlatformConfig({ cost: {} })).toThrow(/cost: cost needs prices: perHour/);
    expect(() => parsePlatformConfig({ cost: { perHour: { cpu: -1 } } })).toThrow(
      /cost\.perHour\.cpu: expected a price of 0 or more per hour, per CPU core/,
    );
    expect(() => parsePlatformConfig({ cost: { perHour: { cpu: '4 cents' } } })).toThrow(
      /cost\.perHour\.cpu/,
    );
    expect(() => parsePlatformConfig({ cost: { currency: 'dollars', perHour: { cpu: 1 } } })).toThrow(
      /cost\.currency: expected an ISO 4217 currency code/,
    );
    expect(() => parsePlatformConfig({ cost: { perHour: { cores: 1 } } })).toThrow(/cost\.perHour/);
  });

  it('the spec gate is optional and refuses a negative allowance', async () => {
    const { testSpec } = await import('../helpers/promotion');
    expect(testSpec('m').canary.analysis.maxCostIncrease).toBeUndefined();
    expect(
      testSpec('m', { canary: { analysis: { maxCostIncrease: 0.2 } } }).canary.analysis.maxCostIncrease,
    ).toBe(0.2);
    expect(() => testSpec('m', { canary: { analysis: { maxCostIncrease: -0.1 } } })).toThrow(
      /canary\.analysis\.maxCostIncrease/,
    );
  });
});

describe("the audit's cost of a promotion, from recorded histories", () => {
  const load = async (name: string) => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const { historiesDir, historyFromJSON } = await import('../helpers/histories');
    const h = historyFromJSON(JSON.parse(fs.readFileSync(path.join(historiesDir, `${name}.json`), 'utf8')));
    return [{ runId: name, events: h.events ?? [] }];
  };

  it('prices replica-hours with the price the looks recorded', async () => {
    const { buildPromotionAudit } = await import('../../audit/report');
    const { promotionMarkdown } = await import('../../audit/markdown');
    const a = buildPromotionAudit('promotion:fd-cost-gate', await load('cost-rollback-v4'));
    expect(a.cost.phases.map((p) => p.phase)).toEqual(['staging', 'canary']);
    expect(a.cost.price).toMatchObject({
      perHour: 0.045,
      source: 'history',
      basis: '1 CPU × 0.04 + 1 GiB × 0.005',
    });
    const sum = a.cost.phases.reduce((n, p) => n + p.replicaHours, 0);
    expect(a.cost.replicaHours).toBeCloseTo(sum, 6);
    expect(a.cost.cost).toBeCloseTo(a.cost.replicaHours * 0.045, 6);
    // Staging ran from its deploy to its teardown, one replica: its hours are that span.
    expect(a.cost.phases[0]!.replicaHours).toBeGreaterThan(0);
    const md = promotionMarkdown(a);
    expect(md).toMatch(
      /- cost of the promotion: [\d.]+ replica-hours \(staging [\d.]+, canary [\d.]+\) = [\d.]+ \$ at 0\.045 \$\/replica-hour \(1 CPU × 0\.04 \+ 1 GiB × 0\.005; as recorded\)/,
    );
    expect(md).toMatch(/- cost per 1,000 inferences at the last look: fail: candidate costs \+\d+%/);
  });

  it("a promotion recorded before prices gets today's, said so, or none", async () => {
    const { buildPromotionAudit } = await import('../../audit/report');
    const { promotionCostText } = await import('../../audit/markdown');
    const runs = await load('latency-rollback-v4');
    const none = buildPromotionAudit('promotion:fd-latency', runs);
    expect(none.cost.phases.map((p) => p.phase)).toEqual(['staging', 'shadow', 'canary']);
    expect(none.cost.cost).toBeUndefined();
    expect(promotionCostText(none.cost)).toMatch(/no price \(platform config `cost`\)$/);
    const priced = buildPromotionAudit('promotion:fd-latency', runs, undefined, undefined, {
      prices: { currency: 'EUR', perHour: { cpu: 1 } },
    });
    expect(priced.cost.price).toMatchObject({ perHour: 1, source: 'config', currency: 'EUR' });
    expect(priced.cost.replicaHours).toBe(none.cost.replicaHours);
    expect(promotionCostText(priced.cost)).toMatch(
      / EUR at 1 EUR\/replica-hour \(1 CPU × 1; today's config\)$/,
    );
  });
});
