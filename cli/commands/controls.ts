/**
 * Human controls over a running promotion: approve / reject (updates, so the caller learns at once
 * whether it counted), pause / resume / promote-full / rollback (signals, as the UI sends them).
 * `runway rollback` with no promotion in flight restores the `previous` version.
 */
import type { Command } from 'commander';
import {
  type Client,
  type WorkflowHandle,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { ACTOR_DEFAULT } from '../actor';
import { actor, runningPromotion, startRollback, withClient } from '../client';
import { runningWatch } from '../watch-view';
import {
  approveUpdate,
  pauseSignal,
  promoteFullSignal,
  promotionWorkflowId,
  rejectUpdate,
  resumeSignal,
  rollbackSignal,
  type RollbackWorkflowInput,
  type RollbackWorkflowResult,
} from '../../workflows/api';

/** The workflow's validator refused it: say why, exit 1. */
function refused(err: unknown): never {
  if (err instanceof WorkflowUpdateFailedError) {
    throw new Error(`refused: ${err.cause?.message ?? err.message}`);
  }
  throw err;
}

export function registerControls(program: Command): void {
  program
    .command('approve')
    .description('approve the candidate of a running promotion')
    .argument('<model>')
    .option('--as <name>', `approver, checked against the spec's allow-list (${ACTOR_DEFAULT})`)
    .option('--comment <text>', 'recorded with the approval')
    .action(async (model: string, opts: { as?: string; comment?: string }) => {
      const approver = actor(opts.as);
      await withClient(approver, async ({ client }) => {
        const handle = await runningPromotion(client, model);
        const verdict = await handle
          .executeUpdate(approveUpdate, { args: [{ approver, comment: opts.comment }] })
          .catch(refused);
        process.stdout.write(`${verdict.reason}\n`);
      });
    });

  program
    .command('reject')
    .description('reject the candidate of a promotion waiting for approval')
    .argument('<model>')
    .option('--as <name>', `approver, checked against the spec's allow-list (${ACTOR_DEFAULT})`)
    .requiredOption('--reason <text>', 'why (recorded)')
    .action(async (model: string, opts: { as?: string; reason: string }) => {
      const approver = actor(opts.as);
      await withClient(approver, async ({ client }) => {
        const handle = await runningPromotion(client, model);
        const verdict = await handle
          .executeUpdate(rejectUpdate, { args: [{ approver, reason: opts.reason }] })
          .catch(refused);
        process.stdout.write(`${verdict.reason}\n`);
      });
    });

  const simple = (
    name: string,
    description: string,
    send: (model: string, by: string, reason?: string) => Promise<void>,
  ) =>
    program
      .command(name)
      .description(description)
      .argument('<model>')
      .option('--as <name>', `who (${ACTOR_DEFAULT})`)
      .option('--reason <text>', 'why (recorded)')
      .action(async (model: string, opts: { as?: string; reason?: string }) =>
        send(model, actor(opts.as), opts.reason),
      );

  /** The running promotion, else the running watch after graduation (pause / resume act on either). */
  const promotionOrWatch = async (client: Client, model: string): Promise<[WorkflowHandle, string]> => {
    try {
      return [await runningPromotion(client, model), 'promotion'];
    } catch (err) {
      const watch = await runningWatch(client, model);
      if (watch) return [watch, 'watch'];
      throw err;
    }
  };
  simple(
    'pause',
    'hold the current step (the SLO guard keeps watching); after graduation: the watch only notifies',
    (model, by, reason) =>
      withClient(by, async ({ client }) => {
        const [handle, what] = await promotionOrWatch(client, model);
        await handle.signal(pauseSignal, { by, reason });
        process.stdout.write(
          what === 'watch'
            ? `paused the watch of ${model}: alerts are notified, nothing rolls back until resume\n`
            : `paused ${model}\n`,
        );
      }),
  );
  simple('resume', 'continue a paused promotion (or watch)', (model, by, reason) =>
    withClient(by, async ({ client }) => {
      const [handle, what] = await promotionOrWatch(client, model);
      await handle.signal(resumeSignal, { by, reason });
      process.stdout.write(`resumed ${what === 'watch' ? `the watch of ${model}` : model}\n`);
    }),
  );
  simple('promote-full', 'skip the remaining steps and graduate the candidate', (model, by, reason) =>
    withClient(by, async ({ client }) => {
      await (await runningPromotion(client, model)).signal(promoteFullSignal, { by, reason });
      process.stdout.write(`promoting ${model} fully\n`);
    }),
  );

  program
    .command('rollback')
    .description(
      'roll traffic back to the baseline now; with no promotion in flight, restore the previous version',
    )
    .argument('<model>')
    .requiredOption('--reason <text>', 'why (recorded in the history)')
    .option('--as <name>', `who (${ACTOR_DEFAULT})`)
    .option('--to <version>', 'with no promotion in flight: the version to restore (default: alias previous)')
    .action(async (model: string, opts: { reason: string; as?: string; to?: string }) => {
      const by = actor(opts.as);
      await withClient(by, async ({ client, config }) => {
        const promotion = client.workflow.getHandle(promotionWorkflowId(model));
        const running = await promotion
          .describe()
          .then((d) => d.status.name === 'RUNNING')
          .catch((err: unknown) => {
            if (err instanceof WorkflowNotFoundError) return false;
            throw err;
          });
        if (running) {
          await promotion.signal(rollbackSignal, { by, reason: opts.reason });
          process.stdout.write(
            `rollback requested on the running promotion of ${model}; traffic returns to the baseline\n`,
          );
          return;
        }
        const input: RollbackWorkflowInput = { model, by, reason: opts.reason, toVersion: opts.to };
        let handle;
        try {
          handle = await startRollback(client, config.taskQueue, input);
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError)
            throw new Error(`a rollback of ${model} is already running`);
          throw err;
        }
        let result: RollbackWorkflowResult;
        try {
          result = (await handle.result()) as RollbackWorkflowResult;
        } catch (err) {
          throw new Error(`rollback of ${model} failed`, { cause: err });
        }
        process.stdout.write(
          `${model}: v${result.to} serves 100%${result.from ? ` (was v${result.from})` : ''}\n`,
        );
        // A watch of the version rolled back from ends at its next look (production moved).
      });
    });
}
