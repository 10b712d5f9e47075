import { Command } from 'commander';
import { failureMessage } from './failure';
import { markRequired } from './help';
import { registerAudit } from './commands/audit';
import { registerControls } from './commands/controls';
import { registerKeys } from './commands/keys';
import { registerPlatform } from './commands/platform';
import { registerPromote } from './commands/promote';
import { registerRegistry } from './commands/registry';
import { registerRouter } from './commands/router';
import { registerServe } from './commands/serve';
import { registerSpec } from './commands/spec';
import { registerStatus } from './commands/status';
import { registerTraffic } from './commands/traffic';

/**
 * The `runway` command. Each subcommand lives in cli/commands/<name>.ts and exports a
 * `register<Name>(program)` function; this file only wires them together.
 */
export function buildProgram(): Command {
  const program = new Command('runway')
    .description('safe, durable promotion of machine-learning models')
    .version('0.1.0')
    // `runway promote --version 7` / `registry push --version 7` mean the model version, not ours.
    .enablePositionalOptions()
    // A usage error names what is wrong; the whole help would bury that line.
    .showHelpAfterError('(add --help for usage)');
  registerPlatform(program);
  registerPromote(program);
  registerStatus(program);
  registerTraffic(program);
  registerAudit(program);
  registerControls(program);
  registerKeys(program);
  registerRegistry(program);
  registerRouter(program);
  registerServe(program);
  registerSpec(program);
  markRequired(program);
  return program;
}

if (require.main === module || process.argv[1]?.endsWith('runway.js')) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      // The root cause and the chain to it: a workflow's own message says only that it failed.
      process.stderr.write(`runway: ${failureMessage(err)}\n`);
      // Errors may name their own status (`runway serve` refusing an artifact exits 3).
      const code = (err as { exitCode?: unknown } | null)?.exitCode;
      process.exit(typeof code === 'number' && Number.isInteger(code) && code > 0 ? code : 1);
    });
}
