/**
 * The watch a promotion started at graduation (`watch:<model>`), as the audit shows it: when it
 * ran, on which version, every alert with its numbers (burn rates, windows, budget left; PSI and
 * KS per feature), what each alert did (a swap back through the promotion, a rollback workflow,
 * a retrain request) and how it ended. Read from the watch's own history chain.
 */
import type { Client } from '@temporalio/client';
import { eventTime, first, isRecord, type HistoryEvent } from './events';
import type { RunHistory } from './report';

export interface WatchAudit {
  workflowId: string;
  runIds: string[];
  version: string | null;
  startedAt: string;
  /** running, completed, terminated, ... (how its last run closed) */
  status: string;
  outcome: string | null;
  reason: string | null;
  looks: number;
  alerts: { at: string; event: string; message: string; details: unknown }[];
  actions: { at: string; action: string; detail: string }[];
}

/** The watch this promotion started, found by the child start in its history; undefined if none. */
export function watchStarted(runs: RunHistory[]): { workflowId: string; runId?: string } | undefined {
  let id: string | undefined;
  let runId: string | undefined;
  for (const run of runs) {
    for (const e of run.events) {
      const init = e.startChildWorkflowExecutionInitiatedEventAttributes;
      if (init?.workflowType?.name === 'watchWorkflow') id = init.workflowId ?? undefined;
      const started = e.childWorkflowExecutionStartedEventAttributes;
      if (started?.workflowType?.name === 'watchWorkflow' && started.workflowExecution?.runId)
        runId = started.workflowExecution.runId;
    }
  }
  return id ? { workflowId: id, ...(runId ? { runId } : {}) } : undefined;
}

export function buildWatchAudit(workflowId: string, runs: RunHistory[]): WatchAudit {
  const audit: WatchAudit = {
    workflowId,
    runIds: runs.map((r) => r.runId),
    version: null,
    startedAt: runs[0]?.events[0] ? eventTime(runs[0].events[0]) : '',
    status: 'running',
    outcome: null,
    reason: null,
    looks: 0,
    alerts: [],
    actions: [],
  };
  for (const [i, run] of runs.entries()) {
    for (const e of run.events) {
      const start = e.workflowExecutionStartedEventAttributes;
      if (start && i === 0) {
        const input = first(start.input);
        if (isRecord(input) && typeof input.version === 'string') audit.version = input.version;
      }
      scheduled(e, audit);
      const signal = e.signalExternalWorkflowExecutionInitiatedEventAttributes;
      if (signal) {
        audit.actions.push({
          at: eventTime(e),
          action: `signal ${signal.signalName ?? ''} to ${signal.workflowExecution?.workflowId ?? ''}`,
          detail: reasonOf(first(signal.input)),
        });
      }
      const child = e.startChildWorkflowExecutionInitiatedEventAttributes;
      if (child) {
        audit.actions.push({
          at: eventTime(e),
          action: `start ${child.workflowType?.name ?? ''} ${child.workflowId ?? ''}`,
          detail: reasonOf(first(child.input)),
        });
      }
      const done = e.workflowExecutionCompletedEventAttributes;
      if (done) {
        audit.status = 'completed';
        const r = first(done.result);
        if (isRecord(r)) {
          audit.outcome = typeof r.outcome === 'string' ? r.outcome : null;
          audit.reason = typeof r.reason === 'string' ? r.reason : null;
        }
      }
      if (e.workflowExecutionTerminatedEventAttributes) {
        audit.status = 'terminated';
        audit.reason = e.workflowExecutionTerminatedEventAttributes.reason ?? null;
      }
      if (e.workflowExecutionFailedEventAttributes) audit.status = 'failed';
      if (e.workflowExecutionCanceledEventAttributes) audit.status = 'cancelled';
    }
  }
  return audit;
}

function scheduled(e: HistoryEvent, audit: WatchAudit): void {
  const s = e.activityTaskScheduledEventAttributes;
  if (!s) return;
  const type = s.activityType?.name;
  const input = first(s.input);
  if (type === 'watchLook') audit.looks++;
  if (type === 'notify' && isRecord(input) && typeof input.event === 'string') {
    if (input.event === 'watch_alert' || input.event === 'drift')
      audit.alerts.push({
        at: eventTime(e),
        event: input.event,
        message: String(input.message ?? ''),
        details: input.details,
      });
  }
  if (type === 'retrainWebhook' && isRecord(input)) {
    // The webhook URL may carry a secret: the audit names its host only.
    let host = '';
    try {
      host = new URL(String(input.url)).host;
    } catch {
      host = '(unparsable URL)';
    }
    audit.actions.push({
      at: eventTime(e),
      action: `retrain request to ${host}`,
      detail: reasonOf(input.verdict),
    });
  }
}

function reasonOf(v: unknown): string {
  const x = Array.isArray(v) ? v[0] : v;
  return isRecord(x) && typeof x.reason === 'string' ? x.reason : '';
}

/** Fetches the watch's chain (from the run the promotion started, following continue-as-new). */
export async function fetchWatchAudit(
  client: Client,
  promotionRuns: RunHistory[],
  fetchChain: (client: Client, workflowId: string, runId?: string) => Promise<RunHistory[]>,
): Promise<WatchAudit | undefined> {
  const started = watchStarted(promotionRuns);
  if (!started) return undefined;
  try {
    return buildWatchAudit(started.workflowId, await fetchChain(client, started.workflowId, started.runId));
  } catch {
    return undefined; // retention removed it: the promotion's own audit stands
  }
}

/** Markdown lines for the audit's watch section. */
export function watchMarkdown(w: WatchAudit): string[] {
  const out = [
    '',
    `### Watch after graduation (${w.workflowId})`,
    '',
    `- v${w.version ?? '?'} from ${w.startedAt}, ${w.looks} looks: **${w.outcome ?? w.status}**${w.reason ? ` — ${w.reason}` : ''}`,
  ];
  for (const a of w.alerts) out.push(`- ${a.at} **${a.event}**: ${a.message}`);
  for (const a of w.actions) out.push(`- ${a.at} ${a.action}${a.detail ? `: ${a.detail}` : ''}`);
  return out;
}
