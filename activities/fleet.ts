/** Fleet activities: deploy, scale and tear down model versions; heartbeat while waiting. */
import type { ActivityDeps } from './deps';
import { ApplicationFailure } from '@temporalio/activity';
import { DeployRefusedError, deploymentName, type ServingOptions } from '../serving/fleet/driver';
import type { ModelSpec } from '../specs/schema';
import type { DeployInput, DeploymentRef } from './contracts';
import { cancellationSignal, heartbeat } from './context';
import { driftReference } from './drift-reference';

/** The `runway serve` knobs for a spec's serving section: one mapping for every deploy path. */
export function servingOptions(serving: ModelSpec['serving']): ServingOptions {
  const b = serving.batching;
  return {
    maxBatchSize: b.maxBatchSize,
    preferredBatchSizes: b.preferredBatchSizes,
    maxQueueDelayMs: b.maxQueueDelayMs,
    maxQueueSize: b.maxQueueSize,
    instances: serving.instances,
    device: serving.device,
    threads: serving.threads,
    ...(serving.spinWait ? { spinWait: true } : {}),
  };
}

export function fleetActivities({ fleet, logger }: ActivityDeps) {
  const log = logger.child('fleet');
  const progress = (message: string): void => heartbeat({ message });
  return {
    async deploy(input: DeployInput): Promise<DeploymentRef> {
      if (input.ifMissing) {
        // "Make sure it runs": never restart a serving deployment just because knobs differ.
        const running = await fleet.get(deploymentName(input.model, input.version, input.environment));
        if (running?.ready && running.endpoints.length > 0)
          return { name: running.name, endpoints: running.endpoints };
      }
      const serving = servingOptions(input.serving);
      if (input.drift?.settings.enabled && input.environment === 'production') {
        // Without a reference the version still serves; the watch then says drift is unavailable.
        try {
          const ref = await driftReference(input.artifactPath, input.drift.evaluation, input.drift.settings);
          serving.driftReference = JSON.stringify(ref);
        } catch (err) {
          log.warn('no drift reference: the servers keep no histograms', {
            model: input.model,
            version: input.version,
            reason: (err as Error).message,
          });
        }
      }
      const deployment = await fleet
        .deploy(
          {
            model: input.model,
            version: input.version,
            environment: input.environment,
            artifactPath: input.artifactPath,
            sha256: input.sha256,
            replicas: input.replicas,
            serving,
            // A version joining production beside the one serving (the candidate, a rollback
            // target) takes no traffic until setTraffic sizes it: under scaleWithWeight it starts
            // small instead of doubling the fleet. `ifMissing` (the baseline) serves at once, and
            // a blue-green candidate (`fullSize`) comes up at full size: that is the strategy.
            weight: input.environment === 'production' && !input.ifMissing && !input.fullSize ? 0 : 100,
          },
          { signal: cancellationSignal(), onProgress: progress },
        )
        .catch((err: unknown) => {
          // A refused artifact fails the same way every time: fail the step now, not after retries.
          if (err instanceof DeployRefusedError)
            throw ApplicationFailure.nonRetryable(err.message, 'ModelRefused');
          throw err;
        });
      log.info('deployed', { name: deployment.name, endpoints: deployment.endpoints.join(',') });
      return { name: deployment.name, endpoints: deployment.endpoints };
    },

    async scale({ name, replicas }: { name: string; replicas: number }): Promise<DeploymentRef> {
      const d = await fleet.scale(name, replicas, { signal: cancellationSignal(), onProgress: progress });
      return { name: d.name, endpoints: d.endpoints };
    },

    async teardown({ name }: { name: string }): Promise<void> {
      await fleet.teardown(name, { signal: cancellationSignal(), onProgress: progress });
      log.info('torn down', { name });
    },
  };
}
