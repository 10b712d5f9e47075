/**
 * Inputs and results of the promotion's activities. Workflow code imports these types only
 * (`import type`), so this module may name Node-side types freely; it holds no code.
 */
import type { Verdict } from '../workflows/api';
import type { ModelSpec } from '../specs/schema';
import type { Environment } from '../serving/fleet/driver';
import type { MetricsSnapshot } from '../serving/metrics/source';
import type { Alias, Lineage, VersionStatus } from '../registry/registry';

export interface VersionRef {
  version: string;
  sha256: string;
  artifactPath: string;
}

export interface PreparedPromotion {
  candidate: VersionRef;
  /** The version serving production now (registry alias `production`), if any. */
  baseline?: VersionRef;
  /**
   * The candidate's training run as the registry knew it at prepare time, recorded in the
   * history so the audit does not depend on the registry later.
   */
  lineage?: Lineage;
  /** Why the lineage could not be read (the run was deleted, ...); the promotion goes on. */
  lineageError?: string;
}

export interface EvaluateInput {
  model: string;
  candidate: VersionRef;
  baseline?: VersionRef;
  evaluation: ModelSpec['evaluation'];
}

export interface DeployInput {
  model: string;
  version: string;
  environment: Environment;
  artifactPath: string;
  sha256: string;
  replicas: number;
  serving: ModelSpec['serving'];
  /** Keep a ready deployment as it is (the baseline: never restart what serves traffic). */
  ifMissing?: boolean;
}

export interface DeploymentRef {
  name: string;
  endpoints: string[];
}

export interface TrafficVariant {
  /** Variant name in the route, by convention `v<version>`. */
  name: string;
  /** Fleet deployment whose endpoints serve it. */
  deployment: string;
  weight: number;
}

export interface SetTrafficInput {
  model: string;
  variants: TrafficVariant[];
  mirror?: { variant: string; percent: number; tolerance?: number };
  sticky?: { header: string };
  reason: string;
}

export interface IntegrationInput {
  model: string;
  version: string;
  endpoint: string;
  signature: ModelSpec['model']['signature'];
  integration: ModelSpec['integration'];
  p99LatencyMs: number;
}

export type AnalysisPhase = 'shadow' | 'canary' | 'experiment';

export interface AnalyzeInput {
  model: string;
  phase: AnalysisPhase;
  candidate: string;
  baseline?: string;
  previous?: MetricsSnapshot;
  slos: ModelSpec['slos'];
  analysis: ModelSpec['canary']['analysis'];
  shadow: ModelSpec['shadow'];
  experiment?: ModelSpec['experiment'];
  /** Bandit only: deterministic seed for this interval's Monte Carlo. */
  seed?: number;
  /** Experiment: counters when it began; rewards are judged cumulatively from here. */
  experimentStart?: MetricsSnapshot;
  /**
   * Experiment: rewards counted before the router's counters last reset, per variant. After a
   * reset the workflow starts counting again from a new snapshot and carries these forward.
   */
  experimentCarry?: Record<string, RewardCounts>;
  /** A/B: the always-valid p-value and interval so far (running minimum / intersection). */
  abState?: { pValue: number; ci: [number, number] };
}

export interface IntervalAnalysis {
  /** Cumulative counters now: the next window starts here. */
  snapshot: MetricsSnapshot;
  /** The router restarted or a series vanished: this window is missing data. */
  gap: boolean;
  /** SLO guard on the candidate (absolute limits). */
  guard: Verdict;
  /** Candidate vs baseline comparison, when the phase has one. */
  comparison?: Verdict;
  /** Experiment decision (A/B or bandit), when the phase is `experiment`. */
  experiment?: Verdict & {
    decision: string;
    weights?: Record<string, number>;
    best?: string;
    pValue?: number;
    ci?: [number, number];
    /** Rewards per arm since the experiment began (carried counts included). */
    rewards?: Record<string, RewardCounts>;
    /** The counters reset since `experimentStart`: count again from this look's snapshot. */
    sinceStartGap?: boolean;
  };
}

export interface RewardCounts {
  count: number;
  sum: number;
}

export interface RegistryUpdateInput {
  model: string;
  aliases?: Partial<Record<Alias, string | null>>;
  status?: { version: string; status: VersionStatus; reason?: string };
}

export interface NotifyInput {
  model: string;
  version: string;
  event: string;
  message: string;
  details?: Record<string, unknown>;
}
