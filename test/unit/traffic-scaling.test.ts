/**
 * The setTraffic activity's order of work, with a recording fleet and router (the same path runs
 * on a real API server in test/integration/k8s-promotion.test.ts): whoever gains weight grows
 * before the route changes, whoever loses shrinks after, and a router without sticky assignment
 * gets no sticky header.
 */
import { describe, expect, it } from 'vitest';
import { trafficActivities } from '../../activities/traffic';
import type { ActivityDeps } from '../../activities';
import { createLogger } from '../../common/log';
import type { Deployment, FleetDriver } from '../../serving/fleet/driver';
import { replicasForWeight } from '../../serving/fleet/sizing';
import type { Route } from '../../serving/router/route';
import type { RouterCapabilities, TrafficRouter } from '../../serving/traffic/router';
import type { ModelRegistry } from '../../registry/registry';

function world(full: number, replicas: Record<string, number>, sticky = true, production = 'base') {
  const log: string[] = [];
  const deployments = new Map<string, Deployment>(
    Object.entries(replicas).map(([name, n]) => [
      name,
      {
        name,
        model: 'm',
        version: name,
        environment: 'production',
        replicas: n,
        fullReplicas: full,
        endpoints: [`http://${name}.svc:80`],
        ready: true,
      },
    ]),
  );
  const fleet: Partial<FleetDriver> = {
    get: async (name) => deployments.get(name),
    list: async () => [...deployments.values()],
    scaleToWeight: async (name, weight, opts) => {
      const d = deployments.get(name)!;
      d.replicas = Math.min(replicasForWeight(full, weight), opts?.atMost ?? Infinity);
      log.push(`scale ${name}=${d.replicas}`);
      return d;
    },
  };
  const capabilities: RouterCapabilities = {
    weights: true,
    mirror: true,
    sticky,
    feedback: sticky,
    preview: sticky,
  };
  const routes: Route[] = [];
  const router: TrafficRouter = {
    kind: sticky ? 'builtin' : 'gateway-api',
    capabilities,
    setRoute: async (_m, r) => {
      routes.push(r);
      log.push(`route ${r.variants.map((v) => `${v.name}=${v.weight}`).join(',')}`);
    },
    getRoute: async () => routes.at(-1),
    deleteRoute: async () => {},
  };
  const registry: Partial<ModelRegistry> = {
    resolveAlias: async (_m, alias) =>
      alias === 'production'
        ? ({ version: production } as Awaited<ReturnType<ModelRegistry['resolveAlias']>>)
        : undefined,
  };
  const deps = {
    fleet,
    router,
    registry,
    metrics: {},
    logger: createLogger('test', () => {}),
  } as unknown as ActivityDeps;
  return { acts: trafficActivities(deps), log, routes, deployments };
}

const variant = (name: string, weight: number) => ({ name, deployment: `m-v${name}-production`, weight });

describe('setTraffic sizes the fleet around the route change', () => {
  it('a canary step: the candidate grows first, the baseline shrinks after', async () => {
    const w = world(4, { 'm-vbase-production': 3, 'm-vcand-production': 1 });
    await w.acts.setTraffic({
      model: 'm',
      variants: [variant('base', 50), variant('cand', 50)],
      reason: 'step',
      sticky: { header: 'x-u' },
    });
    expect(w.log).toEqual([
      'scale m-vcand-production=2',
      'route base=50,cand=50',
      'scale m-vbase-production=2',
    ]);
    expect(w.routes[0]!.sticky).toEqual({ header: 'x-u' });
  });

  it('a rollback: the baseline is back at full size before traffic moves to it', async () => {
    const w = world(4, { 'm-vbase-production': 2, 'm-vcand-production': 2 });
    await w.acts.setTraffic({ model: 'm', variants: [variant('base', 100)], reason: 'rollback' });
    expect(w.log).toEqual(['scale m-vbase-production=4', 'route base=100', 'scale m-vcand-production=1']);
  });

  it('graduation: the candidate grows within the budget, the baseline leaves the route and shrinks', async () => {
    const w = world(4, { 'm-vbase-production': 2, 'm-vcand-production': 2 });
    await w.acts.setTraffic({ model: 'm', variants: [variant('cand', 100)], reason: 'graduate' });
    expect(w.log).toEqual([
      'scale m-vcand-production=3',
      'route cand=100',
      'scale m-vbase-production=1',
      'scale m-vcand-production=4',
    ]);
  });

  it('blue-green (sizing full): the candidate back at full size first, nothing shrinks after', async () => {
    const w = world(4, { 'm-vbase-production': 4, 'm-vcand-production': 1 });
    await w.acts.setTraffic({
      model: 'm',
      variants: [variant('base', 0), variant('cand', 100)],
      reason: 'switch',
      sizing: 'full',
    });
    expect(w.log).toEqual(['scale m-vcand-production=4', 'route base=0,cand=100']);
    // the switch back is a route change alone: both are at full size already
    await w.acts.setTraffic({
      model: 'm',
      variants: [variant('base', 100)],
      reason: 'revert',
      sizing: 'full',
    });
    expect(w.log.slice(2)).toEqual(['route base=100']);
    expect(w.deployments.get('m-vcand-production')?.replicas).toBe(4);
  });

  it('a preview goes into the route; a router without header routing refuses it, naming the field', async () => {
    const w = world(1, { 'm-vbase-production': 1, 'm-vcand-production': 1 });
    const preview = { variant: 'cand', header: 'x-preview' };
    await w.acts.setTraffic({
      model: 'm',
      variants: [variant('base', 100), variant('cand', 0)],
      reason: 'preview',
      preview,
    });
    expect(w.routes[0]!.preview).toEqual(preview);
    const plain = world(1, { 'm-vbase-production': 1, 'm-vcand-production': 1 }, false);
    await expect(
      plain.acts.setTraffic({
        model: 'm',
        variants: [variant('base', 100), variant('cand', 0)],
        reason: 'preview',
        preview,
      }),
    ).rejects.toThrow(
      /blueGreen\.preview needs routing by request header, which router.driver "gateway-api"/,
    );
    expect(plain.routes).toEqual([]);
  });

  it('a router without sticky assignment gets the route without a sticky header', async () => {
    const w = world(1, { 'm-vbase-production': 1, 'm-vcand-production': 1 }, false);
    await w.acts.setTraffic({
      model: 'm',
      variants: [variant('base', 90), variant('cand', 10)],
      reason: 'step',
      sticky: { header: 'x-u' },
    });
    expect(w.routes[0]!.sticky).toBeUndefined();
  });
});
