/**
 * `runway status MODEL [--watch]`: the promotion's stage, traffic, approvals and last verdicts.
 * Traffic comes from the router when the promotion has not routed yet, so production's route
 * shows at every stage. `--watch` redraws the whole block at each look, and says when a look saw
 * no request at all (a promotion waiting for traffic pauses as inconclusive otherwise, silently).
 */
import type { Command } from 'commander';
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { withClient } from '../client';
import { liveView, noTrafficHint, type LiveView } from '../live';
import { statusBlock, type LiveFacts } from '../progress';
import { watchView } from '../watch-view';
import { lineageLines, preparedFromEvents } from '../../audit/lineage';
import { parseDuration } from '../../specs/duration';
import {
  promotionWorkflowId,
  statusQuery,
  type PromotionResult,
  type PromotionStatus,
} from '../../workflows/api';
import { EXIT_CODES } from './promote';
import { readWatch, watchBlock } from '../graduation-watch';

async function queryStatus(handle: WorkflowHandle, model: string): Promise<PromotionStatus> {
  try {
    return await handle.query(statusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new Error(`no promotion of ${model} was ever started here`);
    throw err;
  }
}

/** Reads what the router knows; a router that does not answer is a line in the block, not a crash. */
async function readLive(
  live: LiveView | undefined,
  model: string,
): Promise<{ facts: LiveFacts; requests?: number }> {
  if (!live) return { facts: {} };
  try {
    return { facts: { routed: await live.weights(model) }, requests: await live.requests(model) };
  } catch (err) {
    return {
      facts: { hint: `router at ${live.url} not readable: ${(err as Error).message.split('\n')[0]}` },
    };
  }
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      "stage, traffic, approvals and last verdicts of a model's promotion (needs the platform running)",
    )
    .argument('<model>')
    .option('--watch', 'redraw at each look until the promotion ends')
    .option('--every <duration>', 'time between two looks with --watch (default: 5s)')
    .option('--json', 'print the status object as JSON')
    .action(async (model: string, opts: { watch?: boolean; every?: string; json?: boolean }) => {
      const lookMs = parseDuration(opts.every ?? '5s');
      if (lookMs < 500) throw new Error(`--every: expected 500ms or more, got "${opts.every}"`);
      await withClient(undefined, async ({ client, config }) => {
        const handle = client.workflow.getHandle(promotionWorkflowId(model));
        const live = liveView(config);
        let status = await queryStatus(handle, model);
        // The training run as prepareCandidate recorded it: from the history, not the registry.
        const history = await handle.fetchHistory().catch(() => undefined);
        const prepared = history ? preparedFromEvents(history.events ?? []) : undefined;
        if (opts.json) {
          const watch = await readWatch(client, model);
          const out = {
            ...status,
            lineage: prepared?.lineage,
            lineageError: prepared?.lineageError,
            ...(watch ? { watch } : {}),
          };
          process.stdout.write(JSON.stringify(out, null, 2) + '\n');
          return;
        }
        const lineage = prepared?.lineage
          ? ['lineage:', ...lineageLines(prepared.lineage).map((l) => `  ${l}`)].join('\n')
          : prepared?.lineageError
            ? `lineage    unavailable: ${prepared.lineageError}`
            : undefined;
        const tty = process.stdout.isTTY === true;
        let previous: number | undefined;
        let shown = '';
        for (;;) {
          const { facts, requests } = await readLive(live, model);
          if (live && previous !== undefined && requests === previous && !status.outcome)
            facts.hint = noTrafficHint(model, live.url, lookMs);
          previous = requests;
          // The watch after graduation, when this model has one (its own workflow, watch:<model>).
          const watch = status.outcome ? await readWatch(client, model) : undefined;
          const block = [
            statusBlock(status, facts),
            ...(lineage ? [lineage] : []),
            ...(watch && watch.version === status.version ? [watchBlock(watch)] : []),
          ].join('\n');
          if (!opts.watch) {
            process.stdout.write(block + '\n');
            return;
          }
          // A terminal gets the compact view redrawn in place (bars, path, last verdicts, within
          // its width); a log gets each changed block once, timed.
          if (tty)
            process.stdout.write(
              `\x1b[H\x1b[2J${watchView(status, facts, {
                width: Math.min(process.stdout.columns ?? 80, 120),
                clock: `${new Date().toLocaleTimeString()} every ${opts.every ?? '5s'}`,
              })}\n`,
            );
          else if (block !== shown) process.stdout.write(`--- ${new Date().toISOString()}\n${block}\n`);
          shown = block;
          const d = await handle.describe();
          if (d.status.name !== 'RUNNING') {
            const result = (await handle.result()) as PromotionResult;
            process.stdout.write(`${result.outcome}: ${result.reason}\n`);
            process.exitCode = EXIT_CODES[result.outcome];
            return;
          }
          await new Promise((r) => setTimeout(r, lookMs));
          status = await queryStatus(handle, model).catch(() => status); // between runs: keep the last
        }
      });
    });
}
