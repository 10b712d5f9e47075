/** Registry activities: resolve and verify artifacts, move aliases, record statuses. */
import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import type { PreparedPromotion, PrepareInput, RegistryUpdateInput, VersionRef } from './contracts';
import type { ModelSpec } from '../specs/schema';
import type { ModelVersion } from '../registry/registry';
import { refuseUnsupported } from './traffic';

const ref = (v: ModelVersion): VersionRef => ({
  version: v.version,
  sha256: v.sha256,
  artifactPath: v.artifactPath,
});

export function registryActivities({ registry, router, logger }: ActivityDeps) {
  const log = logger.child('registry');
  /** verify() re-hashes; a tampered artifact is a permanent failure, not something to retry. */
  async function verified(model: string, version: string): Promise<ModelVersion> {
    try {
      return await registry.verify(model, version);
    } catch (err) {
      throw ApplicationFailure.nonRetryable(
        err instanceof Error ? err.message : String(err),
        'ArtifactInvalid',
      );
    }
  }

  return {
    async prepareCandidate({ model, version, spec }: PrepareInput): Promise<PreparedPromotion> {
      // First activity of every run: a spec this platform's router cannot carry out stops here.
      if (spec) refuseUnsupported(spec, router);
      const found = await registry.get(model, version);
      if (!found) {
        throw ApplicationFailure.nonRetryable(
          `${model} v${version} is not in the registry; push it first: runway registry push ${model} FILE.onnx --version ${version}`,
          'VersionNotFound',
        );
      }
      const candidate = await verified(model, version);
      const production = await registry.resolveAlias(model, 'production');
      const baseline = production ? await verified(model, production.version) : undefined;
      log.info('artifacts verified', { model, candidate: version, baseline: baseline?.version });
      return { candidate: ref(candidate), baseline: baseline ? ref(baseline) : undefined };
    },

    async updateRegistry(input: RegistryUpdateInput): Promise<void> {
      for (const [alias, version] of Object.entries(input.aliases ?? {})) {
        await registry.setAlias(
          input.model,
          alias as 'staging' | 'production' | 'previous',
          version ?? undefined,
        );
      }
      if (input.status) {
        await registry.setStatus(input.model, input.status.version, input.status.status, input.status.reason);
      }
    },

    async resolveRollbackTarget({
      model,
      toVersion,
    }: {
      model: string;
      toVersion?: string;
    }): Promise<{ from?: string; to?: VersionRef; wasRunning: boolean; serving?: ModelSpec['serving'] }> {
      const production = await registry.resolveAlias(model, 'production');
      const target = toVersion
        ? await registry.get(model, toVersion)
        : await registry.resolveAlias(model, 'previous');
      if (toVersion && !target) {
        throw ApplicationFailure.nonRetryable(
          `${model} v${toVersion} is not in the registry`,
          'VersionNotFound',
        );
      }
      if (!target) return { from: production?.version, wasRunning: false };
      await verified(model, target.version);
      return { from: production?.version, to: ref(target), wasRunning: false };
    },
  };
}
