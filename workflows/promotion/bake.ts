/**
 * After graduation: start the watch of the new production version (`watch:<model>`, see
 * workflows/watch.ts) as an abandoned child, so it outlives the promotion, whose result CI is
 * waiting for. A watch of the version before may still run: it ends at its next look, when the
 * registry names this version production, and the start is tried again after that.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { log, ParentClosePolicy, patched, sleep, startChild } from '@temporalio/workflow';
import { watchWorkflowId, type WatchInput } from '../watch-api';
import { watchWorkflow } from '../watch';
import type { Final } from './after-graduation';
import type { Promotion } from './context';

const START_TRIES = 5;

export async function startWatch(p: Promotion, final: Final): Promise<void> {
  const w = p.spec.watch;
  // Specs recorded before the watch have no `watch` section; 0s turns it off.
  if (final.outcome !== 'promoted' || !w || w.duration <= 0) return;
  if (!patched('post-graduation-watch')) return;
  const base = p.baseline;
  for (let attempt = 1; ; attempt++) {
    const input: WatchInput = {
      spec: p.spec,
      version: p.version,
      ...(base
        ? { previousVersion: base.version, holdUntil: Date.now() + p.spec.rollback.scaleDownDelay }
        : {}),
    };
    try {
      await startChild(watchWorkflow, {
        workflowId: watchWorkflowId(p.model),
        args: [input],
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
      log.info(`watch of v${p.version} started for ${w.duration} ms`);
      return;
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError) || attempt >= START_TRIES) {
        // The promotion's outcome stands either way; the missing watch is said where people look.
        log.warn(`watch of v${p.version} not started: ${String(err)}`);
        p.refreshDetails(`watch not started: ${(err as Error).message}`);
        return;
      }
      await sleep(w.interval + 1000);
    }
  }
}
