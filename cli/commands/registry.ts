/**
 * `runway registry`: push artifacts, list versions, move aliases, record statuses, verify bytes.
 * The registry is the platform config's (`registry.driver: file | mlflow`, see workers/config.ts);
 * --registry DIR or RUNWAY_REGISTRY pick a `file` registry directory instead.
 */
import type { Command } from 'commander';
import { ACTOR_DEFAULT, actor } from '../actor';
import { createRegistry } from '../../registry/factory';
import { FileRegistry } from '../../registry/file';
import { checkAlias, checkStatus } from '../../registry/names';
import { readOnnxSignature, signatureDifferences, signatureMetadata } from '../../registry/onnx-signature';
import type { Alias, ModelRegistry, ModelVersion } from '../../registry/registry';
import { loadSpecFile } from '../../specs/load';
import { loadPlatformConfig } from '../../workers/config';

const registryOption = [
  '--registry <dir>',
  "a file registry directory (default: the platform config's registry, or $RUNWAY_REGISTRY)",
] as const;

function openRegistry(dir: string | undefined): ModelRegistry {
  const explicit = dir ?? process.env.RUNWAY_REGISTRY;
  if (explicit) return new FileRegistry(explicit);
  return createRegistry(loadPlatformConfig().registry);
}

/** `k=v` pairs, repeatable; `=` inside the value is kept. */
function collectMetadata(pair: string, acc: Record<string, string> = {}): Record<string, string> {
  const eq = pair.indexOf('=');
  if (eq <= 0) throw new Error(`--metadata ${JSON.stringify(pair)}: expected key=value`);
  return { ...acc, [pair.slice(0, eq)]: pair.slice(eq + 1) };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function registerRegistry(program: Command): void {
  const reg = program
    .command('registry')
    .description('the model registry: immutable artifacts, aliases, statuses');

  reg
    .command('push')
    .description('store an artifact as a new version (refused if the version exists with other bytes)')
    .argument('<model>', 'model name (lowercase letters, digits, dashes)')
    .argument('<file>', 'ONNX artifact')
    .option('--version <v>', 'version (default: next integer)')
    .option('--metadata <key=value>', 'lineage metadata, repeatable (commit=abc123)', collectMetadata)
    .option('--source <s>', 'where the artifact came from (training run, pipeline URL)')
    .option('--pushed-by <name>', `who pushes (${ACTOR_DEFAULT})`)
    .option('--run-id <id>', 'the MLflow training run the version comes from (lineage)')
    .option('--spec <file>', "warn when the model's signature differs from this ModelSpec's")
    .option(...registryOption)
    .option('--json', 'print the stored version as JSON')
    .action(
      async (
        model: string,
        file: string,
        opts: {
          version?: string;
          metadata?: Record<string, string>;
          source?: string;
          pushedBy?: string;
          runId?: string;
          spec?: string;
          registry?: string;
          json?: boolean;
        },
      ) => {
        const signature = await readOnnxSignature(file);
        if (opts.spec) {
          const declared = loadSpecFile(opts.spec).spec.model.signature;
          for (const d of signatureDifferences(signature, declared))
            process.stderr.write(`warning: ${file} differs from ${opts.spec}: ${d}\n`);
        }
        const registry = openRegistry(opts.registry);
        const v = await registry.push(model, file, {
          version: opts.version,
          metadata: { ...signatureMetadata(signature), ...opts.metadata },
          source: opts.source,
          pushedBy: actor(opts.pushedBy),
          runId: opts.runId,
        });
        if (opts.json) process.stdout.write(JSON.stringify(v, null, 2) + '\n');
        else
          process.stdout.write(`${v.model} version ${v.version}  sha256:${v.sha256}  ${humanSize(v.size)}\n`);
      },
    );

  reg
    .command('list')
    .description('list versions with status, aliases, digest and lineage')
    .argument('[model]', 'only this model')
    .option(...registryOption)
    .option('--json', 'machine-readable output')
    .action(async (model: string | undefined, opts: { registry?: string; json?: boolean }) => {
      const registry = openRegistry(opts.registry);
      const versions = await registry.list(model);
      const aliasesOf = new Map<string, Partial<Record<Alias, string>>>();
      for (const m of new Set(versions.map((v) => v.model))) aliasesOf.set(m, await registry.aliases(m));
      const labels = (v: ModelVersion): Alias[] =>
        Object.entries(aliasesOf.get(v.model) ?? {})
          .filter(([, ver]) => ver === v.version)
          .map(([a]) => a as Alias);
      if (opts.json) {
        const out = versions.map((v) => ({ ...v, aliases: labels(v) }));
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        return;
      }
      if (versions.length === 0) {
        process.stdout.write(
          model
            ? `no versions of ${model} in ${registry.location}\n`
            : `registry ${registry.location} is empty\n`,
        );
        return;
      }
      const rows = [['MODEL', 'VERSION', 'STATUS', 'ALIASES', 'SHA256', 'SIZE', 'PUSHED BY', 'PUSHED AT']];
      for (const v of versions) {
        const status = v.statusReason ? `${v.status} (${v.statusReason})` : v.status;
        rows.push([
          v.model,
          v.version,
          status,
          labels(v).join(',') || '-',
          v.sha256.slice(0, 12) || '(unverified)',
          humanSize(v.size),
          v.pushedBy,
          v.createdAt.replace(/\.\d+Z$/, 'Z'),
        ]);
      }
      process.stdout.write(table(rows));
    });

  reg
    .command('alias')
    .description('point an alias (staging, production, previous) at a version, or remove it with --unset')
    .argument('<model>')
    .argument('<alias>', 'staging | production | previous')
    .argument('[version]')
    .option('--unset', 'remove the alias')
    .option(...registryOption)
    .action(
      async (
        model: string,
        alias: string,
        version: string | undefined,
        opts: { unset?: boolean; registry?: string },
      ) => {
        const a = checkAlias(alias);
        if (!opts.unset && version === undefined)
          throw new Error('alias: give a VERSION, or --unset to remove the alias');
        if (opts.unset && version !== undefined)
          throw new Error('alias: give either a VERSION or --unset, not both');
        const registry = openRegistry(opts.registry);
        await registry.setAlias(model, a, opts.unset ? undefined : version);
        process.stdout.write(opts.unset ? `${model}: ${a} removed\n` : `${model}: ${a} -> ${version}\n`);
      },
    );

  reg
    .command('status')
    .description('record a version status (candidate, rejected, production, archived) with a reason')
    .argument('<model>')
    .argument('<version>')
    .argument('<status>', 'candidate | rejected | production | archived')
    .option('--reason <text>', 'why (kept with the version)')
    .option(...registryOption)
    .action(
      async (
        model: string,
        version: string,
        status: string,
        opts: { reason?: string; registry?: string },
      ) => {
        const registry = openRegistry(opts.registry);
        await registry.setStatus(model, version, checkStatus(status), opts.reason);
        process.stdout.write(
          `${model} version ${version}: ${status}${opts.reason ? ` (${opts.reason})` : ''}\n`,
        );
      },
    );

  reg
    .command('verify')
    .description("re-hash a version's artifact; exits 1 naming both digests if it was modified")
    .argument('<model>')
    .argument('<version>')
    .option(...registryOption)
    .action(async (model: string, version: string, opts: { registry?: string }) => {
      const v = await openRegistry(opts.registry).verify(model, version);
      process.stdout.write(`${model} version ${version}: ok  sha256:${v.sha256}  ${v.artifactPath}\n`);
    });
}
