/**
 * The watch after graduation in the CLI: its block in `runway status`, and finding it for
 * `runway pause` / `resume` when no promotion is in flight.
 */
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { formatDuration } from '../specs/duration';
import {
  watchStatusQuery,
  watchWorkflowId,
  type WatchResult,
  type WatchStatus,
} from '../workflows/watch-api';

/** The model's watch status, running or ended; undefined when it never had one (or it is gone). */
export async function readWatch(client: Client, model: string): Promise<WatchStatus | undefined> {
  try {
    return await client.workflow.getHandle(watchWorkflowId(model)).query(watchStatusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    // A closed watch whose worker is gone cannot answer queries; status carries on without it.
    return undefined;
  }
}

/** The running watch of a model, or undefined. */
export async function runningWatch(client: Client, model: string): Promise<WorkflowHandle | undefined> {
  const handle = client.workflow.getHandle(watchWorkflowId(model));
  try {
    return (await handle.describe()).status.name === 'RUNNING' ? handle : undefined;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

const pct = (x: number): string => `${Math.round(x * 1000) / 10}%`;

export function watchBlock(w: WatchStatus, now = Date.now()): string {
  const ends = Date.parse(w.endsAt);
  const lines = [
    `watch      v${w.version} ${w.outcome ? `ended: ${w.outcome} — ${w.outcomeReason ?? ''}` : `until ${w.endsAt} (${formatDuration(Math.max(0, ends - now))} left), ${w.looks} looks`}`,
  ];
  if (w.holdUntil && Date.parse(w.holdUntil) > now && w.previousVersion)
    lines.push(`           a page swaps back to v${w.previousVersion} at once until ${w.holdUntil}`);
  if (w.paused) lines.push(`PAUSED     ${w.pauseReason ?? ''}`);
  if (w.budgetLeft)
    lines.push(
      `budget     errors ${pct(w.budgetLeft.errors)} left, latency ${pct(w.budgetLeft.latency)} left over ${w.total.requests} requests`,
    );
  const burns = (w.windows ?? [])
    .map((x) => `${formatDuration(x.windowMs)} ${x.errorBurn}×/${x.latencyBurn}×`)
    .join(', ');
  if (burns) lines.push(`burn rate  ${burns} (errors/latency)`);
  if (w.drift?.unavailable) lines.push(`drift      unavailable: ${w.drift.unavailable}`);
  else if (w.drift?.last) lines.push(`drift      ${w.drift.last.reason}`);
  if (w.alerts.length) {
    lines.push('watch alerts:');
    for (const a of w.alerts.slice(-5))
      lines.push(`  ${a.at} ${a.kind}${a.action ? ` → ${a.action}` : ''}: ${a.reason}`);
  }
  return lines.join('\n');
}

/**
 * Follows a watch until it ends, printing each alert once and the burn rates and drift when they
 * change; `onStatus` sees every status read (the demo turns its drift knob from there).
 */
export async function followWatch(
  client: Client,
  model: string,
  print: (line: string) => void,
  onStatus?: (s: WatchStatus) => void,
): Promise<WatchResult> {
  const handle = client.workflow.getHandle(watchWorkflowId(model));
  let done = false;
  const result = (handle.result() as Promise<WatchResult>).finally(() => (done = true));
  let alerts = 0;
  let last = '';
  while (!done) {
    const s = await handle.query(watchStatusQuery).catch(() => undefined);
    if (s) {
      onStatus?.(s);
      for (const a of s.alerts.slice(alerts))
        print(`${a.kind}${a.action ? ` → ${a.action}` : ''}: ${a.reason}`);
      alerts = s.alerts.length;
      const worst = (s.windows ?? []).reduce((m, x) => Math.max(m, x.errorBurn, x.latencyBurn), 0);
      const line = `look ${s.looks}: ${s.total.requests} requests, highest burn rate ${worst}×, budget left errors ${pct(s.budgetLeft?.errors ?? 1)}${s.drift?.last ? `; ${s.drift.last.reason}` : ''}`;
      const summary = line.replace(/^look \d+: \d+ requests, /, '');
      if (summary !== last) print(line);
      last = summary;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return result;
}
