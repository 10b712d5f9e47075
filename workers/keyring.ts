/**
 * Where the worker and `runway audit` read the keyring the platform config names: a YAML/JSON
 * file, or a ConfigMap on Kubernetes. Read at worker start (a malformed keyring stops the worker,
 * naming the entry) and again at every verification, so a revocation applies at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { lazyClient, readObject, type KubeConnection } from '../common/k8s';
import { KeyringError, parseKeyring, type Keyring, type KeyringSource } from '../common/signing';
import type { PlatformConfig } from './config';

function parseText(text: string, source: string): Keyring {
  let data: unknown;
  try {
    data = source.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new KeyringError(`keyring ${source} is not valid YAML/JSON: ${(err as Error).message}`);
  }
  return parseKeyring(data, source);
}

export function fileKeyring(file: string): KeyringSource {
  const abs = path.resolve(file);
  let cached: { mtimeMs: number; size: number; keyring: Keyring } | undefined;
  return {
    location: abs,
    async load() {
      let st: fs.Stats;
      try {
        st = fs.statSync(abs);
      } catch (err) {
        throw new KeyringError(`keyring ${abs}: cannot read it: ${(err as Error).message}`);
      }
      if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached.keyring;
      const keyring = parseText(fs.readFileSync(abs, 'utf8'), abs);
      cached = { mtimeMs: st.mtimeMs, size: st.size, keyring };
      return keyring;
    },
  };
}

export function configMapKeyring(ref: string, key: string, conn: KubeConnection): KeyringSource {
  const [namespace = '', name = ''] = ref.split('/');
  const client = lazyClient(conn);
  const location = `ConfigMap ${ref} (data key ${key})`;
  return {
    location,
    async load() {
      const obj = (await readObject((await client()).objects, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        name,
        namespace,
      })) as { data?: Record<string, string> } | undefined;
      if (!obj) throw new KeyringError(`keyring ${location}: no such ConfigMap`);
      const text = obj.data?.[key];
      if (text === undefined) throw new KeyringError(`keyring ${location}: the ConfigMap has no key ${key}`);
      return parseText(text, `${location}`);
    },
  };
}

/** The keyring the platform config names, or undefined when it names none. */
export function keyringSource(config: PlatformConfig): KeyringSource | undefined {
  const k = config.keyring;
  if (!k) return undefined;
  if (k.file) return fileKeyring(k.file);
  return configMapKeyring(k.configMap!, k.key, {
    kubeconfig: config.fleet.kubeconfig,
    context: config.fleet.context,
  });
}
