/**
 * Human controls over a running promotion, all by update so the caller learns at once whether it
 * counted or why it was refused: approve / reject, pause / resume / promote-full / rollback (the
 * UI sends the same as signals; the workflow records a refused one and ignores it).
 * `runway rollback` with no promotion in flight restores the `previous` version.
 */
import type { Command } from 'commander';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import {
  type Client,
  type WorkflowHandle,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { ACTOR_DEFAULT } from '../actor';
import { actor, runningPromotion, startRollback, withClient } from '../client';
import { signedFor } from '../signer';
import { runningWatch } from '../graduation-watch';
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

const KEY_DEFAULT = '$RUNWAY_SIGNING_KEY, else $XDG_CONFIG_HOME/runway/keys/NAME.key';

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
    .option('--key <file>', `signing key, for approval.identity signed (default: ${KEY_DEFAULT})`)
    .option(
      '--print',
      'print the (signed) payload to paste into the Temporal UI as the approve Signal; send nothing',
    )
    .action(async (model: string, opts: { as?: string; comment?: string; key?: string; print?: boolean }) => {
      const approver = actor(opts.as);
      await withClient(approver, async ({ client }) => {
        const handle = await runningPromotion(client, model);
        const signed = await signedFor(handle, 'approve', approver, opts.comment, opts.key);
        const payload = {
          approver,
          ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
          ...(signed ? { signed } : {}),
        };
        if (opts.print) {
          process.stderr.write(
            `paste this into the Temporal UI: ${promotionWorkflowId(model)} → Send a Signal → approve${signed ? ` (signed with ${signed.key}; it counts once, within the approval window)` : ''}\n`,
          );
          process.stdout.write(`${JSON.stringify(payload)}\n`);
          return;
        }
        const verdict = await handle.executeUpdate(approveUpdate, { args: [payload] }).catch(refused);
        process.stdout.write(`${verdict.reason}\n`);
      });
    });

  program
    .command('reject')
    .description('reject the candidate of a promotion waiting for approval')
    .argument('<model>')
    .option('--as <name>', `approver, checked against the spec's allow-list (${ACTOR_DEFAULT})`)
    .requiredOption('--reason <text>', 'why (recorded)')
    .option('--key <file>', `signing key, for approval.identity signed (default: ${KEY_DEFAULT})`)
    .action(async (model: string, opts: { as?: string; reason: string; key?: string }) => {
      const approver = actor(opts.as);
      await withClient(approver, async ({ client }) => {
        const handle = await runningPromotion(client, model);
        const signed = await signedFor(handle, 'reject', approver, opts.reason, opts.key);
        const verdict = await handle
          .executeUpdate(rejectUpdate, {
            args: [{ approver, reason: opts.reason, ...(signed ? { signed } : {}) }],
          })
          .catch(refused);
        process.stdout.write(`${verdict.reason}\n`);
      });
    });

  const simple = (
    name: string,
    description: string,
    send: (model: string, by: string, reason?: string, key?: string) => Promise<void>,
    signs = false,
  ) => {
    const command = program
      .command(name)
      .description(description)
      .argument('<model>')
      .option('--as <name>', `who (${ACTOR_DEFAULT})`)
      .option('--reason <text>', 'why (recorded)');
    if (signs)
      command.option('--key <file>', `signing key, for approval.identity signed (default: ${KEY_DEFAULT})`);
    return command.action(async (model: string, opts: { as?: string; reason?: string; key?: string }) =>
      send(model, actor(opts.as), opts.reason, opts.key),
    );
  };

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
  // Each control of a promotion goes by update: a refusal (who may not, or not now) comes back as
  // the reason. The watch after graduation takes pause / resume as signals.
  simple(
    'pause',
    'hold the current step (the SLO guard keeps watching); after graduation: the watch only notifies',
    (model, by, reason) =>
      withClient(by, async ({ client }) => {
        const [handle, what] = await promotionOrWatch(client, model);
        if (what === 'watch') {
          await handle.signal(pauseSignal, { by, reason });
          process.stdout.write(
            `paused the watch of ${model}: alerts are notified, nothing rolls back until resume\n`,
          );
        } else {
          await control(handle, pauseUpdate, pauseSignal, { by, reason });
          process.stdout.write(`paused ${model}\n`);
        }
      }),
  );
  simple(
    'resume',
    'continue a paused promotion (past an inconclusive analysis: only approvers or operators) or watch',
    (model, by, reason) =>
      withClient(by, async ({ client }) => {
        const [handle, what] = await promotionOrWatch(client, model);
        if (what === 'watch') {
          await handle.signal(resumeSignal, { by, reason });
          process.stdout.write(`resumed the watch of ${model}\n`);
          return;
        }
        const verdict = await control(handle, resumeUpdate, resumeSignal, { by, reason });
        process.stdout.write(`resumed ${model} (${verdict})\n`);
      }),
  );
  simple(
    'promote-full',
    'skip the remaining steps and graduate the candidate (only approvers or operators, after approval)',
    (model, by, reason, key) =>
      withClient(by, async ({ client }) => {
        const handle = await runningPromotion(client, model);
        const signed = await signedFor(handle, 'promote-full', by, reason, key);
        await control(handle, promoteFullUpdate, promoteFullSignal, {
          by,
          reason,
          ...(signed ? { signed } : {}),
        });
        process.stdout.write(`promoting ${model} fully\n`);
      }),
    true,
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
    .option('--key <file>', `signing key, for approval.identity signed (default: ${KEY_DEFAULT})`)
    .action(async (model: string, opts: { reason: string; as?: string; to?: string; key?: string }) => {
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
          // A brake: signed when the promotion signs decisions and a key is at hand, else sent anyway.
          const signed = await signedFor(promotion, 'rollback', by, opts.reason, opts.key, {
            optional: true,
          });
          await control(promotion, rollbackUpdate, rollbackSignal, {
            by,
            reason: opts.reason,
            ...(signed ? { signed } : {}),
          });
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
