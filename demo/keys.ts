/**
 * The demo's signing keys: `runway demo` runs with approval.identity `signed`, unattended, so it
 * makes its own ed25519 keys (the starter, the auto-approver, and alice and bob for a person at
 * the terminal) under `<state dir>/demo-keys/` and lists them in `<state dir>/keyring.yaml`,
 * the embedded platform's default keyring. Demo keys only: they prove nothing outside the demo.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { initKey, keyringLine } from '../cli/signer';
import { stateDir } from '../common/paths';
import { defaultKeyringFile, type PlatformConfig } from '../workers/config';

export const DEMO_SIGNERS = ['runway-demo', 'demo-approver', 'alice', 'bob'] as const;

export interface DemoKeys {
  dir: string;
  keyring: string;
  /** Names whose keys this call made (empty when all were there). */
  made: string[];
  file(name: string): string;
}

/**
 * Makes the demo keys that are missing and puts them in the default keyring. Undefined when the
 * platform config names a keyring of its own: the demo will not write into someone's keyring.
 */
export function ensureDemoKeys(config: PlatformConfig): DemoKeys | undefined {
  const keyring = defaultKeyringFile();
  if (config.keyring && path.resolve(config.keyring.file ?? '') !== keyring) return undefined;
  const dir = path.join(stateDir(), 'demo-keys');
  const file = (name: string) => path.join(dir, `${name}.key`);
  const made: string[] = [];
  const doc = fs.existsSync(keyring)
    ? ((YAML.parse(fs.readFileSync(keyring, 'utf8')) as { keys?: unknown[] } | null) ?? {})
    : {};
  const entries = Array.isArray(doc.keys) ? doc.keys : [];
  for (const name of DEMO_SIGNERS) {
    let line: string;
    if (fs.existsSync(file(name))) {
      line = keyringLine(name, crypto.createPublicKey(fs.readFileSync(file(name))));
    } else {
      line = initKey(name, { file: file(name) }).line;
      made.push(name);
    }
    const entry = (YAML.parse(line) as Record<string, unknown>[])[0]!;
    const at = entries.findIndex((e) => (e as { name?: unknown } | null)?.name === name);
    if (at >= 0) entries[at] = { ...(entries[at] as object), ...entry, comment: 'runway demo key' };
    else entries.push({ ...entry, comment: 'runway demo key' });
  }
  fs.writeFileSync(keyring, YAML.stringify({ ...doc, keys: entries }), { mode: 0o644 });
  return { dir, keyring, made, file };
}
