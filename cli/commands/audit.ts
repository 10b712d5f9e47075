/**
 * `runway audit MODEL`: who started a promotion, who approved, every traffic change with the
 * numbers behind it, and the outcome, read from the workflow histories. Works with the platform
 * down (it reads a copy of the saved database). JSON schema: docs/audit-schema.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { auditHtml } from '../../audit/html';
import { connectForAudit } from '../../audit/connect';
import { auditModel, listDocument } from '../../audit/fetch';
import { auditMarkdown, listMarkdown } from '../../audit/markdown';
import type { Keyring } from '../../common/signing';
import { loadPlatformConfig } from '../../workers/config';
import { fileKeyring, keyringSource } from '../../workers/keyring';

/** The keyring signatures are verified against: --keyring, else the platform config's, else none. */
async function auditKeyring(file: string | undefined): Promise<Keyring | undefined> {
  const source = file ? fileKeyring(file) : keyringSource(loadPlatformConfig());
  return source?.load();
}

function parseSince(value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime()))
    throw new Error(`--since expects a date such as 2026-11-01 or an ISO time, got "${value}"`);
  return d;
}

export function registerAudit(program: Command): void {
  program
    .command('audit')
    .description("a promotion's audit trail from its workflow history (who, what, the numbers, the outcome)")
    .argument('<model>')
    .option('--run <id>', 'a specific run (any run of a continue-as-new chain)')
    .option('--version <version>', 'the latest promotion of this model version')
    .option(
      '--since <date>',
      'every promotion started on or after this date: YYYY-MM-DD or an ISO time (2026-11-01T09:30Z)',
    )
    .option('--list', 'list the promotions of the model instead')
    .option('--format <format>', 'md, json or html (one self-contained page: timeline, verdicts, cost)', 'md')
    .option('--out <file>', 'html: where to write the page (default: <model>-audit.html here)')
    .option('--no-replay', 'skip the replay check against the current workflow code')
    .option(
      '--keyring <file>',
      "verify signed decisions against this keyring (default: the platform config's)",
    )
    .action(
      async (
        model: string,
        opts: {
          run?: string;
          version?: string;
          since?: string;
          list?: boolean;
          format: string;
          out?: string;
          replay: boolean;
          keyring?: string;
        },
      ) => {
        if (!['md', 'json', 'html'].includes(opts.format))
          throw new Error(`--format expects md, json or html, got "${opts.format}"`);
        if (opts.out && opts.format !== 'html') throw new Error('--out goes with --format html');
        if (opts.list && opts.format === 'html')
          throw new Error('--list prints md or json; --format html draws one promotion (or --since)');
        if (opts.run && opts.version) throw new Error('--run and --version both pick a promotion: give one');
        const since = opts.since ? parseSince(opts.since) : undefined;
        const keyring = opts.list ? undefined : await auditKeyring(opts.keyring);
        const c = await connectForAudit();
        try {
          if (c.source === 'offline')
            process.stderr.write('runway audit: platform not running; read its saved database\n');
          if (opts.list) {
            const doc = await listDocument(c.client, model, since);
            process.stdout.write(
              opts.format === 'json' ? JSON.stringify(doc, null, 2) + '\n' : listMarkdown(doc),
            );
            return;
          }
          const doc = await auditModel(c.client, {
            model,
            runId: opts.run,
            version: opts.version,
            since,
            replay: opts.replay,
            keyring,
            ...(c.config.cost ? { prices: c.config.cost } : {}),
          });
          if (opts.format === 'html') {
            const file = path.resolve(opts.out ?? `${model}-audit.html`);
            fs.writeFileSync(file, auditHtml(doc));
            process.stderr.write(`runway audit: wrote ${file}\n`);
          } else {
            process.stdout.write(
              opts.format === 'json' ? JSON.stringify(doc, null, 2) + '\n' : auditMarkdown(doc),
            );
          }
          // An auditor's script must notice code that can no longer replay what it ran.
          if (doc.promotions.some((p) => p.replay.checked && !p.replay.ok)) process.exitCode = 3;
        } finally {
          await c.close();
        }
      },
    );
}
