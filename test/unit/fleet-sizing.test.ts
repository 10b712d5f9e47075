/**
 * scaleWithWeight's plan around a route change: gainers grow before it, losers shrink after, the
 * sum stays within the spec's budget (replicas + 1) at every moment, and a rollback restores the
 * baseline's full size before traffic moves.
 */
import { describe, expect, it } from 'vitest';
import { planScaling, replicasForWeight, type ScalePlan } from '../../serving/fleet/sizing';

type Fleet = Map<string, number>;

/** Applies a plan step by step, returning the replica sum after each step. */
function apply(fleet: Fleet, plan: ScalePlan, full: number): number[] {
  const sums: number[] = [];
  for (const s of [...plan.before, ...plan.after]) {
    const want = Math.min(replicasForWeight(full, s.weight), s.atMost ?? Infinity);
    expect(want).toBe(s.replicas);
    fleet.set(s.name, want);
    sums.push([...fleet.values()].reduce((a, b) => a + b, 0));
  }
  return sums;
}

function change(
  fleet: Fleet,
  full: number,
  shares: Record<string, number>,
  restore: string[] = [],
): ScalePlan {
  return planScaling(
    [...fleet].map(([name, replicas]) => ({ name, replicas, fullReplicas: full })),
    new Map(Object.entries(shares)),
    new Set(restore),
  );
}

describe('replica plan around traffic changes', () => {
  for (const full of [1, 2, 3, 4, 8]) {
    it(`a canary 10/25/50/100 with ${full} replicas never runs more than ${full + 1}`, () => {
      // The candidate joins at 0% (one replica), the baseline serves at full size.
      const fleet: Fleet = new Map([
        ['base', full],
        ['cand', 1],
      ]);
      const seen: number[] = [];
      const steps: Record<string, number>[] = [
        { base: 100, cand: 100 }, // shadow: 0% weight, 100% mirrored
        { base: 90, cand: 10 },
        { base: 75, cand: 25 },
        { base: 50, cand: 50 },
        { cand: 100 }, // graduation: the baseline leaves the route and shrinks to its least
      ];
      for (const shares of steps) {
        const plan = change(fleet, full, shares);
        expect(plan.budget).toBe(full + 1);
        seen.push(...apply(fleet, plan, full));
        // After each change every variant runs at least its share of the full size, within budget.
        for (const [name, n] of fleet) {
          const share = shares[name] ?? 0;
          if (name === 'cand' && shares.base === 100) continue; // the shadow gets what the budget leaves
          expect(n, `${name} at ${share}%`).toBe(replicasForWeight(full, share));
        }
      }
      expect(Math.max(...seen, 0)).toBeLessThanOrEqual(full + 1);
      expect(fleet.get('cand')).toBe(full);
      expect(fleet.get('base')).toBe(1);
    });
  }

  it('gainers grow before the route changes and losers shrink after', () => {
    const plan = change(
      new Map([
        ['base', 3],
        ['cand', 1],
      ]),
      4,
      { base: 50, cand: 50 },
    );
    expect(plan.before).toEqual([{ name: 'cand', weight: 50, atMost: 2, replicas: 2 }]);
    expect(plan.after).toEqual([{ name: 'base', weight: 50, replicas: 2 }]);
  });

  it('a gainer that would break the budget grows in two steps', () => {
    const plan = change(
      new Map([
        ['base', 2],
        ['cand', 2],
      ]),
      4,
      { cand: 100 },
    );
    expect(plan.before).toEqual([{ name: 'cand', weight: 100, atMost: 3, replicas: 3 }]);
    expect(plan.after).toEqual([
      { name: 'base', weight: 0, replicas: 1 },
      { name: 'cand', weight: 100, atMost: 4, replicas: 4 },
    ]);
  });

  it('a rollback restores the baseline to full size before traffic moves, budget or not', () => {
    const fleet: Fleet = new Map([
      ['base', 2],
      ['cand', 2],
    ]);
    const plan = change(fleet, 4, { base: 100 }, ['base']);
    expect(plan.before).toEqual([{ name: 'base', weight: 100, replicas: 4 }]);
    expect(plan.after).toEqual([{ name: 'cand', weight: 0, replicas: 1 }]);
  });

  it('a bandit moving weight back to the baseline stays within the budget', () => {
    const fleet: Fleet = new Map([
      ['base', 2],
      ['cand', 3],
    ]);
    const sums = apply(fleet, change(fleet, 4, { base: 70, cand: 30 }), 4);
    expect(Math.max(...sums)).toBeLessThanOrEqual(5);
    expect(Object.fromEntries(fleet)).toEqual({ base: 3, cand: 2 });
  });

  it('nothing to do when every version already runs its share', () => {
    const plan = change(
      new Map([
        ['base', 4],
        ['cand', 1],
      ]),
      4,
      { base: 90, cand: 10 },
    );
    expect(plan.before).toEqual([]);
    expect(plan.after).toEqual([]);
  });
});
