/**
 * MetricsSource: per-variant traffic counters for a model. `scrape` reads the router's /metrics;
 * `prometheus` asks PromQL. Both return cumulative snapshots; a window is the difference of two,
 * so the workflow keeps the previous snapshot in its state and nothing is lost between intervals.
 */
export interface Histogram {
  /** Cumulative bucket counts by upper bound in seconds (Prometheus `le`), ascending, +Inf last. */
  buckets: { le: number; count: number }[];
  sum: number;
  count: number;
}

export interface VariantCounters {
  requests: number;
  /** Server-side failures: 5xx answers and upstream errors. 4xx are the client's fault. */
  errors: number;
  clientErrors: number;
  latency: Histogram;
  mirrored: number;
  mirrorDropped: number;
  shadow: {
    agree: number;
    disagree: number;
    error: number;
    latency: Histogram;
    /** Output elements that moved up / down beyond the tolerance, or stayed (absent before 0.2). */
    moves?: { up: number; down: number; same: number };
    /** Decisions at the route's threshold: held, flipped to positive, flipped to negative. */
    decisions?: { agree: number; flipUp: number; flipDown: number };
  };
  rewards: { count: number; sum: number };
  /**
   * Feedback the router refused that named this variant's assignments (duplicates, non-finite or
   * out-of-shape rewards). Absent when the producer does not count it (older routers, or a
   * snapshot recorded before the counter existed).
   */
  feedbackRejected?: number;
}

export interface MetricsSnapshot {
  model: string;
  /** ISO time the numbers were read. */
  takenAt: string;
  /** Identifies the producer's lifetime (e.g. router start time); a change means counters reset. */
  epoch?: string;
  variants: Record<string, VariantCounters>;
}

export interface MetricsSource {
  snapshot(model: string): Promise<MetricsSnapshot>;
  /** What can only be checked by asking, once at worker start; throws naming what is wrong. */
  verify?(): Promise<void>;
}
