/**
 * The watch's activities: one look (the version's requests, errors and slow requests since the
 * last look, from the metrics source; its drift histograms from the model servers; which version
 * the registry calls production), and the retrain webhook. The judging of burn rates is pure
 * (analysis/burn-rate.ts) and runs in the workflow on the numbers returned here.
 */
import { request } from 'undici';
import type { ActivityDeps } from './deps';
import type { MetricsSnapshot } from '../serving/metrics/source';
import { windowBetween } from '../serving/metrics/window';
import { readDrift } from '../serving/metrics/drift';
import { deploymentName } from '../serving/fleet/driver';
import { reviveSnapshot } from './measure';
import {
  evaluateBurn,
  slowRequests,
  type BurnEvaluation,
  type BurnSettings,
  type WindowCounts,
} from './analysis/burn-rate';
import {
  countsBetween,
  judgeDrift,
  type DriftCounts,
  type DriftThresholds,
  type DriftVerdict,
} from './analysis/drift';

export interface WatchLookInput {
  model: string;
  version: string;
  /** The version's variant in the route: `v7`. */
  variant: string;
  previous?: MetricsSnapshot;
  p99LatencyMs: number;
  /**
   * Burn rates: the counts of the looks before this one within each window and since the watch
   * began; this look's counts are added to every window before the alerts are judged.
   */
  burn: { windows: WindowCounts[]; total: WindowCounts; settings: BurnSettings };
  /** Drift: read the histograms; with `judge`, judge the counts since `since`. */
  drift?: { since?: DriftCounts; judge: boolean; thresholds: DriftThresholds };
}

export interface WatchLookResult {
  snapshot: MetricsSnapshot;
  /** The counters reset or this is the first look: no sample this time. */
  gap: boolean;
  gapReason?: string;
  sample: { requests: number; errors: number; slow: number };
  /** The alerts on the windows with this look's counts added. */
  burn: BurnEvaluation;
  /** The registry's production alias now: another version there ends the watch. */
  production?: string;
  drift?: {
    /** Cumulative counts now (summed over replicas). */
    counts?: DriftCounts;
    verdict?: DriftVerdict;
    /** Why drift cannot be read (no reference, no replica, a server restarted). */
    unavailable?: string;
    /** The counts went backwards (a replica restarted): start the window again from `counts`. */
    reset?: boolean;
  };
}

export interface RetrainInput {
  url: string;
  model: string;
  version: string;
  verdict: DriftVerdict;
}

export function watchActivities({ metrics, fleet, registry, logger }: ActivityDeps) {
  const log = logger.child('watch');
  return {
    async watchLook(input: WatchLookInput): Promise<WatchLookResult> {
      const snapshot = await metrics.snapshot(input.model);
      const production = (await registry.aliases(input.model)).production;
      const sample = { requests: 0, errors: 0, slow: 0 };
      const out: Omit<WatchLookResult, 'burn'> = { snapshot, gap: true, sample, production };
      if (!input.previous) out.gapReason = 'first look: no window yet';
      else {
        const w = windowBetween(reviveSnapshot(input.previous), snapshot);
        if (w.gap) out.gapReason = w.gapReason ?? 'counters reset';
        else {
          out.gap = false;
          const v = w.variants[input.variant];
          if (v)
            out.sample = {
              requests: v.requests,
              errors: v.errors,
              slow: Math.round(slowRequests(v.latency, input.p99LatencyMs)),
            };
        }
      }
      const add = (c: WindowCounts): WindowCounts => ({
        windowMs: c.windowMs,
        requests: c.requests + out.sample.requests,
        errors: c.errors + out.sample.errors,
        slow: c.slow + out.sample.slow,
      });
      const total = add(input.burn.total);
      const burn = evaluateBurn(input.burn.windows.map(add), input.burn.settings, {
        requests: total.requests,
        errors: total.errors,
        slow: total.slow,
      });
      const result: WatchLookResult = { ...out, burn };
      if (input.drift) {
        try {
          const d = await fleet.get(deploymentName(input.model, input.version, 'production'));
          const now = await readDrift(d?.endpoints ?? [], input.model, input.version);
          const window = countsBetween(input.drift.since, now.counts);
          result.drift = { counts: now.counts };
          if (!window) result.drift.reset = true;
          else if (input.drift.judge)
            result.drift.verdict = judgeDrift(now.reference, window, input.drift.thresholds);
        } catch (err) {
          result.drift = { unavailable: (err as Error).message };
        }
      }
      return result;
    },

    /** POSTs the drift report to the training pipeline; a non-2xx answer fails (and is retried). */
    async retrainWebhook(input: RetrainInput): Promise<{ status: number }> {
      const res = await request(input.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          schema: 'runway.dev/retrain/v1',
          event: 'drift',
          model: input.model,
          version: input.version,
          reason: input.verdict.reason,
          samples: input.verdict.samples,
          features: input.verdict.features,
          thresholds: input.verdict.thresholds,
        }),
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      await res.body.dump();
      // The URL may carry a secret: name the host only.
      const host = new URL(input.url).host;
      if (res.statusCode < 200 || res.statusCode >= 300)
        throw new Error(`retrain webhook at ${host} answered ${res.statusCode}`);
      log.info('retrain requested', { model: input.model, version: input.version, host });
      return { status: res.statusCode };
    },
  };
}
