/**
 * The watch's public surface: `watch:<model>`, started by a promotion when its candidate
 * graduates, watches the new production version for `watch.duration`. It answers the same
 * `pause` / `resume` / `rollback` signals as a promotion (so `runway pause` and the UI work on
 * it) and its own `status` query. Deterministic code only: workflows and clients import it.
 */
import { defineQuery } from '@temporalio/workflow';
import type { DriftVerdict } from '../activities/analysis/drift';
import type { BurnAlert, WindowBurn } from '../activities/analysis/burn-rate';
import type { ModelSpec } from '../specs/schema';

export const watchWorkflowId = (model: string): string => `watch:${model}`;

/** Who the watch acts as in signals, registry reasons and notifications. */
export const WATCH_ACTOR = 'runway-watch';

export type WatchOutcome = 'completed' | 'rolled_back' | 'superseded' | 'stopped';

export interface WatchInput {
  spec: ModelSpec;
  version: string;
  /** The version it replaced, still running until `holdUntil`, then scaled down. */
  previousVersion?: string;
  /** When the promotion scales `previous` down (ms since the epoch): before it, a page swaps back at once. */
  holdUntil?: number;
  /** Continue-as-new once the history has this many events (default 3000; the server may ask sooner). */
  historyLimit?: number;
  /** Carried across continue-as-new; absent on a fresh start. */
  resume?: WatchState;
}

/** One alert as the watch raised it: what `runway status` and the audit show. */
export interface WatchAlert {
  at: string;
  kind: 'page' | 'ticket' | 'drift_notice' | 'drift';
  reason: string;
  /** Burn-rate alerts: the numbers (windows, burn rates, budget left). */
  burn?: BurnAlert;
  /** Drift: PSI and KS per feature. */
  drift?: DriftVerdict;
  action?: string;
}

export interface WatchState {
  startedAt: number;
  /** One [end ms, requests, errors, slow] per look, as far back as the longest window. */
  samples: [number, number, number, number][];
  total: { requests: number; errors: number; slow: number };
  lastSnapshot?: unknown;
  /** Alerts firing at the last look (by key), so each is notified when it starts, not every look. */
  active: string[];
  alerts: WatchAlert[];
  /** Drift: cumulative counts at the current window's start, and when it began. */
  drift?: { since?: unknown; windowStart: number; last?: DriftVerdict; unavailable?: string };
  windows?: WindowBurn[];
  budgetLeft?: { errors: number; latency: number };
  paused: boolean;
  pauseReason?: string;
  looks: number;
  /** Drift windows judged so far. */
  driftWindows: number;
  rollbackRequest?: { by: string; reason: string };
  /** When the retrain webhook was called (once per watch). */
  retrainRequested?: string;
}

export interface WatchStatus {
  model: string;
  version: string;
  previousVersion?: string;
  startedAt: string;
  endsAt: string;
  /** Until when a page swaps back to the still-running previous version. */
  holdUntil?: string;
  paused: boolean;
  pauseReason?: string;
  looks: number;
  driftWindows: number;
  retrainRequested?: string;
  total: WatchState['total'];
  budgetLeft?: WatchState['budgetLeft'];
  windows?: WindowBurn[];
  drift?: { last?: DriftVerdict; unavailable?: string };
  alerts: WatchAlert[];
  outcome?: WatchOutcome;
  outcomeReason?: string;
}

export interface WatchResult {
  model: string;
  version: string;
  outcome: WatchOutcome;
  reason: string;
  alerts: WatchAlert[];
  looks: number;
  driftWindows: number;
}

export const watchStatusQuery = defineQuery<WatchStatus>('status');
