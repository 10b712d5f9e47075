/**
 * What the activities act on. The worker builds these from the platform configuration; tests
 * build them around real servers. The workflow never sees which implementation runs.
 */
import type { Logger } from '../common/log';
import type { FleetDriver } from '../serving/fleet/driver';
import type { MetricsSource } from '../serving/metrics/source';
import type { TrafficRouter } from '../serving/traffic/router';
import type { ModelRegistry } from '../registry/registry';
import type { PlatformPolicy } from '../specs/policy';
import type { KeyringSource } from '../common/signing';
import type { Prices } from '../common/cost';
import type { Notifier } from '../notifications/notifier';
import type { WorkerMetrics } from './metrics';

export interface ActivityDeps {
  registry: ModelRegistry;
  fleet: FleetDriver;
  router: TrafficRouter;
  metrics: MetricsSource;
  logger: Logger;
  /**
   * Feedback tokens by model, from the platform configuration. The routes carry only their
   * sha256; the tokens never enter workflow inputs, results or logs.
   */
  feedbackTokens?: Readonly<Record<string, string>>;
  /** The platform policy (platform config `policy`): what a spec may not weaken, by model. */
  policy?: PlatformPolicy;
  /** The public keys that may sign decisions (platform config `keyring`); absent: none may. */
  keyring?: KeyringSource;
  /** The platform's prices (config `cost`): each look then carries a cost verdict. */
  prices?: Prices;
  /** Webhooks from the platform configuration (`notifications`); unset: notifications only log. */
  notifier?: Notifier;
  /** The worker's own counters (promotions by outcome, notifications delivered). */
  workerMetrics?: WorkerMetrics;
  /** Optional hook for notifications (chat, pager); the log line is always written. */
  onNotify?: (event: {
    model: string;
    version: string;
    event: string;
    message: string;
  }) => Promise<void> | void;
}
