/**
 * Full promotions with the kubernetes FleetDriver against a real API server (etcd, kube-apiserver,
 * controller-manager, scheduler, kwok nodes). kwok runs no containers, so a Deployment's traffic is
 * served by a local `runway serve` standing in for its pods (the driver's endpointsFor hook);
 * everything else — workflow, router, registry, metrics, traffic — is the real thing.
 *
 * scaleWithWeight is on: a watcher reads the route and the Deployments every 100 ms and the tests
 * check, at each step, each version's replicas against its traffic share, and that the model never
 * runs more than the spec's budget (serving.replicas + 1), except while a rollback restores the
 * baseline's full size before traffic moves back to it.
 *
 * The gateway-api promotion selects its router through the platform config's factory, on the
 * Gateway API CRDs from sigs.k8s.io/gateway-api. No Gateway data plane runs here, so it checks the
 * control plane (each step's HTTPRoute weights and RequestMirror filter, validated by the CRDs);
 * with no requests its analysis is inconclusive and proceeds by the spec (onInconclusive: proceed).
 * The istio promotion does the same with router.driver istio on Istio's CRDs (from istio.io/api):
 * each step's VirtualService split and mirror, over the DestinationRule's subsets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { KubernetesFleet, type KubernetesFleetOptions } from '../../serving/fleet/kubernetes';
import { replicasForWeight } from '../../serving/fleet/sizing';
import { createTrafficRouter } from '../../serving/traffic/factory';
import { parsePlatformConfig } from '../../workers/config';
import { approveUpdate, promotionWorkflowId, rollbackSignal } from '../../workflows/api';
import {
  createNamespace,
  installGatewayCrds,
  installIstioCrds,
  localStandIns,
  requireK8s,
  startTestCluster,
  type KubeJson,
  type TestCluster,
} from '../helpers/k8s';
import { testSpec, usePromotionPlatform, waitForStatus, type PromotionPlatform } from '../helpers/promotion';
import { startServe } from '../helpers/server';
import type { TrafficHandle } from '../../demo/traffic';

const { bins, skipReason } = requireK8s();
const NS = 'runway-models';
const REPLICAS = 3;
let cluster: TestCluster | undefined;
let standIns: ReturnType<typeof localStandIns> | undefined;

beforeAll(async () => {
  if (!bins) return;
  cluster = await startTestCluster(bins, { nodes: [{ name: 'cpu-0' }, { name: 'cpu-1' }] });
  await createNamespace(cluster, NS);
  standIns = localStandIns(cluster, startServe);
  await installGatewayCrds(cluster, bins);
  await installIstioCrds(cluster, bins);
}, 180_000);

const fleetOptions = (): KubernetesFleetOptions => ({
  namespace: NS,
  connection: { kubeconfig: cluster!.kubeconfig },
  image: 'registry.example/runway:test',
  artifact: { kind: 'init-container', registryUrl: 'http://runway-registry.runway-system.svc/blobs' },
  pollMs: 250,
  scaleWithWeight: true,
});

// Without the binaries (requireK8s said why, loudly; CI fails instead) the suites below are skipped.
const platform = usePromotionPlatform({
  fleet: !bins
    ? undefined
    : () => new KubernetesFleet({ ...fleetOptions(), endpointsFor: (d) => standIns!.endpointsFor(d) }),
});

// An HTTPRoute routes to Services: production variants are addressed by theirs. Staging's
// integration test needs a server that answers, so staging gets a local stand-in.
const gateway = usePromotionPlatform({
  fleet: !bins
    ? undefined
    : () =>
        new KubernetesFleet({
          ...fleetOptions(),
          endpointsFor: (d) =>
            d.name.endsWith('-staging')
              ? standIns!.endpointsFor(d)
              : [`http://${d.name}.${d.namespace}.svc.cluster.local:80`],
        }),
  router: !bins
    ? undefined
    : () => {
        const config = parsePlatformConfig({
          router: {
            driver: 'gateway-api',
            gatewayApi: { namespace: NS, parentRefs: [{ name: 'inference', namespace: 'gateways' }] },
          },
          metrics: { source: 'scrape', url: 'http://127.0.0.1:9' },
        });
        return createTrafficRouter(config.router, undefined, { kubeconfig: cluster!.kubeconfig });
      },
});

// The same, with router.driver istio: VirtualService + DestinationRule per model.
const mesh = usePromotionPlatform({
  fleet: !bins
    ? undefined
    : () =>
        new KubernetesFleet({
          ...fleetOptions(),
          endpointsFor: (d) =>
            d.name.endsWith('-staging')
              ? standIns!.endpointsFor(d)
              : [`http://${d.name}.${d.namespace}.svc.cluster.local:80`],
        }),
  router: !bins
    ? undefined
    : () => {
        const config = parsePlatformConfig({
          router: { driver: 'istio', istio: { namespace: NS } },
          metrics: { source: 'scrape', url: 'http://127.0.0.1:9' },
        });
        return createTrafficRouter(config.router, undefined, { kubeconfig: cluster!.kubeconfig });
      },
});

afterAll(async () => {
  await standIns?.stopAll();
  await cluster?.stop();
}, 120_000);

interface Sample {
  at: number;
  /** Route weight per variant (`v1`, `v2`), as the router or the HTTPRoute holds it. */
  route: Record<string, number>;
  /** spec.replicas per version's production Deployment (`v1`, `v2`). */
  replicas: Record<string, number>;
  /** `v2:100` when the route mirrors. */
  mirror?: string;
}

/** Reads the route, then the Deployments, every 100 ms until stopped. */
function watch(
  model: string,
  readRoute: () => Promise<{ route: Record<string, number>; mirror?: string } | undefined>,
): { samples: Sample[]; stop(): Promise<void> } {
  const samples: Sample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const r = await readRoute();
        const list = await cluster!.api(
          'GET',
          `/apis/apps/v1/namespaces/${NS}/deployments?labelSelector=runway.dev/model%3D${model},runway.dev/env%3Dproduction`,
        );
        const replicas: Record<string, number> = {};
        for (const d of list.body.items as KubeJson[]) {
          replicas[`v${d.metadata.labels['runway.dev/version']}`] = d.spec.replicas;
        }
        if (r) samples.push({ at: Date.now(), route: r.route, mirror: r.mirror, replicas });
      } catch {
        // the API server is busy: the next read counts
      }
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  return {
    samples,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

/** Each canary step ran both versions at their shares, and the budget held throughout. */
function expectSizedByWeight(samples: Sample[]): void {
  const budget = REPLICAS + 1;
  const seen = samples
    .map((s) => `route ${JSON.stringify(s.route)} replicas ${JSON.stringify(s.replicas)}`)
    .filter((s, i, all) => i === 0 || s !== all[i - 1]);
  console.info(
    `replicas by step (budget ${budget}, most seen ${Math.max(...samples.map((s) => sum(s.replicas)))}):\n  ${seen.join('\n  ')}`,
  );
  const over = samples.filter((s) => sum(s.replicas) > budget);
  expect(over, `samples over the budget of ${budget}: ${JSON.stringify(over.slice(0, 3))}`).toEqual([]);
  for (const w of [10, 25, 50]) {
    const want = { v1: replicasForWeight(REPLICAS, 100 - w), v2: replicasForWeight(REPLICAS, w) };
    const atStep = samples.filter((s) => s.route.v2 === w);
    expect(atStep.length, `no sample with v2 at ${w}%`).toBeGreaterThan(0);
    expect(
      atStep.some((s) => s.replicas.v1 === want.v1 && s.replicas.v2 === want.v2),
      `at ${w}% expected ${JSON.stringify(want)}, saw ${JSON.stringify([...new Set(atStep.map((s) => JSON.stringify(s.replicas)))])}`,
    ).toBe(true);
  }
  const graduated = samples.filter((s) => s.route.v2 === 100 && s.route.v1 === undefined);
  expect(graduated.some((s) => s.replicas.v2 === REPLICAS)).toBe(true);
  // The shadow (0% weight) never ran more than the budget left it beside the full baseline.
  const shadow = samples.filter((s) => s.mirror && s.route.v2 === 0);
  expect(shadow.length).toBeGreaterThan(0);
  expect(shadow.every((s) => (s.replicas.v2 ?? 0) <= 1)).toBe(true);
}

async function approve(p: PromotionPlatform, model: string): Promise<void> {
  await waitForStatus(p, model, (s) => s.stage === 'approve', 120_000);
  await p.client.workflow
    .getHandle(promotionWorkflowId(model))
    .executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
}

/** Serves v1 at full size with traffic, watches the model, starts v2's promotion and approves it. */
async function begin(model: string): Promise<{ traffic: TrafficHandle; watcher: ReturnType<typeof watch> }> {
  const spec = testSpec(model, { serving: { replicas: REPLICAS } });
  await platform.bootstrap(model, spec, { replicas: REPLICAS });
  const traffic = platform.traffic(model);
  const watcher = watch(model, async () => {
    const r = await platform.deps.router.getRoute(model);
    if (!r) return undefined;
    return {
      route: Object.fromEntries(r.variants.map((v) => [v.name, v.weight])),
      mirror: r.mirror ? `${r.mirror.variant}:${r.mirror.percent}` : undefined,
    };
  });
  await platform.start(spec, '2');
  await approve(platform, model);
  return { traffic, watcher };
}

/** Clients saw only 200s: the router answered every request through every change. */
function expectNoClientErrors(traffic: TrafficHandle): void {
  const stats = traffic.stats();
  expect(
    Object.keys(stats.byStatus).filter((s) => s !== '200'),
    JSON.stringify(stats.byStatus),
  ).toEqual([]);
}

describe.skipIf(!!skipReason)('promotion on Kubernetes', () => {
  it(
    'promotes v2 with runway-managed Deployments sized by traffic weight, then removes the old version’s objects',
    { timeout: 300_000 },
    async () => {
      const c = cluster!;
      const model = 'fd-k8s';
      const { traffic, watcher } = await begin(model);
      await waitForStatus(platform, model, (s) => s.stage === 'canary', 120_000);
      // during the canary both versions run as runway-managed Deployments with Service and PDB
      const deployments = await c.api(
        'GET',
        `/apis/apps/v1/namespaces/${NS}/deployments?labelSelector=runway.dev/model%3D${model}`,
      );
      const names = (deployments.body.items as { metadata: { name: string } }[])
        .map((d) => d.metadata.name)
        .sort();
      expect(names).toEqual([`${model}-v1-production`, `${model}-v2-production`]);
      const candidate = await c.api(
        'GET',
        `/apis/apps/v1/namespaces/${NS}/deployments/${model}-v2-production`,
      );
      expect(candidate.body.metadata.labels).toMatchObject({
        'app.kubernetes.io/managed-by': 'runway',
        'runway.dev/model': model,
        'runway.dev/version': '2',
        'runway.dev/env': 'production',
      });
      expect(
        (candidate.body.metadata.managedFields as { manager: string }[]).map((m) => m.manager),
      ).toContain('runway');
      expect((await c.api('GET', `/api/v1/namespaces/${NS}/services/${model}-v2-production`)).status).toBe(
        200,
      );
      expect(
        (await c.api('GET', `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/${model}-v2-production`))
          .status,
      ).toBe(200);

      const result = await platform.result(model);
      await traffic.stop();
      await watcher.stop();
      expect(result.outcome, result.reason).toBe('promoted');
      expect(result.trafficChanges.map((t) => t.weights.v2)).toEqual([0, 10, 25, 50, 100]);
      expectSizedByWeight(watcher.samples);
      // after scaleDownDelay the old version's objects are gone; the candidate's remain, at full size
      const after = await c.api(
        'GET',
        `/apis/apps/v1/namespaces/${NS}/deployments?labelSelector=runway.dev/model%3D${model}`,
      );
      expect((after.body.items as KubeJson[]).map((d) => [d.metadata.name, d.spec.replicas])).toEqual([
        [`${model}-v2-production`, REPLICAS],
      ]);
      expect((await c.api('GET', `/api/v1/namespaces/${NS}/services/${model}-v1-production`)).status).toBe(
        404,
      );
      expectNoClientErrors(traffic);
    },
  );

  it(
    'a rollback at 50% restores the baseline to full size before traffic moves back to it',
    { timeout: 300_000 },
    async () => {
      const model = 'fd-k8s-rb';
      const { traffic, watcher } = await begin(model);
      await waitForStatus(platform, model, (s) => s.weights.v2 === 50, 180_000);
      const signalledAt = Date.now();
      await platform.client.workflow
        .getHandle(promotionWorkflowId(model))
        .signal(rollbackSignal, { by: 'carol', reason: 'test' });
      const result = await platform.result(model);
      await traffic.stop();
      await watcher.stop();
      expect(result.outcome, result.reason).toBe('rolled_back');
      const after = watcher.samples.filter((s) => s.at > signalledAt);
      console.info(
        `rollback: most replicas at once ${Math.max(...after.map((s) => sum(s.replicas)))} (budget ${REPLICAS + 1}, waived for a rollback)`,
      );
      const back = after.filter((s) => s.route.v1 === 100);
      expect(back.length).toBeGreaterThan(0);
      // The route is read before the Deployments: whenever v1 had all the traffic back, it was full.
      expect(back.map((s) => s.replicas.v1)).toEqual(back.map(() => REPLICAS));
      expectNoClientErrors(traffic);
    },
  );
});

describe.skipIf(!!skipReason)('promotion on Kubernetes with router.driver gateway-api', () => {
  it(
    'writes each step’s HTTPRoute weights and RequestMirror filter, sized by weight',
    { timeout: 300_000 },
    async () => {
      const model = 'fd-gw';
      await gateway.deps.router.verify?.();
      const spec = testSpec(model, { serving: { replicas: REPLICAS } });
      const httpRoute = async () => {
        const r = await cluster!.api(
          'GET',
          `/apis/gateway.networking.k8s.io/v1/namespaces/${NS}/httproutes/${model}`,
        );
        if (r.status !== 200) return undefined;
        const rule = r.body.spec.rules[0];
        const variant = (name: string): string => name.replace(`${model}-`, '').replace('-production', '');
        const mirror = (rule.filters ?? []).find((f: KubeJson) => f.type === 'RequestMirror')?.requestMirror;
        return {
          route: Object.fromEntries(
            (rule.backendRefs as KubeJson[]).map((b) => [variant(b.name), b.weight as number]),
          ),
          mirror: mirror ? `${variant(mirror.backendRef.name)}:${mirror.percent}` : undefined,
        };
      };
      await gateway.bootstrap(model, spec, { replicas: REPLICAS });
      const watcher = watch(model, httpRoute);
      await gateway.start(spec, '2');
      await approve(gateway, model);
      const result = await gateway.result(model);
      await watcher.stop();
      expect(result.outcome, result.reason).toBe('promoted');
      // The HTTPRoute went through every step, in order, each validated by the real CRD.
      const states = watcher.samples
        .map(
          (s) =>
            `${Object.entries(s.route)
              .map(([v, w]) => `${v}=${w}`)
              .join(',')}${s.mirror ? ` mirror ${s.mirror}` : ''}`,
        )
        .filter((s, i, all) => i === 0 || s !== all[i - 1]);
      expect(states).toEqual([
        'v1=100',
        'v1=100,v2=0 mirror v2:100',
        'v1=90,v2=10',
        'v1=75,v2=25',
        'v1=50,v2=50',
        'v2=100',
      ]);
      expectSizedByWeight(watcher.samples);
    },
  );

  it(
    'prepareCandidate, the first activity, refuses an A/B spec on this router before anything deploys',
    { timeout: 120_000 },
    async () => {
      // The activity as the worker runs it, on the factory-built router. (The workflow hands it the
      // spec once workflows/ passes `spec` to prepareCandidate; see activities/contracts.ts.)
      const model = 'fd-gw-ab';
      const spec = testSpec(model, { serving: { replicas: REPLICAS }, experiment: { kind: 'ab' } });
      await gateway.bootstrap(model, spec, { serve: false });
      const acts = createActivities(gateway.deps);
      await expect(acts.prepareCandidate({ model, version: '2', spec })).rejects.toThrow(
        /experiment\.kind: ab needs sticky assignment by header, which router\.driver "gateway-api" does not provide/,
      );
      const list = await cluster!.api(
        'GET',
        `/apis/apps/v1/namespaces/${NS}/deployments?labelSelector=runway.dev/model%3D${model}`,
      );
      expect(list.body.items).toEqual([]);
    },
  );
});

describe.skipIf(!!skipReason)('promotion on Kubernetes with router.driver istio', () => {
  it(
    'writes each step’s VirtualService weights and mirror over DestinationRule subsets, sized by weight',
    { timeout: 300_000 },
    async () => {
      const model = 'fd-mesh';
      await mesh.deps.router.verify?.();
      const spec = testSpec(model, { serving: { replicas: REPLICAS } });
      const virtualService = async () => {
        const r = await cluster!.api(
          'GET',
          `/apis/networking.istio.io/v1/namespaces/${NS}/virtualservices/${model}`,
        );
        if (r.status !== 200) return undefined;
        const split = (r.body.spec.http as KubeJson[]).at(-1);
        const route: Record<string, number> = Object.fromEntries(
          (split.route as KubeJson[]).map((d) => [d.destination.subset, d.weight as number]),
        );
        // The shadow takes no weighted traffic, so it is in the split only as the mirror: weight 0.
        if (split.mirror) route[split.mirror.subset] ??= 0;
        return {
          route,
          mirror: split.mirror ? `${split.mirror.subset}:${split.mirrorPercentage.value}` : undefined,
        };
      };
      await mesh.bootstrap(model, spec, { replicas: REPLICAS });
      const watcher = watch(model, virtualService);
      await mesh.start(spec, '2');
      await approve(mesh, model);
      const result = await mesh.result(model);
      await watcher.stop();
      expect(result.outcome, result.reason).toBe('promoted');
      const states = watcher.samples
        .map(
          (s) =>
            `${Object.entries(s.route)
              .map(([v, w]) => `${v}=${w}`)
              .join(',')}${s.mirror ? ` mirror ${s.mirror}` : ''}`,
        )
        .filter((s, i, all) => i === 0 || s !== all[i - 1]);
      expect(states).toEqual([
        'v1=100',
        'v1=100,v2=0 mirror v2:100',
        'v1=90,v2=10',
        'v1=75,v2=25',
        'v1=50,v2=50',
        'v2=100',
      ]);
      expectSizedByWeight(watcher.samples);
      const dr = await cluster!.api(
        'GET',
        `/apis/networking.istio.io/v1/namespaces/${NS}/destinationrules/${model}`,
      );
      expect(dr.body.spec.subsets.map((x: KubeJson) => x.name)).toEqual(['v2']);
    },
  );
});
