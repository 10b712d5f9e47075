/**
 * Cost per 1,000 inferences, and what a promotion itself costs. Pure arithmetic over prices (the
 * platform config's `cost`), replica counts (the fleet) and measured traffic (the router's
 * counters over a window): no I/O, no clock, so the analysis activity, `runway status` and the
 * audit share it and unit tests pin it.
 *
 * Two figures per variant, because a canary's share distorts the first:
 * - `per1k`: what the window's inferences cost on the replicas the variant holds. A 5% canary on
 *   one whole replica pays for an idle replica; its per1k is high whatever the model is like.
 * - `per1kAtFullLoad`: the same replicas kept busy: price per busy second × busy seconds per
 *   inference. Busy time is the requests' latency summed (the router's histogram sum) over the
 *   replicas' sessions, so it is an upper bound where requests queue or batch together. Equal
 *   shares of the fleet would compare on per1k; unequal ones (every canary step) only here, so
 *   the gate `canary.analysis.maxCostIncrease` judges this figure.
 */

/** Prices of the platform (workers/config.ts `cost`), per replica-hour. */
export interface Prices {
  /** ISO 4217 code the prices are in (USD by default); `$` is shown for USD. */
  currency: string;
  /** Per replica-hour, by what the spec's `serving.resources` asks of each replica. */
  perHour?: { cpu?: number; memoryGiB?: number; gpu?: number };
  /** Or per instance type: a replica of a `serving.device` runs on one instance of this type. */
  instances?: Partial<Record<'cpu' | 'cuda', { type: string; perHour: number }>>;
}

export interface ReplicaResources {
  cpu: string;
  memory: string;
  gpu: number;
}

export interface ReplicaPrice {
  currency: string;
  /** Price of one replica for one hour. */
  perHour: number;
  /** How it was reached: "instance g5.xlarge" or "1 CPU × 0.04 + 2 GiB × 0.005 + 1 GPU × 1.2". */
  basis: string;
}

/** Kubernetes CPU quantity ("500m", "2", "1.5") in cores. */
export function parseCpu(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(q.trim());
  if (!m)
    throw new Error(
      `serving.resources.cpu: expected a Kubernetes CPU quantity such as 500m or 2, got "${q}"`,
    );
  return Number(m[1]) / (m[2] === 'm' ? 1000 : 1);
}

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** Kubernetes memory quantity ("512Mi", "1Gi", "1G", bytes) in GiB. */
export function parseMemoryGiB(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(q.trim());
  if (!m)
    throw new Error(
      `serving.resources.memory: expected a Kubernetes memory quantity such as 512Mi or 2Gi, got "${q}"`,
    );
  return (Number(m[1]) * (MEMORY_UNITS[m[2] ?? ''] ?? 1)) / 1024 ** 3;
}

const round = (x: number, digits = 6): number => Number(x.toPrecision(digits));

/**
 * One replica's hourly price: the instance type for its device when the platform names one,
 * else the sum of its resources at their prices; undefined when the platform sets no price that
 * applies (cost is then not shown, rather than shown as zero).
 */
export function replicaPrice(
  prices: Prices | undefined,
  resources: ReplicaResources,
  device: 'cpu' | 'cuda',
): ReplicaPrice | undefined {
  if (!prices) return undefined;
  const instance = prices.instances?.[device];
  if (instance)
    return { currency: prices.currency, perHour: instance.perHour, basis: `instance ${instance.type}` };
  const p = prices.perHour;
  if (!p) return undefined;
  const cpu = parseCpu(resources.cpu);
  const mem = parseMemoryGiB(resources.memory);
  const parts: string[] = [];
  let total = 0;
  if (p.cpu !== undefined) {
    total += cpu * p.cpu;
    parts.push(`${round(cpu, 4)} CPU × ${p.cpu}`);
  }
  if (p.memoryGiB !== undefined) {
    total += mem * p.memoryGiB;
    parts.push(`${round(mem, 4)} GiB × ${p.memoryGiB}`);
  }
  if (p.gpu !== undefined && resources.gpu > 0) {
    total += resources.gpu * p.gpu;
    parts.push(`${resources.gpu} GPU × ${p.gpu}`);
  }
  if (parts.length === 0) return undefined;
  return { currency: prices.currency, perHour: round(total), basis: parts.join(' + ') };
}

/** What a variant did over a window, and what it held. */
export interface VariantUsage {
  variant: string;
  /** Inferences answered in the window. */
  requests: number;
  /** Their latencies summed, in seconds (the histogram's sum); absent or 0: utilisation unknown. */
  latencySeconds?: number;
  /** Replicas the variant held (the fleet's count at the look). */
  replicas: number;
  /** Inference sessions per replica (serving.instances): how many requests one replica runs at once. */
  instances: number;
  windowSeconds: number;
}

export interface VariantCost {
  variant: string;
  replicas: number;
  requests: number;
  replicaHours: number;
  /** What the variant's replicas cost over the window. */
  cost: number;
  /** Cost per 1,000 inferences at the measured traffic; null without requests. */
  per1k: number | null;
  /** Busy share of the replicas' sessions (0–1, may pass 1 where requests batch); null when unknown. */
  utilisation: number | null;
  /** Cost per 1,000 inferences with the replicas kept busy; null when utilisation is unknown. */
  per1kAtFullLoad: number | null;
}

export function variantCost(u: VariantUsage, price: ReplicaPrice): VariantCost {
  const replicaHours = (u.replicas * Math.max(0, u.windowSeconds)) / 3600;
  const cost = replicaHours * price.perHour;
  const per1k = u.requests > 0 ? (cost * 1000) / u.requests : null;
  const capacity = u.replicas * u.instances * u.windowSeconds;
  const busy = u.latencySeconds ?? 0;
  const utilisation = busy > 0 && capacity > 0 && u.requests > 0 ? busy / capacity : null;
  const perSessionSecond = price.perHour / 3600 / Math.max(1, u.instances);
  const per1kAtFullLoad = utilisation === null ? null : (perSessionSecond * busy * 1000) / u.requests;
  return {
    variant: u.variant,
    replicas: u.replicas,
    requests: u.requests,
    replicaHours: round(replicaHours),
    cost: round(cost),
    per1k: per1k === null ? null : round(per1k),
    utilisation: utilisation === null ? null : round(utilisation, 4),
    per1kAtFullLoad: per1kAtFullLoad === null ? null : round(per1kAtFullLoad),
  };
}

/** "0.042 $" for USD, "0.042 EUR" otherwise: three significant digits, never scientific. */
export function money(x: number, currency: string): string {
  const unit = currency === 'USD' ? '$' : currency;
  if (x === 0 || !Number.isFinite(x)) return `${x} ${unit}`;
  const decimals = Math.min(12, Math.max(0, 2 - Math.floor(Math.log10(Math.abs(x)))));
  const text = x.toFixed(decimals);
  return `${text.includes('.') ? text.replace(/\.?0+$/, '') : text} ${unit}`;
}

/** "0.042 $/1k at 38% utilisation" (utilisation only where it is known). */
export function per1kText(c: VariantCost, currency: string): string {
  if (c.per1k === null) return 'no inferences';
  const base = `${money(c.per1k, currency)}/1k`;
  return c.utilisation === null ? base : `${base} at ${Math.round(c.utilisation * 100)}% utilisation`;
}

/** The cost verdict of one look, as recorded in the history. */
export type CostVerdict = {
  check: 'cost';
  result: 'pass' | 'fail' | 'inconclusive';
  reason: string;
  currency: string;
  price: ReplicaPrice;
  candidate: VariantCost;
  baseline?: VariantCost;
  /** Candidate over baseline at full load, minus one (0.35: 35% dearer); null when not comparable. */
  increase: number | null;
  /** The gate (canary.analysis.maxCostIncrease); absent: cost is shown, never judged. */
  maxIncrease?: number;
  windowSeconds: number;
};

export interface CostGate {
  /** Relative increase allowed at full load (0.2: 20%); absent: no gate. */
  maxIncrease?: number;
  /** Requests each variant needs before the gate may judge (the spec's slos.minRequests). */
  minRequests: number;
}

/**
 * Candidate against baseline. Without a gate the verdict passes and only informs; with one, a
 * candidate dearer at full load by more than allowed fails, and too little traffic (or unknown
 * utilisation) is inconclusive, never a pass.
 */
export function costVerdict(
  price: ReplicaPrice,
  candidate: VariantUsage,
  baseline: VariantUsage | undefined,
  gate: CostGate,
): CostVerdict {
  const c = variantCost(candidate, price);
  const b = baseline ? variantCost(baseline, price) : undefined;
  const cur = price.currency;
  const increase =
    b && c.per1kAtFullLoad !== null && b.per1kAtFullLoad !== null && b.per1kAtFullLoad > 0
      ? round(c.per1kAtFullLoad / b.per1kAtFullLoad - 1, 4)
      : null;
  const pct = (x: number): string => `${x >= 0 ? '+' : ''}${Math.round(x * 100)}%`;
  const parts = [`candidate ${c.variant} ${per1kText(c, cur)}`];
  if (b) parts.push(`vs baseline ${b.variant} ${per1kText(b, cur)}`);
  let text = parts.join(' ');
  if (increase !== null && c.per1kAtFullLoad !== null && b?.per1kAtFullLoad != null) {
    text += `; at full load ${money(c.per1kAtFullLoad, cur)} vs ${money(b.per1kAtFullLoad, cur)}/1k (${pct(increase)})`;
  }
  const base = {
    check: 'cost' as const,
    currency: cur,
    price,
    candidate: c,
    ...(b ? { baseline: b } : {}),
    increase,
    ...(gate.maxIncrease !== undefined ? { maxIncrease: gate.maxIncrease } : {}),
    windowSeconds: candidate.windowSeconds,
  };
  if (gate.maxIncrease === undefined) return { ...base, result: 'pass', reason: text };
  const limit = `limit ${pct(gate.maxIncrease)}`;
  if (!b) return { ...base, result: 'inconclusive', reason: `${text}; no baseline to compare with` };
  const few = [c, b].filter((v) => v.requests < gate.minRequests);
  if (few.length > 0) {
    return {
      ...base,
      result: 'inconclusive',
      reason: `${text}; ${few.map((v) => `${v.variant} answered ${v.requests} requests`).join(', ')}, ${gate.minRequests} needed to judge cost`,
    };
  }
  if (increase === null) {
    return {
      ...base,
      result: 'inconclusive',
      reason: `${text}; utilisation unknown: cost at full load not comparable`,
    };
  }
  if (increase > gate.maxIncrease) {
    return {
      ...base,
      result: 'fail',
      reason: `candidate costs ${pct(increase)} per inference at full load, over the ${limit}: ${text}`,
    };
  }
  return { ...base, result: 'pass', reason: `${text}; within the ${limit}` };
}

/** A span of the promotion during which one deployment of the candidate ran. */
export interface CostSpan {
  /** staging, shadow, canary, experiment. */
  phase: string;
  from: string;
  to: string;
  /** Replica counts over the span: the first applies from `from`, each later one from its time. */
  replicas: { at: string; replicas: number }[];
}

export interface PhaseCost {
  phase: string;
  replicaHours: number;
  cost?: number;
}

export interface PromotionCost {
  phases: PhaseCost[];
  replicaHours: number;
  cost?: number;
  currency?: string;
  /** The replica price used, and whether it was recorded in the history or read from today's config. */
  price?: ReplicaPrice & { source: 'history' | 'config' };
}

/** Replica-hours of each span (piecewise constant counts), priced when a price is known. */
export function promotionCost(
  spans: CostSpan[],
  price?: ReplicaPrice & { source: 'history' | 'config' },
): PromotionCost {
  const byPhase = new Map<string, number>();
  for (const s of spans) {
    const from = Date.parse(s.from);
    const to = Date.parse(s.to);
    if (!(to > from)) continue;
    const points = [...s.replicas].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    let hours = 0;
    for (const [i, p] of points.entries()) {
      const start = i === 0 ? from : Math.max(from, Date.parse(p.at));
      const next = points[i + 1];
      const end = next ? Math.min(to, Date.parse(next.at)) : to;
      if (end > start) hours += (p.replicas * (end - start)) / 3_600_000;
    }
    byPhase.set(s.phase, (byPhase.get(s.phase) ?? 0) + hours);
  }
  const phases: PhaseCost[] = [...byPhase].map(([phase, h]) => ({
    phase,
    replicaHours: round(h),
    ...(price ? { cost: round(h * price.perHour) } : {}),
  }));
  const total = [...byPhase.values()].reduce((a, b) => a + b, 0);
  return {
    phases,
    replicaHours: round(total),
    ...(price ? { cost: round(total * price.perHour), currency: price.currency, price } : {}),
  };
}
