/**
 * The CLI's side of signed decisions: where a person's private key lives (their config dir, mode
 * 0600, like an ssh key), and the signing of one decision. The key never leaves this process:
 * only the message, its signature and the key's fingerprint do.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { statusQuery } from '../workflows/api';
import {
  commentDigest,
  fingerprint,
  newNonce,
  publicKeyText,
  signDecision,
  type Decision,
  type DecisionContext,
  type SignedDecision,
} from '../common/signing';

/** `$RUNWAY_KEY_DIR`, else `$XDG_CONFIG_HOME/runway/keys`, else `~/.config/runway/keys`. */
export function keyDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RUNWAY_KEY_DIR) return path.resolve(env.RUNWAY_KEY_DIR);
  const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'runway', 'keys');
}

export const keyFileFor = (name: string): string => path.join(keyDir(), `${name}.key`);

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

/** The keyring line for a public key: paste it under `keys:` in the keyring. */
export function keyringLine(name: string, publicKey: crypto.KeyObject): string {
  return `- { name: ${JSON.stringify(name)}, publicKey: "${publicKeyText(publicKey)}", fingerprint: "${fingerprint(publicKey)}" }`;
}

/** Writes a new ed25519 private key for `name` (0600, in a 0700 dir); refuses to overwrite unless asked. */
export function initKey(
  name: string,
  opts: { file?: string; force?: boolean } = {},
): { file: string; line: string } {
  if (!NAME.test(name)) throw new Error(`--as: expected a name of letters, digits and ._@- (got "${name}")`);
  const file = path.resolve(opts.file ?? keyFileFor(name));
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  try {
    fs.writeFileSync(file, pem, { mode: 0o600, flag: opts.force ? 'w' : 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new Error(
        `${file} already exists: \`runway keys show --as ${name}\` prints its keyring line; --force replaces it`,
      );
    throw err;
  }
  fs.chmodSync(file, 0o600); // `w` over an existing file keeps its old mode
  return { file, line: keyringLine(name, publicKey) };
}

/** The private key to sign with: `--key`, else $RUNWAY_SIGNING_KEY, else the config dir's `<name>.key`. */
export function loadSigningKey(name: string, file?: string): { key: crypto.KeyObject; file: string } {
  const chosen = path.resolve(file ?? process.env.RUNWAY_SIGNING_KEY ?? keyFileFor(name));
  let st: fs.Stats;
  try {
    st = fs.statSync(chosen);
  } catch {
    throw new Error(
      `no signing key for ${name} at ${chosen}: create one with \`runway keys init --as ${name}\` and add the line it prints to the platform keyring`,
    );
  }
  // As ssh does: a private key others can read is no proof of who signed.
  if ((st.mode & 0o077) !== 0)
    throw new Error(
      `${chosen} is readable by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 ${chosen}`,
    );
  const key = crypto.createPrivateKey(fs.readFileSync(chosen));
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${chosen}: expected an ed25519 private key`);
  return { key, file: chosen };
}

/** Signs one decision on the promotion `context` names, now, with a fresh nonce. */
export function sign(
  key: crypto.KeyObject,
  decision: Decision,
  by: string,
  context: DecisionContext,
  comment?: string,
  at: Date = new Date(),
): SignedDecision {
  return signDecision(
    {
      kind: 'runway.decision/v1',
      decision,
      by,
      model: context.model,
      version: context.version,
      workflowId: context.workflowId,
      firstRunId: context.firstRunId,
      specSha256: context.specSha256,
      artifactSha256: context.artifactSha256,
      commentSha256: commentDigest(comment),
      at: at.toISOString(),
      nonce: newNonce(),
    },
    key,
  );
}

/**
 * The `signed` part for a decision on a running promotion, when its spec asks for signed
 * decisions (undefined under `payload`). What is signed comes from the promotion's own status,
 * and the workflow checks every field of it again.
 */
export async function signedFor(
  handle: WorkflowHandle,
  decision: Decision,
  by: string,
  comment: string | undefined,
  keyFile: string | undefined,
  opts: { optional?: boolean } = {},
): Promise<SignedDecision | undefined> {
  let status;
  try {
    status = await handle.query(statusQuery);
  } catch (err) {
    // A brake is never held up by a worker that cannot say whether it signs (an older one, or
    // one that is busy): it goes unsigned, as it would under payload identity.
    if (opts.optional) return undefined;
    throw err;
  }
  if (status.identity !== 'signed' || !status.decisionContext) return undefined;
  let key: crypto.KeyObject;
  try {
    key = loadSigningKey(by, keyFile).key;
  } catch (err) {
    // A brake (rollback) is never held up by a missing key: it goes unsigned, and says so.
    if (opts.optional) {
      process.stderr.write(`runway: sending it unsigned: ${(err as Error).message}\n`);
      return undefined;
    }
    throw err;
  }
  return sign(key, decision, by, status.decisionContext, comment);
}
