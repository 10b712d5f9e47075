/** Registry activities: resolve and verify artifacts, move aliases, record statuses, read lineage. */
import { ApplicationFailure } from '@temporalio/activity';
import type { ActivityDeps } from './deps';
import type { PreparedPromotion, PrepareInput, RegistryUpdateInput, VersionRef } from './contracts';
import { checkSpec, describeViolations, policyFor, type PolicyInForce } from '../specs/policy';
import type { ModelSpec } from '../specs/schema';
import { RegistryUnavailableError, type Lineage, type ModelVersion } from '../registry/registry';
import { refuseUnsupported } from './traffic';

const ref = (v: ModelVersion): VersionRef => ({
  version: v.version,
  sha256: v.sha256,
  artifactPath: v.artifactPath,
});

/** Refused credentials are not something a retry fixes; everything else keeps its own kind. */
function permanentAuth(err: unknown): never {
  if (err instanceof Error && err.name === 'MlflowAuthError')
    throw ApplicationFailure.nonRetryable(err.message, 'RegistryAuthRefused');
  throw err;
}

export function registryActivities({ registry, router, logger, policy }: ActivityDeps) {
  const log = logger.child('registry');
  /** A registry that cannot be reached is retried by the activity's policy, and says so. */
  const unreachable = (model: string, err: unknown): void => {
    if (err instanceof RegistryUnavailableError)
      log.warn('registry unreachable, the activity retries', { model, error: err.message });
  };

  /** verify() re-hashes; a tampered artifact is a permanent failure, not something to retry. */
  async function verified(model: string, version: string): Promise<ModelVersion> {
    try {
      return await registry.verify(model, version);
    } catch (err) {
      if (err instanceof RegistryUnavailableError) {
        unreachable(model, err);
        throw err;
      }
      if (err instanceof Error && err.name === 'MlflowAuthError') permanentAuth(err);
      throw ApplicationFailure.nonRetryable(
        err instanceof Error ? err.message : String(err),
        'ArtifactInvalid',
      );
    }
  }

  /** The candidate's training run; a run that cannot be read is noted, not fatal. */
  async function lineageOf(
    model: string,
    version: string,
  ): Promise<{ lineage?: Lineage; lineageError?: string }> {
    try {
      const lineage = await registry.lineage(model, version);
      return lineage ? { lineage } : {};
    } catch (err) {
      if (err instanceof RegistryUnavailableError) throw err;
      if (err instanceof Error && err.name === 'MlflowAuthError') permanentAuth(err);
      const lineageError = err instanceof Error ? err.message : String(err);
      log.warn('lineage unavailable', { model, version, error: lineageError });
      return { lineageError };
    }
  }

  /** The policy in force for this spec; a spec that weakens it is refused with every violation. */
  function enforcePolicy(spec: ModelSpec, model: string): PolicyInForce {
    const { policy: inForce, violations } = checkSpec(spec, policyFor(policy, model));
    if (violations.length > 0) {
      log.warn('spec refused by the platform policy', { model, violations: violations.length });
      // The details carry the policy and the violations into the history, for the audit.
      throw ApplicationFailure.create({
        message: describeViolations(model, violations),
        type: 'PolicyRefused',
        nonRetryable: true,
        details: [{ ...inForce, violations }],
      });
    }
    log.info('platform policy in force', { model, matched: inForce.matched.join(',') || 'none' });
    return inForce;
  }

  async function guarded<T>(model: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      unreachable(model, err);
      permanentAuth(err);
    }
  }

  return {
    async prepareCandidate({ model, version, spec, checkPolicy }: PrepareInput): Promise<PreparedPromotion> {
      // First activity of every run: a spec the platform policy forbids, or that this platform's
      // router cannot carry out, stops here, before anything deploys.
      const inForce = checkPolicy ? enforcePolicy(checkPolicy, model) : undefined;
      if (spec) refuseUnsupported(spec, router);
      const found = await guarded(model, () => registry.get(model, version));
      if (!found) {
        throw ApplicationFailure.nonRetryable(
          `${model} v${version} is not in the registry (${registry.location}); push it first: runway registry push ${model} FILE.onnx --version ${version}`,
          'VersionNotFound',
        );
      }
      const candidate = await verified(model, version);
      const production = await guarded(model, () => registry.resolveAlias(model, 'production'));
      const baseline = production ? await verified(model, production.version) : undefined;
      const lineage = await guarded(model, () => lineageOf(model, version));
      log.info('artifacts verified', {
        model,
        candidate: version,
        baseline: baseline?.version,
        run: lineage.lineage?.runId,
      });
      return {
        candidate: ref(candidate),
        baseline: baseline ? ref(baseline) : undefined,
        ...lineage,
        ...(inForce ? { policy: inForce } : {}),
      };
    },

    async updateRegistry(input: RegistryUpdateInput): Promise<void> {
      await guarded(input.model, async () => {
        for (const [alias, version] of Object.entries(input.aliases ?? {})) {
          await registry.setAlias(
            input.model,
            alias as 'staging' | 'production' | 'previous',
            version ?? undefined,
          );
        }
        if (input.status) {
          await registry.setStatus(
            input.model,
            input.status.version,
            input.status.status,
            input.status.reason,
          );
        }
      });
    },

    async resolveRollbackTarget({
      model,
      toVersion,
    }: {
      model: string;
      toVersion?: string;
    }): Promise<{ from?: string; to?: VersionRef; wasRunning: boolean; serving?: ModelSpec['serving'] }> {
      const production = await guarded(model, () => registry.resolveAlias(model, 'production'));
      const target = await guarded(model, () =>
        toVersion ? registry.get(model, toVersion) : registry.resolveAlias(model, 'previous'),
      );
      if (toVersion && !target) {
        throw ApplicationFailure.nonRetryable(
          `${model} v${toVersion} is not in the registry`,
          'VersionNotFound',
        );
      }
      if (!target) return { from: production?.version, wasRunning: false };
      // The verified copy: for a registry that downloads (MLflow), that is the local file.
      const checked = await verified(model, target.version);
      return { from: production?.version, to: ref(checked), wasRunning: false };
    },
  };
}
