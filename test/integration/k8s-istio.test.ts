/**
 * The `istio` TrafficRouter against a real kube-apiserver serving Istio's CRDs (from the istio.io/api
 * Go module, scripts/k8s-env.sh): chosen from the platform config through the factory, it refuses
 * to start without the CRDs, and each step of a promotion's route (shadow with a mirror, canary,
 * sticky A/B, graduation, rollback) lands as objects the API server validates against Istio's
 * schemas, read back here.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Route } from '../../serving/router/route';
import { createTrafficRouter } from '../../serving/traffic/factory';
import { IstioTrafficRouter, PIN_HEADER, stickyBuckets } from '../../serving/traffic/istio';
import { parsePlatformConfig } from '../../workers/config';
import {
  createNamespace,
  eventually,
  requireK8s,
  startTestCluster,
  type KubeJson,
  type TestCluster,
} from '../helpers/k8s';

const { bins, skipReason } = requireK8s();
const NS = 'models';
const svc = (v: string): string => `http://fraud-v${v}-production.${NS}.svc.cluster.local`;
const HOST = `fraud.${NS}.svc.cluster.local`;

describe('stickyBuckets', () => {
  it('shares 16 buckets by weight, largest remainder first', () => {
    expect(stickyBuckets([50, 50])).toEqual([8, 8]);
    expect(stickyBuckets([90, 10])).toEqual([14, 2]);
    expect(stickyBuckets([5, 95])).toEqual([1, 15]);
    expect(stickyBuckets([34, 33, 33])).toEqual([6, 5, 5]);
  });
});

describe.skipIf(!!skipReason)('istio TrafficRouter on a real API server', () => {
  let cluster: TestCluster;
  let router: IstioTrafficRouter;

  beforeAll(async () => {
    cluster = await startTestCluster(bins!, { apiOnly: true });
    await createNamespace(cluster, NS, false);
    const config = parsePlatformConfig({
      router: { driver: 'istio', istio: { namespace: NS, hosts: ['models.example.com'] } },
    });
    const made = createTrafficRouter(config.router, undefined, { kubeconfig: cluster.kubeconfig });
    expect(made).toBeInstanceOf(IstioTrafficRouter);
    router = made as IstioTrafficRouter;
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  const spec = async (kind: 'VirtualService' | 'DestinationRule' | 'Service'): Promise<KubeJson> =>
    ((await router.read(kind, 'fraud')) as KubeJson)?.spec;

  it('names the missing CRDs at start, then starts once they are served', async () => {
    await expect(router.verify()).rejects.toThrow(
      /does not serve networking\.istio\.io\/v1 VirtualService; install Istio/,
    );
    await cluster.applyFile(path.join(path.dirname(bins!.gatewayCrds), 'istio-v1.28.0.yaml'));
    await eventually('Istio CRDs established', async () => {
      for (const crd of ['virtualservices', 'destinationrules']) {
        const r = await cluster.api(
          'GET',
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd}.networking.istio.io`,
        );
        if (
          !r.body.status?.conditions?.some((c: KubeJson) => c.type === 'Established' && c.status === 'True')
        )
          return undefined;
      }
      return true;
    });
    await eventually('router.verify() passes', async () =>
      (await router.verify().then(
        () => true,
        () => false,
      ))
        ? true
        : undefined,
    );
  });

  it('shadow: all traffic on the baseline, 10% mirrored to the candidate subset', async () => {
    const shadow: Route = {
      variants: [
        { name: 'v1', endpoints: [svc('1')], weight: 100 },
        { name: 'v2', endpoints: [svc('2')], weight: 0 },
      ],
      mirror: { variant: 'v2', percent: 10 },
    };
    await router.setRoute('fraud', shadow);
    const dr = await spec('DestinationRule');
    expect(dr.host).toBe(HOST);
    expect(dr.subsets).toEqual([
      { name: 'v1', labels: { 'app.kubernetes.io/instance': 'fraud-v1-production' } },
      { name: 'v2', labels: { 'app.kubernetes.io/instance': 'fraud-v2-production' } },
    ]);
    const vs = await spec('VirtualService');
    expect(vs.hosts).toEqual([HOST, 'models.example.com']);
    const split = vs.http.at(-1);
    expect(split.route).toEqual([{ destination: { host: HOST, subset: 'v1' }, weight: 100 }]);
    expect(split.mirror).toEqual({ host: HOST, subset: 'v2' });
    expect(split.mirrorPercentage).toEqual({ value: 10 });
    // Any variant can be pinned by header, the shadow included (to debug it).
    expect(vs.http[1]).toEqual({
      name: 'pin-v2',
      match: [{ headers: { [PIN_HEADER]: { exact: 'v2' } } }],
      route: [{ destination: { host: HOST, subset: 'v2' } }],
    });
    expect((await spec('Service')).selector).toEqual({
      'runway.dev/model': 'fraud',
      'runway.dev/env': 'production',
      'app.kubernetes.io/managed-by': 'runway',
    });
    expect(await router.getRoute('fraud')).toEqual(shadow);
  });

  it('canary 25%: weighted subsets, mirror gone', async () => {
    await router.setRoute('fraud', {
      variants: [
        { name: 'v1', endpoints: [svc('1')], weight: 75 },
        { name: 'v2', endpoints: [svc('2')], weight: 25 },
      ],
    });
    const split = (await spec('VirtualService')).http.at(-1);
    expect(split.route).toEqual([
      { destination: { host: HOST, subset: 'v1' }, weight: 75 },
      { destination: { host: HOST, subset: 'v2' }, weight: 25 },
    ]);
    expect(split.mirror).toBeUndefined();
    expect(split.mirrorPercentage).toBeUndefined();
  });

  it('blue-green preview: requests with the header go to the candidate subset, the rest to the split', async () => {
    const preview: Route = {
      variants: [
        { name: 'v1', endpoints: [svc('1')], weight: 100 },
        { name: 'v2', endpoints: [svc('2')], weight: 0 },
      ],
      preview: { variant: 'v2', header: 'x-runway-preview', value: 'qa' },
    };
    await router.setRoute('fraud', preview);
    const vs = await spec('VirtualService');
    const rule = vs.http.find((h: { name: string }) => h.name === 'preview');
    expect(rule).toEqual({
      name: 'preview',
      match: [{ headers: { 'x-runway-preview': { exact: 'qa' } } }],
      route: [{ destination: { host: HOST, subset: 'v2' } }],
    });
    expect(vs.http.at(-1).route).toEqual([{ destination: { host: HOST, subset: 'v1' }, weight: 100 }]);
    expect(await router.getRoute('fraud')).toEqual(preview);
    await router.setRoute('fraud', { ...preview, preview: { variant: 'v2', header: 'x-runway-preview' } });
    const any = (await spec('VirtualService')).http.find((h: { name: string }) => h.name === 'preview');
    expect(any.match).toEqual([{ headers: { 'x-runway-preview': { regex: '.+' } } }]);
  });

  it('sticky A/B 50/50: each unit header ending picks one variant; no header gets the split', async () => {
    await router.setRoute('fraud', {
      variants: [
        { name: 'v1', endpoints: [svc('1')], weight: 50 },
        { name: 'v2', endpoints: [svc('2')], weight: 50 },
      ],
      sticky: { header: 'x-user' },
    });
    const http = (await spec('VirtualService')).http as KubeJson[];
    const sticky = http.filter((h) => String(h.name).startsWith('sticky-'));
    expect(sticky.map((h) => h.match[0].headers['x-user'].regex)).toEqual([
      '.*[01234567]',
      '.*[89abcdefABCDEF]',
    ]);
    // Every hex ending goes to exactly one variant, half each.
    const owner = (unit: string): string[] =>
      sticky
        .filter((h) => new RegExp(`^${h.match[0].headers['x-user'].regex}$`).test(unit))
        .map((h) => h.name);
    const counts: Record<string, number> = {};
    for (const c of '0123456789abcdef') {
      const o = owner(`user-${c}`);
      expect(o).toHaveLength(1);
      counts[o[0]!] = (counts[o[0]!] ?? 0) + 1;
    }
    expect(counts).toEqual({ 'sticky-v1': 8, 'sticky-v2': 8 });
    expect(http.at(-1).name).toBe('split');
  });

  it('graduation and rollback land; deleteRoute removes what runway wrote', async () => {
    await router.setRoute('fraud', { variants: [{ name: 'v2', endpoints: [svc('2')], weight: 100 }] });
    expect((await spec('VirtualService')).http.at(-1).route).toEqual([
      { destination: { host: HOST, subset: 'v2' }, weight: 100 },
    ]);
    expect((await spec('DestinationRule')).subsets.map((s: KubeJson) => s.name)).toEqual(['v2']);
    await router.setRoute('fraud', { variants: [{ name: 'v1', endpoints: [svc('1')], weight: 100 }] });
    expect((await router.getRoute('fraud'))?.variants[0]?.name).toBe('v1');
    await router.deleteRoute('fraud');
    for (const kind of ['VirtualService', 'DestinationRule', 'Service'] as const)
      expect(await router.read(kind, 'fraud')).toBeUndefined();
    await router.deleteRoute('fraud'); // idempotent
  });

  it('refuses a variant outside its namespace, naming the field', async () => {
    await expect(
      router.setRoute('fraud', {
        variants: [
          { name: 'v1', endpoints: ['http://fraud-v1-production.other.svc.cluster.local'], weight: 100 },
        ],
      }),
    ).rejects.toThrow(/variants\[0\]\.endpoints: the istio router's subsets live in models; v1 is in other/);
  });
});
