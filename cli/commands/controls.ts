/**
 * Human controls over a running promotion, all by update so the caller learns at once whether it
 * counted or why it was refused: approve / reject, pause / resume / promote-full / rollback (the
 * UI sends the same as signals; the workflow records a refused one and ignores it).
 * `runway rollback` with no promotion in flight restores the `previous` version.
 */
import type { Command } from 'commander';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { ACTOR_DEFAULT } from '../actor';
import { actor, runningPromotion, startRollback, withClient } from '../client';
import {
  approveUpdate,
  pauseSignal,
  pauseUpdate,
  promoteFullSignal,
  promoteFullUpdate,
  promotionWorkflowId,
  rejectUpdate,
  resumeSignal,
  resumeUpdate,
  rollbackSignal,
  rollbackUpdate,
  type ByInput,
  type ControlVerdict,
  type RollbackInput,
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

/**
 * Sends a control by update, so a refusal comes back with its reason. A worker older than this
 * CLI has no update handler for it yet: then the signal it does handle, so a brake still works
 * during a rolling upgrade.
 */
async function control<A extends ByInput | RollbackInput>(
  handle: WorkflowHandle,
  update: UpdateDefinition<ControlVerdict, [A]>,
  signal: Pick<SignalDefinition, 'name'>,
  input: A,
): Promise<string> {
  try {
    return (await handle.executeUpdate(update, { args: [input] })).reason;
  } catch (err) {
    if (
      err instanceof WorkflowUpdateFailedError &&
      /No registered handler for update/.test(err.cause?.message ?? '')
    ) {
      await handle.signal(signal.name, input);
      return 'sent as a signal: the worker predates control updates';
    }
    return refused(err);
  }
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

  // Each control goes by update: a refusal (who may not, or not now) comes back as the reason.
  simple('pause', 'hold the current step; the SLO guard keeps watching', (model, by, reason) =>
    withClient(by, async ({ client }) => {
      const handle = await runningPromotion(client, model);
      await control(handle, pauseUpdate, pauseSignal, { by, reason });
      process.stdout.write(`paused ${model}\n`);
    }),
  );
  simple(
    'resume',
    'continue a paused promotion (past an inconclusive analysis: only approvers or operators)',
    (model, by, reason) =>
      withClient(by, async ({ client }) => {
        const handle = await runningPromotion(client, model);
        const verdict = await control(handle, resumeUpdate, resumeSignal, { by, reason });
        process.stdout.write(`resumed ${model} (${verdict})\n`);
      }),
  );
  simple(
    'promote-full',
    'skip the remaining steps and graduate the candidate (only approvers or operators, after approval)',
    (model, by, reason) =>
      withClient(by, async ({ client }) => {
        const handle = await runningPromotion(client, model);
        await control(handle, promoteFullUpdate, promoteFullSignal, { by, reason });
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
          await control(promotion, rollbackUpdate, rollbackSignal, { by, reason: opts.reason });
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
      });
    });
}
