/**
 * The promotion's activities, one file per concern. The worker calls createActivities with the
 * platform's implementations of the seams; the workflow proxies `Activities` by type only.
 */
import { approvalSignatureActivities } from './approval-signature';
import type { ActivityDeps } from './deps';
import { evaluationActivities } from './evaluation';
import { fleetActivities } from './fleet';
import { integrationActivities } from './integration';
import { measureActivities } from './measure';
import { notifyActivities } from './notify';
import { registryActivities } from './registry';
import { trafficActivities } from './traffic';
import { watchActivities } from './watch';

export function createActivities(deps: ActivityDeps) {
  return {
    ...registryActivities(deps),
    ...evaluationActivities(deps),
    ...fleetActivities(deps),
    ...trafficActivities(deps),
    ...integrationActivities(deps),
    ...measureActivities(deps),
    ...notifyActivities(deps),
    ...approvalSignatureActivities(deps),
    ...watchActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps } from './deps';
