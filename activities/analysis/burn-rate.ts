/**
 * Multi-window, multi-burn-rate SLO alerts (Google SRE Workbook, "Alerting on SLOs"): an alert
 * fires when the error budget burns `factor` times faster than sustainable over both a long window
 * (the burn is significant) and a short one (it is still going on, so the alert resets soon after
 * the burn stops). Two budgets: server errors (the SLO's `errorRate`) and latency (the share of
 * requests slower than p99LatencyMs beyond 1 - latencyTarget).
 *
 * Pure: the watch workflow keeps one small sample per look and sums them per window; the watch's
 * look activity adds what it just read and judges here, so every verdict is in the history.
 */
import type { Histogram } from '../../serving/metrics/source';
import { toBins } from './histogram';

/** Requests, failed and slow ones, over one window (the watch sums its looks into these). */
export interface WindowCounts {
  windowMs: number;
  requests: number;
  errors: number;
  slow: number;
}

export interface BurnAlertSpec {
  factor: number;
  /** Window lengths in ms. */
  long: number;
  short: number;
}

export interface BurnSettings {
  /** Allowed error share (slos.errorRate). */
  errorBudget: number;
  /** Allowed slow share (1 - latencyTarget). */
  latencyBudget: number;
  page: BurnAlertSpec[];
  ticket: BurnAlertSpec[];
  /** Requests the short window needs before an alert may fire on it (a few requests prove nothing). */
  minRequests: number;
}

export interface WindowBurn extends WindowCounts {
  errorBurn: number;
  latencyBurn: number;
}

export type Sli = 'errors' | 'latency';

export interface BurnAlert {
  severity: 'page' | 'ticket';
  sli: Sli;
  factor: number;
  long: WindowBurn;
  short: WindowBurn;
  /** Share of the watch's budget (this SLI's) still unspent, 0..1 (negative once overspent). */
  budgetLeft: number;
  reason: string;
}

export interface BurnEvaluation {
  /** Alerts firing now, pages first. */
  firing: BurnAlert[];
  /** Every configured window's numbers, for status and the history. */
  windows: WindowBurn[];
  budgetLeft: Record<Sli, number>;
  /** Requests, errors and slow requests since the watch began. */
  total: { requests: number; errors: number; slow: number };
}

const BURN_CAP = 1e6;

/**
 * Requests slower than `limitMs` in a latency histogram (seconds), spreading each bucket's count
 * uniformly within it as histogram_quantile does; the +Inf bucket counts as slow.
 */
export function slowRequests(h: Histogram, limitMs: number): number {
  const limit = limitMs / 1000;
  let slow = 0;
  for (const b of toBins(h)) {
    if (b.count === 0 || b.upper <= limit) continue;
    if (b.lower >= limit || !Number.isFinite(b.upper)) slow += b.count;
    else slow += (b.count * (b.upper - limit)) / (b.upper - b.lower);
  }
  return slow;
}

/** errors/requests over the budget; 0 without requests; capped so JSON never carries Infinity. */
export function burnRate(bad: number, requests: number, budget: number): number {
  if (requests <= 0 || bad <= 0) return 0;
  const share = bad / requests;
  return budget > 0 ? Math.min(BURN_CAP, share / budget) : BURN_CAP;
}

export function windowBurn(
  c: WindowCounts,
  s: Pick<BurnSettings, 'errorBudget' | 'latencyBudget'>,
): WindowBurn {
  return {
    ...c,
    errorBurn: round(burnRate(c.errors, c.requests, s.errorBudget)),
    latencyBurn: round(burnRate(c.slow, c.requests, s.latencyBudget)),
  };
}

/** Budget left over everything the watch has counted: 1 - spent / allowed. */
export function budgetLeft(bad: number, requests: number, budget: number): number {
  if (requests <= 0) return 1;
  const allowed = budget * requests;
  if (allowed <= 0) return bad > 0 ? -BURN_CAP : 1;
  return round(1 - bad / allowed);
}

export function formatWindow(ms: number): string {
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  for (const [u, size] of units) if (ms >= size && ms % size === 0) return `${ms / size}${u}`;
  return ms >= 1000 ? `${round(ms / 1000)}s` : `${ms}ms`;
}

/** Every distinct window length the alerts need, ascending. */
export function windowsOf(settings: Pick<BurnSettings, 'page' | 'ticket'>): number[] {
  const all = [...settings.page, ...settings.ticket].flatMap((a) => [a.long, a.short]);
  return [...new Set(all)].sort((a, b) => a - b);
}

/** Judges the alerts on each window's counts (a window the caller did not give counts as empty). */
export function evaluateBurn(
  counts: readonly WindowCounts[],
  settings: BurnSettings,
  total: { requests: number; errors: number; slow: number },
): BurnEvaluation {
  const cache = new Map<number, WindowBurn>();
  const w = (ms: number): WindowBurn => {
    let b = cache.get(ms);
    if (!b) {
      const c = counts.find((x) => x.windowMs === ms) ?? { windowMs: ms, requests: 0, errors: 0, slow: 0 };
      cache.set(ms, (b = windowBurn(c, settings)));
    }
    return b;
  };
  const left: Record<Sli, number> = {
    errors: budgetLeft(total.errors, total.requests, settings.errorBudget),
    latency: budgetLeft(total.slow, total.requests, settings.latencyBudget),
  };
  const firing: BurnAlert[] = [];
  const alerts = [
    ...settings.page.map((a) => ({ ...a, severity: 'page' as const })),
    ...settings.ticket.map((a) => ({ ...a, severity: 'ticket' as const })),
  ];
  for (const a of alerts) {
    const long = w(a.long);
    const short = w(a.short);
    if (short.requests < Math.max(1, settings.minRequests)) continue;
    for (const sli of ['errors', 'latency'] as const) {
      const key = sli === 'errors' ? 'errorBurn' : 'latencyBurn';
      if (long[key] >= a.factor && short[key] >= a.factor) {
        const what = sli === 'errors' ? 'error' : 'latency';
        firing.push({
          severity: a.severity,
          sli,
          factor: a.factor,
          long,
          short,
          budgetLeft: left[sli],
          reason:
            `${a.severity}: ${what} budget burning ${long[key]}× over ${formatWindow(a.long)} and ` +
            `${short[key]}× over ${formatWindow(a.short)} (threshold ${a.factor}×; ` +
            `${sli === 'errors' ? `${short.errors} of ${short.requests} requests failed` : `${short.slow} of ${short.requests} requests slow`} in the short window; ` +
            `${round(left[sli] * 100)}% of the watch's ${what} budget left)`,
        });
      }
    }
  }
  // A page outranks a ticket on the same budget: report the most severe first.
  firing.sort((x, y) => (x.severity === y.severity ? y.factor - x.factor : x.severity === 'page' ? -1 : 1));
  return {
    firing,
    windows: [...cache.values()].sort((x, y) => x.windowMs - y.windowMs),
    budgetLeft: left,
    total,
  };
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
