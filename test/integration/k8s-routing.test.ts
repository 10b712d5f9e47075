/**
 * Routing through Kubernetes objects on a real API server: the ConfigMap TrafficRouter writing
 * routes that a real `runway router --routes-configmap` process applies within a second (and
 * refuses, keeping the old route, when a key is invalid); and the gateway-api TrafficRouter
 * writing HTTPRoutes validated by the real Gateway API CRDs from the sigs.k8s.io/gateway-api module.
 */
import fs from 'node:fs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compiled } from '../../common/paths';
import { ConfigMapTrafficRouter } from '../../serving/traffic/configmap';
import { GatewayApiTrafficRouter } from '../../serving/traffic/gateway-api';
import type { Route } from '../../serving/router/route';
import { RouteValidationError } from '../../serving/router/schema';
import {
  createNamespace,
  eventually,
  installGatewayCrds,
  requireK8s,
  startTestCluster,
  type TestCluster,
} from '../helpers/k8s';
import {
  closeAll,
  getRoute,
  spawnRouterProcess,
  startStubModelServer,
  type RouterProcess,
  type StubServer,
} from '../helpers/router';

const { bins, skipReason } = requireK8s();
const NS = 'runway-system';

describe.skipIf(!!skipReason)('routes in Kubernetes objects on a real API server', () => {
  let cluster: TestCluster;
  let stubs: StubServer[];
  let router: RouterProcess;
  let writer: ConfigMapTrafficRouter;

  beforeAll(async () => {
    if (!fs.existsSync(compiled('serving/router/configmap.ts'))) {
      throw new Error('dist is stale or missing: run `npx tsc -p tsconfig.build.json` first');
    }
    cluster = await startTestCluster(bins!, { apiOnly: true });
    console.log(`k8s test cluster up in ${cluster.startupMs} ms`);
    await createNamespace(cluster, NS, false);
    stubs = await Promise.all([startStubModelServer({ score: 0.1 }), startStubModelServer({ score: 0.9 })]);
    writer = new ConfigMapTrafficRouter(
      { namespace: NS, name: 'runway-routes' },
      { kubeconfig: cluster.kubeconfig },
    );
  });

  afterAll(async () => {
    await closeAll();
    await Promise.allSettled((stubs ?? []).map((s) => s.close()));
    await cluster?.stop();
  });

  const route = (w1: number): Route => ({
    variants: [
      { name: 'v1', endpoints: [stubs[0]!.url], weight: w1 },
      { name: 'v2', endpoints: [stubs[1]!.url], weight: 100 - w1 },
    ],
  });
  const variantOf = async (): Promise<string | undefined> => {
    const r = await request(`${router.url}/v2/models/fraud/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 8], data: [0, 0, 0, 0, 0, 0, 0, 0] }],
      }),
    });
    await r.body.text();
    return r.headers['x-runway-variant'] as string | undefined;
  };

  it('a router process serves the routes the ConfigMap holds, and follows changes within a second', async () => {
    await writer.setRoute('fraud', route(100));
    const cm = await cluster.api('GET', `/api/v1/namespaces/${NS}/configmaps/runway-routes`);
    expect(JSON.parse(cm.body.data.fraud)).toEqual(route(100));
    expect(cm.body.metadata.labels['app.kubernetes.io/managed-by']).toBe('runway');
    expect(await writer.getRoute('fraud')).toEqual(route(100));

    router = await spawnRouterProcess([
      '--routes-configmap',
      `${NS}/runway-routes`,
      '--kubeconfig',
      cluster.kubeconfig,
    ]);
    // Loaded before the router reported its URL.
    expect(await getRoute(router.url, 'fraud')).toEqual(route(100));
    expect(await variantOf()).toBe('v1');

    const lags: number[] = [];
    for (const w of [0, 100, 0]) {
      await writer.setRoute('fraud', route(w));
      const t = Date.now();
      await eventually(
        'route applied',
        async () => ((await getRoute(router.url, 'fraud'))?.variants[0]!.weight === w ? true : undefined),
        5_000,
      );
      lags.push(Date.now() - t);
    }
    console.log(`ConfigMap change → router: ${lags.join(', ')} ms`);
    expect(Math.max(...lags)).toBeLessThan(1_000);
    expect(await variantOf()).toBe('v2');

    // Another model's key, written by another writer, does not disturb this one.
    await writer.setRoute('churn', route(50));
    await eventually(
      'second model',
      async () => ((await getRoute(router.url, 'churn')) ? true : undefined),
      5_000,
    );
    expect((await getRoute(router.url, 'fraud'))?.variants[1]!.weight).toBe(100);
  });

  it('refuses an invalid key with the field error and keeps the previous route', async () => {
    await expect(
      writer.setRoute('fraud', { variants: [{ name: 'v1', endpoints: [], weight: 90 }] }),
    ).rejects.toBeInstanceOf(RouteValidationError);
    // A hand edit that bypasses the writer's validation.
    const bad = { variants: [{ name: 'v1', endpoints: [stubs[0]!.url], weight: 90 }] };
    const patch = await cluster.api(
      'PATCH',
      `/api/v1/namespaces/${NS}/configmaps/runway-routes`,
      JSON.stringify({ data: { fraud: JSON.stringify(bad), 'bad key!': '{}' } }),
      { 'content-type': 'application/merge-patch+json' },
    );
    // ConfigMap keys are validated by the API server itself: a bad key is refused there.
    expect(patch.status).toBe(422);
    const ok = await cluster.api(
      'PATCH',
      `/api/v1/namespaces/${NS}/configmaps/runway-routes`,
      JSON.stringify({ data: { fraud: JSON.stringify(bad) } }),
      { 'content-type': 'application/merge-patch+json' },
    );
    expect(ok.status).toBe(200);
    await eventually(
      'refusal logged',
      async () =>
        /route in ConfigMap refused.*model=fraud.*variants: expected weights summing to 100, got 90/.test(
          router.stderr(),
        )
          ? true
          : undefined,
      5_000,
    );
    expect((await getRoute(router.url, 'fraud'))?.variants.map((v) => v.weight)).toEqual([0, 100]);
    expect(await variantOf()).toBe('v2');

    // Fixing the key applies again; deleting it removes the model's route.
    await writer.setRoute('fraud', route(100));
    await eventually(
      'fixed',
      async () => ((await getRoute(router.url, 'fraud'))?.variants[0]!.weight === 100 ? true : undefined),
      5_000,
    );
    await writer.deleteRoute('fraud');
    await eventually(
      'deleted',
      async () => ((await getRoute(router.url, 'fraud')) === undefined ? true : undefined),
      5_000,
    );
    expect(await writer.getRoute('fraud')).toBeUndefined();
    expect(await writer.getRoute('churn')).toBeDefined();
  });

  it('gateway-api: installs the Gateway API CRDs and writes weighted backendRefs with a RequestMirror', async () => {
    const gw = new GatewayApiTrafficRouter({
      namespace: 'runway-system',
      parentRefs: [{ name: 'inference', namespace: 'gateways' }],
      connection: { kubeconfig: cluster.kubeconfig },
    });
    // What the worker checks at start: without the CRDs it refuses to run, saying what to install.
    await expect(gw.verify()).rejects.toThrow(
      /does not serve gateway\.networking\.k8s\.io\/v1 HTTPRoute; install the Gateway API CRDs/,
    );
    await installGatewayCrds(cluster, bins!);
    await eventually('HTTPRoute served', async () => (await gw.verify(), true), 20_000);
    const svc = (n: string): string => `http://fraud-v${n}-production.runway-models.svc.cluster.local:80`;
    const r: Route = {
      variants: [
        { name: 'v1', endpoints: [svc('1')], weight: 95 },
        { name: 'v2', endpoints: [svc('2')], weight: 5 },
        { name: 'v3', endpoints: [svc('3')], weight: 0 },
      ],
      mirror: { variant: 'v3', percent: 10 },
    };
    // Retried: the API server serves a new CRD's endpoint a moment after it is Established.
    await eventually('HTTPRoute applied', async () => (await gw.setRoute('fraud', r), true), 20_000);
    const stored = await cluster.api(
      'GET',
      '/apis/gateway.networking.k8s.io/v1/namespaces/runway-system/httproutes/fraud',
    );
    expect(stored.status).toBe(200);
    const rule = stored.body.spec.rules[0];
    expect(rule.matches).toEqual([{ path: { type: 'PathPrefix', value: '/v2/models/fraud' } }]);
    expect(
      rule.backendRefs.map((b: { name: string; weight: number; namespace: string; port: number }) => [
        b.name,
        b.namespace,
        b.port,
        b.weight,
      ]),
    ).toEqual([
      ['fraud-v1-production', 'runway-models', 80, 95],
      ['fraud-v2-production', 'runway-models', 80, 5],
      ['fraud-v3-production', 'runway-models', 80, 0],
    ]);
    expect(rule.filters).toHaveLength(1);
    expect(rule.filters[0]).toMatchObject({
      type: 'RequestMirror',
      requestMirror: {
        backendRef: { kind: 'Service', name: 'fraud-v3-production', namespace: 'runway-models', port: 80 },
        percent: 10,
      },
    });
    expect(await gw.getRoute('fraud')).toEqual(r);

    // A fractional mirror share goes out as a fraction; the CRD's validation accepts it.
    await gw.setRoute('fraud', { ...r, mirror: { variant: 'v3', percent: 2.5 } });
    const frac = await cluster.api(
      'GET',
      '/apis/gateway.networking.k8s.io/v1/namespaces/runway-system/httproutes/fraud',
    );
    expect(frac.body.spec.rules[0].filters[0].requestMirror.fraction).toEqual({
      numerator: 25000,
      denominator: 1000000,
    });
    expect(frac.body.spec.rules[0].filters[0].requestMirror.percent).toBeUndefined();

    // A blue-green preview: a header-matched rule before the weighted one, both accepted by the CRD.
    const preview: Route = {
      variants: [
        { name: 'v1', endpoints: [svc('1')], weight: 100 },
        { name: 'v2', endpoints: [svc('2')], weight: 0 },
      ],
      preview: { variant: 'v2', header: 'x-runway-preview', value: 'qa' },
    };
    await gw.setRoute('fraud', preview);
    const previewed = await cluster.api(
      'GET',
      '/apis/gateway.networking.k8s.io/v1/namespaces/runway-system/httproutes/fraud',
    );
    expect(previewed.body.spec.rules).toHaveLength(2);
    expect(previewed.body.spec.rules[0].matches[0].headers).toEqual([
      { type: 'Exact', name: 'x-runway-preview', value: 'qa' },
    ]);
    expect(previewed.body.spec.rules[0].backendRefs.map((b: { name: string }) => b.name)).toEqual([
      'fraud-v2-production',
    ]);
    expect(await gw.getRoute('fraud')).toEqual(preview);
    await gw.setRoute('fraud', { ...preview, preview: { variant: 'v2', header: 'x-runway-preview' } });
    const anyValue = await cluster.api(
      'GET',
      '/apis/gateway.networking.k8s.io/v1/namespaces/runway-system/httproutes/fraud',
    );
    expect(anyValue.body.spec.rules[0].matches[0].headers[0]).toMatchObject({ type: 'RegularExpression' });

    // What Gateway API cannot do is refused, naming the field (specs that need it are refused at
    // the promotion's start: test/unit/traffic-capabilities.test.ts).
    await expect(gw.setRoute('fraud', { ...r, sticky: { header: 'x-user' } })).rejects.toThrow(
      /route\.sticky: sticky assignment needs the runway router/,
    );
    await expect(
      gw.setRoute('fraud', { variants: [{ name: 'v1', endpoints: ['http://10.0.0.7:8000'], weight: 100 }] }),
    ).rejects.toThrow(/variants\[0\]\.endpoints: expected an in-cluster Service URL/);

    await gw.deleteRoute('fraud');
    expect(
      (
        await cluster.api(
          'GET',
          '/apis/gateway.networking.k8s.io/v1/namespaces/runway-system/httproutes/fraud',
        )
      ).status,
    ).toBe(404);
    expect(await gw.getRoute('fraud')).toBeUndefined();
  });
});
