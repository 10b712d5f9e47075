/**
 * The CLI's connection to Temporal: the configured cluster, or the embedded platform's dev server
 * when one is running. Never starts a server: commands that need the platform say what to run.
 */
import os from 'node:os';
import { Client, Connection, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { loadPlatformConfig, type PlatformConfig } from '../workers/config';
import { ensureTemporal, TemporalUnavailableError } from '../workers/temporal-server';
import { promotionWorkflowId, rollbackWorkflowId, type RollbackWorkflowInput } from '../workflows/api';
import { RunwayModel, RunwayStage } from '../workflows/search-attributes';
import { actor } from './actor';

export interface CliClient {
  client: Client;
  config: PlatformConfig;
  close(): Promise<void>;
}

export { actor } from './actor';

export async function connect(as?: string): Promise<CliClient> {
  const config = loadPlatformConfig();
  let endpoint;
  try {
    endpoint = await ensureTemporal({
      temporal: config.temporal,
      start: false,
      registerSearchAttributes: false,
    });
  } catch (err) {
    if (err instanceof TemporalUnavailableError && err.notRunningIn) {
      throw new Error(
        `the runway platform is not running (no Temporal server for ${err.notRunningIn}): start it with \`runway up\` in another terminal, or set TEMPORAL_ADDRESS for a cluster; \`runway audit MODEL\` works without it`,
      );
    }
    if (err instanceof TemporalUnavailableError)
      throw new Error(`cannot reach the runway platform's Temporal server: ${err.message}`);
    throw err;
  }
  const connection = await Connection.connect(endpoint.connectionOptions);
  // The identity lands in the history next to every signal and update this CLI sends.
  const identity = `${actor(as)}@${os.hostname()} (runway cli)`;
  const client = new Client({ connection, namespace: endpoint.namespace, identity });
  return { client, config, close: () => connection.close() };
}

/** The running promotion of a model, or a clear error when there is none. */
export async function runningPromotion(client: Client, model: string): Promise<WorkflowHandle> {
  const handle = client.workflow.getHandle(promotionWorkflowId(model));
  try {
    const d = await handle.describe();
    if (d.status.name !== 'RUNNING') {
      throw new Error(
        `no promotion of ${model} is in flight (the last one is ${d.status.name.toLowerCase()}); see \`runway status ${model}\``,
      );
    }
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new Error(`no promotion of ${model} was ever started here`);
    throw err;
  }
  return client.workflow.getHandle(promotionWorkflowId(model));
}

/** Runs a CLI action with a connected client, closing it afterwards. */
export async function withClient<T>(as: string | undefined, fn: (c: CliClient) => Promise<T>): Promise<T> {
  const c = await connect(as);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

/**
 * Starts `rollbackWorkflow` (a rollback with no promotion in flight), tagged with the model's
 * search attributes so `runway audit MODEL --list` and the UI find it beside the promotions.
 */
export function startRollback(
  client: Client,
  taskQueue: string,
  input: RollbackWorkflowInput,
): Promise<WorkflowHandle> {
  return client.workflow.start('rollbackWorkflow', {
    taskQueue,
    workflowId: rollbackWorkflowId(input.model),
    args: [input],
    typedSearchAttributes: [
      { key: RunwayModel, value: input.model },
      { key: RunwayStage, value: 'rolling_back' },
    ],
    staticSummary: `rollback ${input.model} to ${input.toVersion ? `v${input.toVersion}` : 'its previous version'} — by ${input.by}`,
    staticDetails: [
      `**${input.model}**: restore ${input.toVersion ? `**v${input.toVersion}**` : 'the version the registry alias `previous` names'} at 100% (no promotion was in flight)`,
      '',
      `- requested by **${input.by}**: ${input.reason}`,
      `- the demoted version is marked rejected; \`runway audit ${input.model} --list\` lists this run beside the promotions`,
    ].join('\n'),
  });
}
