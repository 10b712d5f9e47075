/**
 * A model's route: which variants serve it, with what weights, who is mirrored, how users stick.
 * This is the document the admin API accepts (`PUT /admin/routes/{model}`) and the
 * TrafficRouter seam (serving/traffic/) writes.
 */
export interface RouteVariant {
  /** Variant name, by convention the version label: `v1`, `v2`. */
  name: string;
  /** Base URLs of the variant's model servers. */
  endpoints: string[];
  /** Integer percent; the weights of a route sum to 100. */
  weight: number;
}

/**
 * What a reward may be: `binary` (0 or 1) or `bounded` (a continuous metric in [min, max]).
 * The same document as the ModelSpec's `experiment.reward`.
 */
export type RewardShape = 'binary' | { bounded: { min: number; max: number } };

export interface Route {
  variants: RouteVariant[];
  /** Copy `percent` of requests to `variant` (a weight-0 variant: the shadow). */
  mirror?: {
    variant: string;
    /** 0–100, may be fractional. */
    percent: number;
    /** Mirror to a variant that also takes weighted traffic (normally refused as a mistake). */
    allowWeightedMirror?: boolean;
    /** Output agreement tolerance for this route's shadow (absolute or relative); router default otherwise. */
    tolerance?: number;
    /** A classifier's decision threshold: the shadow's decisions are compared at it too. */
    threshold?: number;
  };
  /**
   * Header routing (a blue-green preview): a request carrying `header` (equal to `value`, when
   * set) goes to `variant` whatever the weights, and is not mirrored. Everyone else is split by weight.
   */
  preview?: { variant: string; header: string; value?: string };
  /** Sticky assignment by this request header (default `x-runway-unit`). */
  sticky?: { header: string };
  /**
   * The rewards `/v1/feedback` accepts for this model. Absent (a route written before reward
   * shapes existed): any reward in [0, 1], exactly what the analysis could use before.
   */
  reward?: RewardShape;
  /**
   * Feedback needs `Authorization: Bearer <token>` whose sha256 (hex) is this. Only the digest
   * travels in routes (files, ConfigMaps, the admin API); the token itself stays in the
   * platform configuration of whoever writes the route.
   */
  feedback?: { tokenSha256: string };
}

/** Metric names the router exports; MetricsSource implementations read exactly these. */
export const routerMetrics = {
  /** counter {model, variant, code_class: 2xx|4xx|5xx} */
  requests: 'runway_router_requests_total',
  /** histogram (seconds) {model, variant} */
  duration: 'runway_router_request_duration_seconds',
  /** counter {model, variant, reason: timeout|connect|no_endpoint|...} */
  upstreamErrors: 'runway_router_upstream_errors_total',
  /** counter {model, from, to, reason}: requests answered by another replica or variant after `from` failed */
  failovers: 'runway_router_failovers_total',
  /** counter {model, variant}: copies sent to the shadow */
  mirrored: 'runway_router_mirrored_total',
  /** counter {model, variant}: copies dropped (concurrency bound) */
  mirrorDropped: 'runway_router_mirror_dropped_total',
  /** counter {model, variant, result: agree|disagree|error} */
  shadowComparisons: 'runway_router_shadow_comparisons_total',
  /** counter {model, variant, direction: up|down|same}: shadow output elements against the primary's */
  shadowMoves: 'runway_router_shadow_output_moves_total',
  /** counter {model, variant, result: agree|flip_up|flip_down}: shadow decisions at the route's threshold */
  shadowDecisions: 'runway_router_shadow_decisions_total',
  /** histogram (seconds) {model, variant}: shadow response latency */
  shadowDuration: 'runway_router_shadow_duration_seconds',
  /** counter {model, variant}: rewards accepted (at most one per request or unit window) */
  rewards: 'runway_router_rewards_total',
  /** counter {model, variant}: sum of accepted rewards scaled to [0, 1] by the route's shape */
  rewardSum: 'runway_router_reward_sum_total',
  /**
   * counter {model, variant, reason}: feedback refused. `variant` is set when the refused reward
   * names a known assignment (duplicate, non_finite, out_of_shape), empty otherwise; `model` is
   * empty for models without a route (so refused bodies cannot mint label values).
   */
  feedbackRejected: 'runway_router_feedback_rejected_total',
} as const;

/** Latency buckets in seconds, fine enough to read p99 at millisecond scale. */
export const latencyBuckets = [
  0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.02, 0.025, 0.03, 0.04,
  0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10,
];
