/**
 * `runway router` as a real process (compiled CLI): routes survive a restart through
 * --routes-file, a non-loopback host needs a token, and the token never reaches the log.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { runwayBin } from '../../common/paths';
import { closeAll, getRoute, putRoute, spawnRouterProcess, startStubModelServer } from '../helpers/router';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-router-'));
afterAll(async () => {
  await closeAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('runway router process', () => {
  it('comes back after a restart with the routes it had', async () => {
    const stub = await startStubModelServer();
    const routesFile = path.join(dir, 'routes.json');
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, 'tok-123456\n');
    const route = {
      variants: [
        { name: 'v1', endpoints: [stub.url], weight: 90 },
        { name: 'v2', endpoints: [stub.url], weight: 10 },
      ],
      sticky: { header: 'x-user' },
    };
    const first = await spawnRouterProcess(['--routes-file', routesFile, '--admin-token-file', tokenFile]);
    expect((await putRoute(first.url, 'fraud', route, 'tok-123456')).status).toBe(200);
    expect((await putRoute(first.url, 'fraud', { variants: [] }, 'tok-123456')).status).toBe(400);
    const onDisk = JSON.parse(fs.readFileSync(routesFile, 'utf8')) as { routes: Record<string, unknown> };
    expect(onDisk.routes.fraud).toEqual(route);
    await first.stop();
    expect(first.stderr()).not.toContain('tok-123456');

    const second = await spawnRouterProcess(['--routes-file', routesFile], {
      RUNWAY_ROUTER_TOKEN: 'tok-123456',
    });
    expect(await getRoute(second.url, 'fraud', 'tok-123456')).toEqual(route);
    const res = await request(`${second.url}/v2/models/fraud/infer`, {
      method: 'POST',
      body: '{"inputs":[]}',
    });
    expect(res.statusCode).toBe(200);
    expect(['v1', 'v2']).toContain(res.headers['x-runway-variant']);
    await res.body.dump();
    // Deleting rewrites the file too.
    const del = await request(`${second.url}/admin/routes/fraud`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer tok-123456' },
    });
    expect(del.statusCode).toBe(200);
    await del.body.dump();
    expect(JSON.parse(fs.readFileSync(routesFile, 'utf8'))).toEqual({ routes: {} });
    await second.stop();
    expect(second.stderr()).not.toContain('tok-123456');
  });

  it('refuses a non-loopback host without a token', () => {
    const r = spawnSync(process.execPath, [runwayBin, 'router', '--host', '0.0.0.0', '--port', '0'], {
      env: { ...process.env, RUNWAY_ROUTER_TOKEN: '' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/refusing to listen on non-loopback host 0\.0\.0\.0 without an admin token/);
  });
});
