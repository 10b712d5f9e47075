/**
 * `runway promote` (what CI runs) and the progress lines it and the demo print. Exit codes for CI:
 * 0 promoted, 1 error/failed, 2 rejected, 3 rolled back, 4 approval expired, 5 cancelled.
 */
import type { Command } from 'commander';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client } from '@temporalio/client';
import { ACTOR_DEFAULT } from '../actor';
import { failureMessage } from '../failure';
import { startPromotion } from '../start';
import { actor, withClient } from '../client';
import { sign, loadSigningKey } from '../signer';
import { passedStageLine, progressLine } from '../progress';
import { loadSpecFile } from '../../specs/load';
import { createRegistry } from '../../registry/factory';
import {
  promotionWorkflowId,
  statusQuery,
  type Outcome,
  type PromotionInput,
  type PromotionResult,
} from '../../workflows/api';

export const EXIT_CODES: Record<Outcome, number> = {
  promoted: 0,
  failed: 1,
  rejected: 2,
  rolled_back: 3,
  expired: 4,
  cancelled: 5,
};

function collect(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new Error(`--meta expects key=value, got "${value}"`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/** CI metadata picked up from well-known environment variables, so pipelines need no flags. */
function ciMetadata(): Record<string, string> {
  const env = process.env;
  const pick: Record<string, string | undefined> = {
    commit: env.GITHUB_SHA ?? env.CI_COMMIT_SHA ?? env.GIT_COMMIT,
    pipeline: env.GITHUB_RUN_ID
      ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
      : (env.CI_PIPELINE_URL ?? env.BUILD_URL),
  };
  return Object.fromEntries(Object.entries(pick).filter((e): e is [string, string] => !!e[1]));
}

/** Prints a line whenever the status changes, until the workflow ends; returns its result. */
export async function followPromotion(
  client: Client,
  model: string,
  print: (line: string) => void,
): Promise<PromotionResult> {
  const handle = client.workflow.getHandle(promotionWorkflowId(model));
  let last = '';
  let printedStages = 0;
  let done = false;
  const resultPromise = handle.result().finally(() => {
    done = true;
  }) as Promise<PromotionResult>;
  const poll = (async () => {
    while (!done) {
      try {
        const status = await handle.query(statusQuery);
        // Stages passed between two polls (a quick approval, a busy machine) still get a line.
        const entered = status.stagesEntered ?? [];
        if (entered.length < printedStages) printedStages = 0; // a new run after continue-as-new
        for (const stage of entered.slice(printedStages, -1)) print(passedStageLine(status, stage));
        printedStages = entered.length; // the last one is the current stage, shown by the line below
        const line = progressLine(status);
        if (line !== last) print(line);
        last = line;
      } catch {
        // the workflow may be between runs (continue-as-new) or just finished
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  try {
    return await resultPromise;
  } finally {
    done = true;
    await poll;
  }
}

export function registerPromote(program: Command): void {
  program
    .command('promote')
    .description('start a promotion of a model version (one in flight per model)')
    .argument('<spec>', 'ModelSpec YAML file')
    .requiredOption('--version <version>', 'registry version to promote')
    .option(
      '--wait',
      'follow progress and exit with the outcome: 0 promoted, 1 failed, 2 rejected, 3 rolled back, 4 approval expired, 5 cancelled',
    )
    .option('--as <name>', `who is starting it (${ACTOR_DEFAULT})`)
    .option('--meta <key=value>', 'CI metadata recorded for the audit, repeatable (commit=abc123)', collect)
    .option(
      '--key <file>',
      'signing key, for approval.identity signed (default: $RUNWAY_SIGNING_KEY, else $XDG_CONFIG_HOME/runway/keys/NAME.key)',
    )
    .action(
      async (
        specFile: string,
        opts: { version: string; wait?: boolean; as?: string; meta?: Record<string, string>; key?: string },
      ) => {
        const loaded = loadSpecFile(specFile); // a bad spec never starts a promotion
        const { spec } = loaded;
        await withClient(opts.as, async ({ client, config }) => {
          const registry = createRegistry(config.registry);
          const candidate = await registry.get(spec.name, opts.version);
          if (!candidate) {
            throw new Error(
              `${spec.name} v${opts.version} is not in the registry ${registry.location}; push it: runway registry push ${spec.name} FILE.onnx --version ${opts.version}`,
            );
          }
          const input: PromotionInput = {
            spec,
            specSha256: loaded.sha256,
            version: opts.version,
            triggeredBy: actor(opts.as),
            metadata: { ...ciMetadata(), ...(opts.meta ?? {}), specFile: loaded.file },
          };
          if (spec.approval.identity === 'signed') {
            // The start is a decision too: signed by CI's (or the starter's) key, naming the artifact.
            const { key } = loadSigningKey(input.triggeredBy, opts.key);
            input.signedStart = sign(key, 'promote', input.triggeredBy, {
              model: spec.name,
              version: opts.version,
              workflowId: promotionWorkflowId(spec.name),
              firstRunId: null,
              specSha256: loaded.sha256,
              artifactSha256: candidate.sha256,
            });
          }
          try {
            const production = await registry.resolveAlias(spec.name, 'production');
            await startPromotion(client, config.taskQueue, input, production?.version);
          } catch (err) {
            if (err instanceof WorkflowExecutionAlreadyStartedError) {
              throw new Error(
                `a promotion of ${spec.name} is already in flight; see \`runway status ${spec.name}\``,
              );
            }
            throw err;
          }
          process.stderr.write(
            `started promotion of ${spec.name} v${opts.version} (workflow ${promotionWorkflowId(spec.name)})\n`,
          );
          if (!opts.wait) return;
          try {
            const result = await followPromotion(client, spec.name, (l) => process.stderr.write(l + '\n'));
            process.stdout.write(`${result.outcome}: ${result.reason}\n`);
            if (result.outcome !== 'promoted')
              process.stderr.write(`promotion ${result.outcome}: ${result.reason}\n`);
            process.exitCode = EXIT_CODES[result.outcome];
          } catch (err) {
            if (err instanceof WorkflowFailedError) {
              process.stderr.write(`promotion failed: ${failureMessage(err)}\n`);
              process.exitCode = EXIT_CODES.failed;
              return;
            }
            throw err;
          }
        });
      },
    );
}
