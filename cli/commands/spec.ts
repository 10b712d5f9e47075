import fs from 'node:fs';
import type { Command } from 'commander';
import { loadSpecFile, specJsonSchema } from '../../specs/load';
import { stepTexts, strategyOf } from '../../specs/strategy';

export function registerSpec(program: Command): void {
  const spec = program.command('spec').description('validate ModelSpecs and print their JSON Schema');
  spec
    .command('validate')
    .argument('<files...>', 'ModelSpec YAML files')
    .description('check specs; prints every problem with file, line and field, exits 1 if any is invalid')
    .option('--json', 'print the resolved specs (defaults filled, durations in ms) as JSON')
    .action((files: string[], opts: { json?: boolean }) => {
      let failed = 0;
      for (const file of files) {
        try {
          const loaded = loadSpecFile(file);
          if (opts.json) process.stdout.write(JSON.stringify(loaded, null, 2) + '\n');
          else {
            const s = loaded.spec;
            const steps = [...stepTexts(s), strategyOf(s) === 'blue-green' ? 'graduate' : '100%'].join(' → ');
            process.stdout.write(
              `${file}: ok  ${s.name} (owner ${s.owner}); ${strategyOf(s)} ${steps}; experiment ${s.experiment.kind}\n`,
            );
          }
        } catch (err) {
          failed++;
          process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
        }
      }
      if (failed > 0) process.exitCode = 1;
    });
  spec
    .command('schema')
    .description('print the ModelSpec JSON Schema (for editors: yaml-language-server, VS Code)')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .action((opts: { output?: string }) => {
      const text = JSON.stringify(specJsonSchema(), null, 2) + '\n';
      if (opts.output) fs.writeFileSync(opts.output, text);
      else process.stdout.write(text);
    });
}
