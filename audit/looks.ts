/**
 * Candidate against baseline at each look, as the recorded verdicts give it: the window summary
 * where the history has one (recorded since the visual report), else the comparison's tests
 * (error rate, p99 where the interval method recorded it), else the SLO guard's own numbers for
 * the candidate alone. Pure, over the audit report.
 */
import type { Verdict } from '../workflows/api';
import type { AuditAnalysis, PromotionAudit } from './report';

export interface SideNumbers {
  errorRate: number | null;
  p99Ms: number | null;
  requests: number | null;
}

export interface LookNumbers {
  at: string;
  phase: string;
  candidate: SideNumbers;
  baseline: SideNumbers;
  /** The worst result among the look's verdicts (guard, comparison, experiment, cost). */
  result: 'pass' | 'fail' | 'inconclusive';
  verdicts: Verdict[];
}

const EMPTY: SideNumbers = { errorRate: null, p99Ms: null, requests: null };
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function variantsOf(a: PromotionAudit): { candidate: string; baseline?: string } {
  const base = a.artifacts.baseline?.version;
  return { candidate: `v${a.version ?? '?'}`, ...(base ? { baseline: `v${base}` } : {}) };
}

function fromTests(c: Verdict | undefined): { candidate: SideNumbers; baseline: SideNumbers } {
  const out = { candidate: { ...EMPTY }, baseline: { ...EMPTY } };
  const tests = Array.isArray(c?.tests) ? (c.tests as Record<string, unknown>[]) : [];
  for (const t of tests) {
    const metric = String(t.metric ?? '');
    if (metric === 'error rate') {
      out.candidate.errorRate = num(t.candidate);
      out.baseline.errorRate = num(t.baseline);
    }
    const d = (t.details ?? {}) as Record<string, unknown>;
    if (metric === 'latency p99') {
      out.candidate.p99Ms ??= num(t.candidate);
      out.baseline.p99Ms ??= num(t.baseline);
    } else if (num(d.candidateP99Ms) !== null) {
      out.candidate.p99Ms ??= num(d.candidateP99Ms);
      out.baseline.p99Ms ??= num(d.baselineP99Ms);
    }
  }
  return out;
}

function fromGuard(g: Verdict | undefined): SideNumbers {
  const metrics = Array.isArray(g?.metrics) ? (g.metrics as Record<string, unknown>[]) : [];
  const value = (name: RegExp): number | null => num(metrics.find((m) => name.test(String(m.name)))?.value);
  return {
    errorRate: value(/error rate/),
    p99Ms: value(/p99/),
    requests: num(g?.samples),
  };
}

const RANK = { pass: 0, inconclusive: 1, fail: 2 } as const;

export function lookNumbers(a: AuditAnalysis, names: { candidate: string; baseline?: string }): LookNumbers {
  const verdicts = [a.guard, a.comparison, a.experiment, a.cost].filter((v): v is Verdict => !!v);
  const result = verdicts.reduce<LookNumbers['result']>(
    (worst, v) => (RANK[v.result] > RANK[worst] ? v.result : worst),
    verdicts.length ? 'pass' : 'inconclusive',
  );
  const base = { at: a.at, phase: a.phase, result, verdicts };
  const c = a.variants?.[names.candidate];
  const b = names.baseline ? a.variants?.[names.baseline] : undefined;
  if (c || b) {
    const side = (s: typeof c): SideNumbers =>
      s ? { errorRate: s.errorRate, p99Ms: s.p99Ms, requests: s.requests } : { ...EMPTY };
    return { ...base, candidate: side(c), baseline: side(b) };
  }
  const tests = fromTests(a.comparison);
  const guard = a.phase === 'shadow' ? { ...EMPTY } : fromGuard(a.guard);
  return {
    ...base,
    candidate: {
      errorRate: tests.candidate.errorRate ?? guard.errorRate,
      p99Ms: tests.candidate.p99Ms ?? guard.p99Ms,
      requests: guard.requests,
    },
    baseline: tests.baseline,
  };
}
