/** Help text conventions applied to every command at once, so no command forgets them. */
import type { Command } from 'commander';

/** Appends "(required)" to each mandatory option's description, in every subcommand. */
export function markRequired(cmd: Command): void {
  for (const option of cmd.options) {
    if (option.mandatory && !option.description.endsWith('(required)'))
      option.description = `${option.description} (required)`;
  }
  for (const sub of cmd.commands) markRequired(sub);
}
