/**
 * scaleWithWeight: how many replicas each version of a model runs while traffic moves between
 * them, so that a GPU fleet never doubles during a canary. Pure functions: the traffic activity
 * plans with them and turns the plan into FleetDriver.scaleToWeight calls around the route change.
 *
 * The budget is the spec's `serving.replicas` plus one: the variant with the smaller share still
 * needs a replica of its own, so full + 1 is the least any split can run on. Whoever gains weight
 * grows before the route changes (capacity first), whoever loses shrinks after it; a gainer that
 * would break the budget before the loser has shrunk grows in two steps (up to the budget, then
 * the rest after the route change, as far as the budget then allows). One exception: a rollback (a version that served production
 * taking all the traffic back) restores its full size before traffic moves, budget or not.
 */

/**
 * Replicas for a variant at `weight` percent of traffic when the full version runs `full`:
 * proportional, rounded up, at least one.
 */
export function replicasForWeight(full: number, weight: number): number {
  if (!Number.isFinite(weight) || weight < 0 || weight > 100) {
    throw new Error(`weight: expected 0–100, got ${weight}`);
  }
  return Math.max(1, Math.min(full, Math.ceil((full * weight) / 100)));
}

export interface SizedDeployment {
  name: string;
  /** Replicas it runs now. */
  replicas: number;
  /** Its size at 100%. */
  fullReplicas: number;
}

export interface ScaleStep {
  name: string;
  /** The share it is sized for. */
  weight: number;
  /** Cap on the count (budget), when there is one. */
  atMost?: number;
  /** The count this step is expected to leave (for logs and tests). */
  replicas: number;
}

export interface ScalePlan {
  /** Most replicas of the model at any moment, rollbacks aside. */
  budget: number;
  /** Before the route changes: whoever gains grows. */
  before: ScaleStep[];
  /** After the route changes: whoever lost shrinks, then capped gainers finish growing. */
  after: ScaleStep[];
}

/**
 * The scaling around one route change. `shares`: each deployment's share after the change (its
 * weight, or its mirror percent when it is the shadow); deployments of the model missing from it
 * take no traffic (share 0). `restore`: deployments that take all the traffic back as a rollback.
 */
export function planScaling(
  deployments: SizedDeployment[],
  shares: ReadonlyMap<string, number>,
  restore: ReadonlySet<string> = new Set(),
): ScalePlan {
  const budget = Math.max(0, ...deployments.map((d) => d.fullReplicas)) + 1;
  const now = new Map(deployments.map((d) => [d.name, d.replicas]));
  const target = new Map(
    deployments.map((d) => [d.name, replicasForWeight(d.fullReplicas, shares.get(d.name) ?? 0)]),
  );
  const share = (name: string): number => shares.get(name) ?? 0;
  const sum = (): number => [...now.values()].reduce((a, b) => a + b, 0);
  const before: ScaleStep[] = [];
  const after: ScaleStep[] = [];
  const unfinished: string[] = [];
  // Rollback targets first: they take the traffic, and nothing caps them.
  const gainers = deployments
    .filter((d) => (target.get(d.name) ?? 0) > d.replicas)
    .sort((a, b) => Number(restore.has(b.name)) - Number(restore.has(a.name)));
  for (const d of gainers) {
    const want = target.get(d.name) ?? 0;
    const current = now.get(d.name) ?? 0;
    if (restore.has(d.name)) {
      before.push({ name: d.name, weight: share(d.name), replicas: want });
      now.set(d.name, want);
      continue;
    }
    const room = budget - (sum() - current);
    const atMost = Math.max(current, Math.min(want, room));
    if (atMost > current) before.push({ name: d.name, weight: share(d.name), atMost, replicas: atMost });
    now.set(d.name, atMost);
    if (atMost < want) unfinished.push(d.name);
  }
  for (const d of deployments) {
    const want = target.get(d.name) ?? 0;
    if (want < (now.get(d.name) ?? 0)) {
      after.push({ name: d.name, weight: share(d.name), replicas: want });
      now.set(d.name, want);
    }
  }
  // With the losers down there may be room to finish; a shadow sized by its mirror share beside a
  // full baseline gets only what the budget leaves.
  for (const name of unfinished) {
    const current = now.get(name) ?? 0;
    const atMost = Math.max(current, Math.min(target.get(name) ?? 0, budget - (sum() - current)));
    if (atMost > current) after.push({ name, weight: share(name), atMost, replicas: atMost });
    now.set(name, atMost);
  }
  return { budget, before, after };
}
