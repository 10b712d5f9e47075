/**
 * The Kubernetes install's optional API keys (deploy/components/api-keys), rendered by the real
 * kustomize: off in the production overlay as shipped; with the component, the router reads
 * `--api-keys-file` from where the runway-router-api-keys Secret is mounted, as a directory (a
 * subPath mount would never see the Secret's updates, and the router rereads the file on change).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot, toolCacheDir } from '../../common/paths';

const version = /^KUSTOMIZE_VERSION=(\S+)/m.exec(
  fs.readFileSync(path.join(projectRoot, 'scripts/tools.sh'), 'utf8'),
)?.[1];
const kustomize = path.join(toolCacheDir(), 'bin', `kustomize-${version}`);
let skipReason: string | undefined;
if (!fs.existsSync(kustomize)) {
  skipReason = `API KEYS INSTALL TEST SKIPPED: ${kustomize} is missing (bash scripts/tools.sh kustomize)`;
  if (process.env.CI === 'true') throw new Error(`${skipReason} (CI=true: it must run)`);
  console.warn(`\n${'!'.repeat(100)}\n${skipReason}\n${'!'.repeat(100)}\n`);
}

interface Container {
  args: string[];
  volumeMounts: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[];
}
interface Deployment {
  kind: string;
  metadata: { name: string };
  spec: {
    template: {
      spec: { containers: Container[]; volumes: { name: string; secret?: { secretName: string } }[] };
    };
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-deploy-keys-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The production overlay, copied as a team would, optionally with the component turned on. */
function renderRouter(withKeys: boolean): Deployment['spec']['template']['spec'] {
  const overlay = fs.mkdtempSync(path.join(dir, 'overlay-'));
  fs.cpSync(path.join(projectRoot, 'deploy/overlays/production'), overlay, { recursive: true });
  const file = path.join(overlay, 'kustomization.yaml');
  let text = fs
    .readFileSync(file, 'utf8')
    .replace('../../base', path.relative(overlay, path.join(projectRoot, 'deploy/base')));
  const component = path.relative(overlay, path.join(projectRoot, 'deploy/components/api-keys'));
  // The overlay ships the lines commented out; a team uncomments them.
  if (withKeys)
    text = text.replace(
      /# components:\n#\s+- \.\.\/\.\.\/components\/api-keys/,
      `components:\n  - ${component}`,
    );
  fs.writeFileSync(file, text);
  const rendered = execFileSync(kustomize, ['build', '--load-restrictor', 'LoadRestrictionsNone', overlay], {
    encoding: 'utf8',
  });
  const router = YAML.parseAllDocuments(rendered)
    .map((d) => d.toJSON() as Deployment)
    .find((o) => o.kind === 'Deployment' && o.metadata.name === 'runway-router');
  if (!router) throw new Error('no runway-router Deployment in the render');
  return router.spec.template.spec;
}

describe.skipIf(!!skipReason)('API keys in the Kubernetes install', () => {
  it('is off as shipped', () => {
    const spec = renderRouter(false);
    expect(spec.containers[0]!.args.some((a) => a.startsWith('--api-keys-file'))).toBe(false);
    expect(spec.volumes.map((v) => v.name)).not.toContain('api-keys');
  });

  it('with the component, mounts the Secret as a directory where --api-keys-file reads', () => {
    const spec = renderRouter(true);
    const router = spec.containers[0]!;
    const arg = router.args.find((a) => a.startsWith('--api-keys-file='));
    expect(arg).toBeDefined();
    const file = arg!.slice('--api-keys-file='.length);
    const mount = router.volumeMounts.find((m) => m.name === 'api-keys');
    expect(mount).toMatchObject({ readOnly: true });
    expect(mount!.subPath).toBeUndefined();
    expect(path.posix.dirname(file)).toBe(mount!.mountPath);
    expect(spec.volumes.find((v) => v.name === 'api-keys')?.secret?.secretName).toBe(
      'runway-router-api-keys',
    );
    // What it had before stays: the admin token and the routes ConfigMap.
    expect(router.args).toContain('--admin-token-file=/var/run/runway/admin/token');
    expect(router.volumeMounts.map((m) => m.name)).toContain('admin-token');
  });
});
