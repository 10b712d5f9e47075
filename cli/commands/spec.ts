import fs from 'node:fs';
import type { Command } from 'commander';
import { loadSpecFile, specJsonSchema } from '../../specs/load';
import { checkSpec, describeViolations, policyFor } from '../../specs/policy';
import { loadPlatformConfig } from '../../workers/config';
import { stepTexts, strategyOf } from '../../specs/strategy';

export function registerSpec(program: Command): void {
  const spec = program.command('spec').description('validate ModelSpecs and print their JSON Schema');
  spec
    .command('validate')
    .argument('<files...>', 'ModelSpec YAML files')
    .description('check specs; prints every problem with file, line and field, exits 1 if any is invalid')
    .option('--json', 'print the resolved specs (defaults filled, durations in ms) as JSON')
    .option(
      '--policy',
      "also check each spec against the platform config's policy, as the worker will at start (--config, RUNWAY_CONFIG or <state dir>/platform.yaml)",
    )
    .option('--config <file>', 'platform config whose policy --policy applies')
    .action((files: string[], opts: { json?: boolean; policy?: boolean; config?: string }) => {
      let failed = 0;
      const policy = opts.policy ? loadPlatformConfig({ file: opts.config }).policy : undefined;
      for (const file of files) {
        try {
          const loaded = loadSpecFile(file);
          if (policy) {
            const { violations } = checkSpec(loaded.spec, policyFor(policy, loaded.spec.name));
            if (violations.length)
              throw new Error(`${file}: ${describeViolations(loaded.spec.name, violations)}`);
          }
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
