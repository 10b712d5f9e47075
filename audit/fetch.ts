/**
 * Fetching what the audit reads: the histories of a promotion's chain of runs (continue-as-new
 * links them), the list of a model's promotions (visibility on RunwayModel), and the replay
 * check against the current workflow code.
 */
import type { Prices } from '../common/cost';
import fs from 'node:fs';
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { workflowBundlePath, workflowsEntry } from '../workers/bundle';
import { promotionWorkflowId } from '../workflows/api';
import type { Keyring } from '../common/signing';
import type { History } from './events';
import { fetchWatchAudit } from './watch';
import {
  auditDocument,
  buildPromotionAudit,
  type AuditDocument,
  type AuditListDocument,
  type ListEntry,
  type ReplayCheck,
  type RunHistory,
  AUDIT_SCHEMA_VERSION,
} from './report';

/** Guards against a cycle in corrupt links; a real chain of this length would be years long. */
const MAX_CHAIN = 1000;

/** Every run of the promotion that `runId` belongs to (latest run when absent), oldest first. */
export async function fetchChain(client: Client, workflowId: string, runId?: string): Promise<RunHistory[]> {
  const load = async (id: string | undefined): Promise<RunHistory> => {
    const handle = client.workflow.getHandle(workflowId, id);
    const history = (await handle.fetchHistory()) as History;
    const resolved = id ?? (await handle.describe()).runId;
    return { runId: resolved, events: history.events ?? [] };
  };
  const start = await load(runId);
  const chain = [start];
  // Backwards: each run's start event names the run it continues.
  for (let cur = start; chain.length < MAX_CHAIN;) {
    const prev = cur.events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    if (!prev) break;
    cur = await load(prev);
    chain.unshift(cur);
  }
  // Forwards: a run that continued-as-new names the next one.
  for (let cur = start; chain.length < MAX_CHAIN;) {
    const next = cur.events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    if (!next) break;
    cur = await load(next);
    chain.push(cur);
  }
  return chain;
}

export interface ReplayOptions {
  /** A prebuilt bundle (dist/workflows-bundle.js); default: that file when it exists. */
  bundlePath?: string;
  /** Workflow sources to bundle instead (workflows/index.ts); used when no bundle is found. */
  workflowsPath?: string;
}

/** Replays each run against the current workflow code; nondeterminism shows up as an error. */
export async function replayChain(
  workflowId: string,
  runs: RunHistory[],
  opts: ReplayOptions = {},
): Promise<ReplayCheck> {
  const bundle = opts.bundlePath ?? (opts.workflowsPath ? undefined : workflowBundlePath);
  const useBundle = bundle !== undefined && fs.existsSync(bundle);
  const workflowsPath = opts.workflowsPath ?? workflowsEntry() ?? undefined;
  if (!useBundle && !workflowsPath) {
    return {
      checked: false,
      ok: false,
      errors: [{ runId: '', error: 'no workflow code found to replay against' }],
    };
  }
  const against = useBundle ? bundle : (workflowsPath as string);
  const errors: ReplayCheck['errors'] = [];
  try {
    const results = Worker.runReplayHistories(
      {
        ...(useBundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath }),
        replayName: 'runway-audit',
      },
      runs.map((r) => ({ workflowId, history: { events: r.events } })),
    );
    let i = 0;
    for await (const result of results) {
      const run = runs[i++];
      if (result.error) errors.push({ runId: run?.runId ?? result.runId, error: result.error.message });
    }
  } catch (err) {
    errors.push({ runId: '', error: err instanceof Error ? err.message : String(err) });
  }
  return { checked: true, ok: errors.length === 0, against, errors };
}

export interface AuditQuery {
  model: string;
  runId?: string;
  version?: string;
  /** Promotions started on or after this time (all of them, not only the latest). */
  since?: Date;
  /** Skip the replay check (faster; the report then says "not checked"). */
  replay?: boolean | ReplayOptions;
  /** The keyring every signature is verified against again (the platform config's). */
  keyring?: Keyring;
  /** Today's prices (platform config `cost`), for promotions whose looks recorded none. */
  prices?: Prices;
}

const esc = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');

/** Every promotion of a model, newest first: one entry per chain (its latest run). */
export async function listPromotions(client: Client, model: string, since?: Date): Promise<ListEntry[]> {
  // Rollbacks run with nothing in flight (`runway rollback`) are listed too: they change traffic.
  const clauses = [
    `RunwayModel="${esc(model)}"`,
    `WorkflowType IN ("promotionWorkflow", "rollbackWorkflow")`,
  ];
  if (since) clauses.push(`StartTime >= "${since.toISOString()}"`);
  const out: ListEntry[] = [];
  for await (const w of client.workflow.list({ query: clauses.join(' AND ') })) {
    // A run that continued-as-new is a middle link; its chain is listed by its latest run.
    if (w.status.name === 'CONTINUED_AS_NEW') continue;
    const sa = w.searchAttributes as Record<string, unknown[] | undefined>;
    const one = (k: string): string | null => {
      const v = sa[k]?.[0];
      return typeof v === 'string' ? v : null;
    };
    out.push({
      kind: w.type === 'rollbackWorkflow' ? 'rollback' : 'promotion',
      workflowId: w.workflowId,
      runId: w.runId,
      version: one('RunwayVersion'),
      status: w.status.name.toLowerCase(),
      stage: one('RunwayStage'),
      outcome: one('RunwayOutcome'),
      startedAt: w.startTime ? w.startTime.toISOString() : null,
      closedAt: w.closeTime ? w.closeTime.toISOString() : null,
    });
  }
  return out.sort((a, b) => String(b.startedAt).localeCompare(String(a.startedAt)));
}

export async function listDocument(client: Client, model: string, since?: Date): Promise<AuditListDocument> {
  return {
    schemaVersion: AUDIT_SCHEMA_VERSION,
    kind: 'runway.audit.list',
    generatedAt: new Date().toISOString(),
    model,
    promotions: await listPromotions(client, model, since),
  };
}

/** Which runs the query names: one run, the latest of a version, all since a date, or the latest. */
async function selectRuns(client: Client, q: AuditQuery): Promise<(string | undefined)[]> {
  if (q.runId) return [q.runId];
  if (q.version !== undefined || q.since) {
    let found = (await listPromotions(client, q.model, q.since)).filter((p) => p.kind === 'promotion');
    if (q.version !== undefined) found = found.filter((p) => p.version === q.version).slice(0, 1);
    if (found.length === 0) {
      throw new Error(
        `no promotion of ${q.model}${q.version !== undefined ? ` v${q.version}` : ''}${q.since ? ` since ${q.since.toISOString()}` : ''} found; see \`runway audit ${q.model} --list\``,
      );
    }
    return found.map((p) => p.runId).reverse();
  }
  return [undefined];
}

/** The audit document for a query, fetched through `client`. */
export async function auditModel(client: Client, q: AuditQuery): Promise<AuditDocument> {
  const workflowId = promotionWorkflowId(q.model);
  const promotions = [];
  for (const runId of await selectRuns(client, q)) {
    let runs: RunHistory[];
    try {
      runs = await fetchChain(client, workflowId, runId);
    } catch (err) {
      if ((err as Error).name === 'WorkflowNotFoundError' || /not found/i.test((err as Error).message)) {
        throw new Error(
          `no promotion of ${q.model}${runId ? ` with run ${runId}` : ''} in this Temporal namespace (workflow ${workflowId})`,
        );
      }
      throw err;
    }
    const replay =
      q.replay === false
        ? undefined
        : await replayChain(workflowId, runs, typeof q.replay === 'object' ? q.replay : {});
    const audit = buildPromotionAudit(workflowId, runs, replay, q.keyring, { prices: q.prices });
    const watch = await fetchWatchAudit(client, runs, fetchChain);
    if (watch) audit.watch = watch;
    promotions.push(audit);
  }
  return auditDocument(q.model, promotions, new Date());
}
