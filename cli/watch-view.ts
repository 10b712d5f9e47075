/**
 * The watch after graduation in the CLI: its block in `runway status`, and finding it for
 * `runway pause` / `resume` when no promotion is in flight.
 */
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { formatDuration } from '../specs/duration';
import { watchStatusQuery, watchWorkflowId, type WatchStatus } from '../workflows/watch-api';

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
