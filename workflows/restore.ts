/**
 * Putting a version back at 100% of production: the step a rollback after graduation and the
 * standalone rollback workflow share. Route to it, move the aliases back, then mark the version
 * it replaces rejected and tear that one down. Each caller brings its own activity calls (the
 * promotion records the route in its state; the rollback workflow has its own retry options).
 */
import type { RegistryUpdateInput, TrafficVariant } from '../activities/contracts';
import { deploymentName, variantName } from './deployments';

export interface RestoreCalls {
  route(variants: TrafficVariant[], reason: string): Promise<unknown>;
  registry(summary: string, input: RegistryUpdateInput): Promise<unknown>;
  teardown(summary: string, name: string): Promise<unknown>;
}

export interface RestoreRequest {
  model: string;
  /** The version to serve again. */
  to: string;
  /** The version it replaces, when known. */
  from?: string;
  reason: string;
  /** The restored version's deployment, when the fleet named it; else the conventional name. */
  deployment?: string;
}

export async function restoreVersion(calls: RestoreCalls, req: RestoreRequest): Promise<void> {
  const { model, to, from, reason } = req;
  await calls.route(
    [
      {
        name: variantName(to),
        deployment: req.deployment ?? deploymentName(model, to, 'production'),
        weight: 100,
      },
    ],
    reason,
  );
  await calls.registry(`production → v${to}`, {
    model,
    aliases: { production: to, previous: null },
    status: { version: to, status: 'production', reason },
  });
  if (from && from !== to) {
    await calls.registry(`v${from} rejected`, {
      model,
      status: { version: from, status: 'rejected', reason },
    });
    await calls.teardown(`tear down v${from}`, deploymentName(model, from, 'production'));
  }
}
