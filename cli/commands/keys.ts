/**
 * `runway keys`: an approver's (or CI's) signing key for approval.identity `signed`. `init`
 * writes the private key under the user's config dir (0600) and prints the public line a
 * platform admin adds to the keyring; `show` prints that line again.
 */
import crypto from 'node:crypto';
import type { Command } from 'commander';
import { ACTOR_DEFAULT, actor } from '../actor';
import { initKey, keyringLine, loadSigningKey } from '../signer';

export function registerKeys(program: Command): void {
  const keys = program
    .command('keys')
    .description('signing keys for signed decisions (approval.identity: signed)');
  keys
    .command('init')
    .description('create an ed25519 signing key and print its keyring line')
    .option('--as <name>', `whose key: the name decisions are made in (${ACTOR_DEFAULT})`)
    .option('--key <file>', 'where to write the private key (default: $XDG_CONFIG_HOME/runway/keys/NAME.key)')
    .option('--force', 'replace an existing key')
    .action((opts: { as?: string; key?: string; force?: boolean }) => {
      const name = actor(opts.as);
      const { file, line } = initKey(name, { file: opts.key, force: opts.force });
      process.stderr.write(
        `wrote the private key of ${name} to ${file} (mode 0600; keep it there, never share it)\nadd this line under \`keys:\` in the platform keyring (platform config \`keyring\`):\n`,
      );
      process.stdout.write(`${line}\n`);
    });
  keys
    .command('show')
    .description('print the keyring line of an existing signing key')
    .option('--as <name>', `whose key (${ACTOR_DEFAULT})`)
    .option('--key <file>', 'the private key file (default: $XDG_CONFIG_HOME/runway/keys/NAME.key)')
    .action((opts: { as?: string; key?: string }) => {
      const name = actor(opts.as);
      const { key } = loadSigningKey(name, opts.key);
      process.stdout.write(`${keyringLine(name, crypto.createPublicKey(key))}\n`);
    });
}
