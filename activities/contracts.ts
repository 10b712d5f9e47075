/**
 * Inputs and results of the promotion's activities. Workflow code imports these types only
 * (`import type`), so this module may name Node-side types freely; it holds no code.
 */
import type { Verdict } from '../workflows/api';
import type { PolicyInForce } from '../specs/policy';
import type { ModelSpec } from '../specs/schema';
import type { Environment } from '../serving/fleet/driver';
import type { MetricsSnapshot } from '../serving/metrics/source';
import type { Alias, Lineage, VersionStatus } from '../registry/registry';
import type { StepEvidence } from './analysis/step-evidence';
import type { ShadowEvidence } from './analysis/shadow-shift';
import type { VariantFeedback } from './analysis/feedback';
import type { Decision, DecisionContext } from '../common/signing';
import type { CostVerdict } from '../common/cost';

export interface VersionRef {
  version: string;
  sha256: string;
  artifactPath: string;
}

export interface PrepareInput {
  model: string;
  version: string;
  /**
   * The spec being promoted: what it needs of the router (mirror, sticky, feedback) is checked
   * against the configured one before anything deploys. Optional for runs started before it.
   */
  spec?: Pick<ModelSpec, 'shadow' | 'experiment'> & Partial<Pick<ModelSpec, 'strategy' | 'blueGreen'>>;
  /**
   * The whole spec, to check against the platform policy before anything deploys: set on a
   * promotion's first run only, so a policy changed mid-promotion does not stop a continued run.
   */
  checkPolicy?: ModelSpec;
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
  /** The platform policy in force, when the input asked for the check (`checkPolicy`). */
  policy?: PolicyInForce;
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
  /**
   * Take drift reference bins from the evaluation data and have the servers count sampled inputs
   * and predictions into them (the watch after graduation reads them). Absent: no histograms.
   */
  drift?: { evaluation: ModelSpec['evaluation']; settings: ModelSpec['watch']['drift'] };
  /** Blue-green: the candidate comes up at its full size beside the baseline, not sized for 0%. */
  fullSize?: boolean;
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
  mirror?: { variant: string; percent: number; tolerance?: number; threshold?: number };
  sticky?: { header: string };
  /** Rewards the router accepts for the model (the spec's `experiment.reward`); absent: [0, 1]. */
  reward?: ModelSpec['experiment']['reward'];
  /** Requests with this header go to `variant` whatever the weights (a blue-green preview). */
  preview?: { variant: string; header: string; value?: string };
  /**
   * `weight` (absent): scaleWithWeight sizes each version to its share within the budget.
   * `full`: blue-green, every version named keeps (or gets back) its full size and nothing shrinks,
   * so a switch either way is a route change alone.
   */
  sizing?: 'weight' | 'full';
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
  shadow: ModelSpec['shadow'] & { threshold?: number };
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
  /**
   * Sequential comparison (canary.analysis.method `sequential`): the evidence the current step
   * has gathered so far (absent at the step's first look) and the step's share of the
   * false-rollback budget. Absent: the comparison judges this interval alone, as before. With
   * `errorAlpha` the error test spans the promotion's steps at that α (`alpha` is then the step's
   * latency tests'), and `step` names the step so that the evidence knows when a new one begins.
   */
  sequential?: {
    evidence?: StepEvidence | ShadowEvidence;
    alpha: number;
    errorAlpha?: number;
    step?: string;
  };
  /**
   * What each replica asks for and how many sessions it runs (the spec's serving), to price the
   * look. Absent in runs started before cost: the defaults price them.
   */
  serving?: Pick<ModelSpec['serving'], 'resources' | 'device' | 'instances'>;
}

export interface IntervalAnalysis {
  /** Cumulative counters now: the next window starts here. */
  snapshot: MetricsSnapshot;
  /** The router restarted or a series vanished: this window is missing data. */
  gap: boolean;
  /** SLO guard on the candidate (absolute limits). */
  guard: Verdict;
  /** The step's evidence after this look (sequential comparison only): carry it to the next look. */
  evidence?: StepEvidence | ShadowEvidence;
  /** Candidate vs baseline comparison, when the phase has one. */
  comparison?: Verdict;
  /**
   * Cost per 1,000 inferences of each variant (canary and experiment looks, when the platform
   * has prices); with canary.analysis.maxCostIncrease it can fail the look.
   */
  cost?: CostVerdict;
  /**
   * Each variant's window in brief (requests, server errors, error rate, p99): what the audit
   * draws as candidate against baseline per look, whatever the comparison method recorded.
   */
  variants?: Record<string, WindowSummary>;
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
    /** Each variant's feedback as the audit saw it (rewards per request, refusals, findings). */
    feedback?: VariantFeedback[];
    /** Feedback not trusted: what the rewards would have decided, not acted on. */
    withheld?: { result: string; decision: string; best?: string; reason: string };
  };
}

export interface WindowSummary {
  requests: number;
  errors: number;
  /** null without requests. */
  errorRate: number | null;
  /** null without latency observations. */
  p99Ms: number | null;
}

export interface RewardCounts {
  count: number;
  sum: number;
  /** Requests the variant answered over the same span (absent in state recorded before it was kept). */
  requests?: number;
  /** Feedback the router refused that named the variant (absent where the router does not count it). */
  rejected?: number;
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
  /** The ModelSpec's `notify`: which webhooks and events this model's notifications go to. */
  route?: { webhooks?: string[]; events?: string[] };
}

export interface VerifyDecisionInput {
  decision: Decision;
  /** The name in the payload: the signing key must be this person's. */
  by: string;
  /** The comment or reason in the payload, whose digest was signed. */
  comment?: string;
  /** The payload's `signed` part, as sent (anything: the activity judges its shape). */
  signed: unknown;
  context: DecisionContext;
  /** The approval window (ISO); the activity also refuses anything signed in the future. */
  window?: { from?: string; to?: string };
}
