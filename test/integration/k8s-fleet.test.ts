/**
 * The kubernetes FleetDriver against a real kube-apiserver (with controller-manager, scheduler and
 * kwok fake nodes: see test/helpers/k8s.ts): apply, idempotent re-apply, scale, rollout failures
 * explained in the pods' words, teardown that removes runway's objects and nothing else, and the
 * deploy/ RBAC manifests accepted by the API server and sufficient (and no more) for the driver.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../common/paths';
import type { KubernetesDeploymentRequest } from '../../serving/fleet/k8s-manifests';
import { DeployRefusedError } from '../../serving/fleet/driver';
import { KubernetesFleet, RolloutError, type KubernetesFleetOptions } from '../../serving/fleet/kubernetes';
import {
  createNamespace,
  eventually,
  localStandIns,
  requireK8s,
  startTestCluster,
  type KubeJson,
  type TestCluster,
} from '../helpers/k8s';
import { startServe } from '../helpers/server';

const { bins, skipReason } = requireK8s();
const NS = 'models';
const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

const request = (over: Partial<KubernetesDeploymentRequest> = {}): KubernetesDeploymentRequest => ({
  model: 'fraud',
  version: '7',
  environment: 'production',
  artifactPath: '/var/lib/runway/registry/blobs/sha256/ab',
  sha256: 'ab'.repeat(32),
  replicas: 2,
  serving: { maxBatchSize: 16, instances: 1 },
  resources: { cpu: '500m', memory: '512Mi', gpu: 0 },
  ...over,
});

describe.skipIf(!!skipReason)('kubernetes FleetDriver on a real API server', () => {
  let cluster: TestCluster;
  let options: KubernetesFleetOptions;
  let fleet: KubernetesFleet;

  beforeAll(async () => {
    cluster = await startTestCluster(bins!, {
      nodes: [
        { name: 'cpu-0' },
        { name: 'cpu-1' },
        {
          name: 'gpu-0',
          labels: { 'nvidia.com/gpu.product': 'NVIDIA-L4' },
          capacity: { 'nvidia.com/gpu': '1' },
        },
      ],
    });
    console.log(`k8s test cluster up in ${cluster.startupMs} ms`);
    await createNamespace(cluster, NS);
    options = {
      namespace: NS,
      connection: { kubeconfig: cluster.kubeconfig },
      image: 'registry.example/runway:test',
      artifact: { kind: 'init-container', registryUrl: 'http://registry.runway-system.svc/blobs' },
      accelerator: { value: 'NVIDIA-L4' },
      pollMs: 250,
      logger: quiet,
    };
    fleet = new KubernetesFleet(options);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  const get = async (p: string): Promise<KubeJson> => {
    const r = await cluster.api('GET', p);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  };
  const pods = async (instance: string): Promise<KubeJson[]> =>
    (await get(`/api/v1/namespaces/${NS}/pods?labelSelector=app.kubernetes.io/instance%3D${instance}`)).items;

  it('applies Deployment, Service and PDB with runway labels and waits until the replicas are available', async () => {
    const progress: string[] = [];
    const d = await fleet.deploy(request(), { onProgress: (m) => progress.push(m) });
    expect(d).toEqual({
      name: 'fraud-v7-production',
      model: 'fraud',
      version: '7',
      environment: 'production',
      replicas: 2,
      fullReplicas: 2,
      endpoints: [`http://fraud-v7-production.${NS}.svc.cluster.local:80`],
      ready: true,
    });
    expect(progress.length).toBeGreaterThan(0);

    const dep = await get(`/apis/apps/v1/namespaces/${NS}/deployments/fraud-v7-production`);
    expect(dep.metadata.labels).toMatchObject({
      'app.kubernetes.io/name': 'fraud',
      'app.kubernetes.io/instance': 'fraud-v7-production',
      'app.kubernetes.io/version': '7',
      'app.kubernetes.io/managed-by': 'runway',
      'runway.dev/model': 'fraud',
      'runway.dev/version': '7',
      'runway.dev/env': 'production',
    });
    // Server-side apply by field manager `runway`.
    expect(
      dep.metadata.managedFields.some(
        (f: { manager: string; operation: string }) => f.manager === 'runway' && f.operation === 'Apply',
      ),
    ).toBe(true);
    expect(dep.status.availableReplicas).toBe(2);
    const pod = dep.spec.template.spec;
    const server = pod.containers[0];
    expect(server.args).toEqual(
      expect.arrayContaining([
        'serve',
        '--model',
        '/models/model.onnx',
        '--sha256',
        'ab'.repeat(32),
        '--max-batch-size',
        '16',
      ]),
    );
    expect(server.resources).toEqual({
      requests: { cpu: '500m', memory: '512Mi' },
      limits: { cpu: '500m', memory: '512Mi' },
    });
    expect(server.readinessProbe.httpGet.path).toBe('/v2/health/ready');
    expect(server.livenessProbe.httpGet.path).toBe('/v2/health/live');
    expect(server.startupProbe.httpGet.path).toBe('/v2/health/ready');
    expect(server.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
    });
    expect(pod.terminationGracePeriodSeconds).toBe(60);
    expect(pod.initContainers[0].env).toEqual([
      { name: 'URL', value: `http://registry.runway-system.svc/blobs/${'ab'.repeat(32)}` },
      { name: 'SHA256', value: 'ab'.repeat(32) },
    ]);
    expect(
      pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm
        .topologyKey,
    ).toBe('kubernetes.io/hostname');

    const svc = await get(`/api/v1/namespaces/${NS}/services/fraud-v7-production`);
    expect(svc.spec.selector).toEqual({
      'app.kubernetes.io/instance': 'fraud-v7-production',
      'app.kubernetes.io/managed-by': 'runway',
    });
    const pdb = await get(`/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/fraud-v7-production`);
    expect(pdb.spec.maxUnavailable).toBe(1);
    // Real pods, scheduled by kube-scheduler onto the fake nodes and made Ready by kwok.
    const ps = await pods('fraud-v7-production');
    expect(ps).toHaveLength(2);
    for (const p of ps) {
      expect(p.spec.nodeName).toMatch(/^cpu-|^gpu-/);
      expect(p.status.conditions.find((c: { type: string }) => c.type === 'Ready').status).toBe('True');
    }
  });

  it('re-applying the same request changes nothing (idempotent server-side apply)', async () => {
    const paths = [
      `/apis/apps/v1/namespaces/${NS}/deployments/fraud-v7-production`,
      `/api/v1/namespaces/${NS}/services/fraud-v7-production`,
      `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/fraud-v7-production`,
    ];
    const before = await Promise.all(paths.map(get));
    const d = await fleet.deploy(request());
    expect(d.ready).toBe(true);
    const after = await Promise.all(paths.map(get));
    for (let i = 0; i < paths.length; i++) {
      expect(after[i].metadata.resourceVersion, paths[i]).toBe(before[i].metadata.resourceVersion);
      expect(after[i].metadata.generation, paths[i]).toBe(before[i].metadata.generation);
    }
  });

  it('scales, and lists and gets only what runway manages', async () => {
    expect((await fleet.scale('fraud-v7-production', 3)).replicas).toBe(3);
    expect(await pods('fraud-v7-production')).toHaveLength(3);
    expect((await fleet.scale('fraud-v7-production', 1)).replicas).toBe(1);
    await eventually('old pods gone', async () =>
      (await pods('fraud-v7-production')).length === 1 ? true : undefined,
    );

    // A Deployment that looks like ours but is not labelled managed-by runway.
    const foreign = await cluster.api('POST', `/apis/apps/v1/namespaces/${NS}/deployments`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'fraud-v9-production', labels: { 'runway.dev/model': 'fraud' } },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'x' } },
        template: { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'c', image: 'x' }] } },
      },
    });
    expect(foreign.status).toBe(201);
    expect(await fleet.get('fraud-v9-production')).toBeUndefined();
    expect(await fleet.get('nope-v1-staging')).toBeUndefined();
    expect((await fleet.list({ model: 'fraud' })).map((d) => d.name)).toEqual(['fraud-v7-production']);
    expect(await fleet.list({ environment: 'staging' })).toEqual([]);
    await expect(fleet.scale('fraud-v9-production', 2)).rejects.toThrow(
      /no runway deployment fraud-v9-production/,
    );
  });

  it('scaleWithWeight: candidate replicas follow the traffic weight', async () => {
    const weighted = new KubernetesFleet({ ...options, scaleWithWeight: true });
    // A version joining at 0% starts at one replica; its full size is kept on record.
    const joined = await weighted.deploy(request({ version: '8', replicas: 4, weight: 0 }));
    expect([joined.replicas, joined.fullReplicas]).toEqual([1, 4]);
    expect((await weighted.scaleToWeight('fraud-v8-production', 5)).replicas).toBe(1);
    expect((await weighted.scaleToWeight('fraud-v8-production', 50)).replicas).toBe(2);
    // Deploying again (a retried activity, a continued run) keeps the count traffic gave it.
    expect((await weighted.deploy(request({ version: '8', replicas: 4, weight: 0 }))).replicas).toBe(2);
    expect((await weighted.scaleToWeight('fraud-v8-production', 100, { atMost: 3 })).replicas).toBe(3);
    const full = await weighted.scaleToWeight('fraud-v8-production', 100);
    expect([full.replicas, full.fullReplicas]).toEqual([4, 4]);
    expect((await get(`/apis/apps/v1/namespaces/${NS}/deployments/fraud-v8-production`)).spec.replicas).toBe(
      4,
    );
    // Without the option the count stays where it is.
    expect((await fleet.scaleToWeight('fraud-v8-production', 5)).replicas).toBe(4);
    await weighted.teardown('fraud-v8-production');
  });

  it('places GPU replicas on the accelerator node, and explains an unschedulable rollout', async () => {
    const gpu = await fleet.deploy(
      request({ version: '10', replicas: 1, resources: { cpu: '1', memory: '1Gi', gpu: 1 } }),
    );
    expect(gpu.ready).toBe(true);
    const [p] = await pods('fraud-v10-production');
    expect(p.spec.nodeName).toBe('gpu-0');
    expect(p.spec.containers[0].resources.limits['nvidia.com/gpu']).toBe('1');
    expect(p.spec.containers[0].resources.requests['nvidia.com/gpu']).toBe('1');

    // Two GPUs per replica: no node has them. The error carries the scheduler's own words.
    const impatient = new KubernetesFleet({ ...options, rolloutTimeoutMs: 6_000 });
    const err = await impatient
      .deploy(request({ version: '11', replicas: 1, resources: { cpu: '1', memory: '1Gi', gpu: 2 } }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(RolloutError);
    expect((err as RolloutError).message).toMatch(
      /rollout of models\/fraud-v11-production failed: not available after 6 s/,
    );
    expect((err as RolloutError).reasons.join('\n')).toMatch(
      /unschedulable: 0\/3 nodes are available:.*Insufficient nvidia\.com\/gpu/,
    );
    await fleet.teardown('fraud-v10-production');
    await fleet.teardown('fraud-v11-production');
  });

  it('fails a rollout at once when the model server refuses its artifact (exit 3), not at the deadline', async () => {
    // kwok runs no containers: the pod stays unscheduled (no node has 8 GPUs) and the test writes
    // the status a kubelet would after `runway serve --sha256` refused the file twice.
    const patient = new KubernetesFleet({ ...options, rolloutTimeoutMs: 120_000 });
    const started = Date.now();
    const deploying = patient
      .deploy(request({ version: '12', replicas: 1, resources: { cpu: '1', memory: '1Gi', gpu: 8 } }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const [pod] = await eventually('the candidate pod', async () => {
      const ps = await pods('fraud-v12-production');
      return ps.length > 0 ? ps : undefined;
    });
    const container = pod.spec.containers[0].name as string;
    const patched = await cluster.api(
      'PATCH',
      `/api/v1/namespaces/${NS}/pods/${pod.metadata.name}/status`,
      {
        status: {
          containerStatuses: [
            {
              name: container,
              ready: false,
              restartCount: 2,
              image: options.image,
              imageID: '',
              state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 20s' } },
              lastState: { terminated: { exitCode: 3, reason: 'Error' } },
            },
          ],
        },
      },
      { 'content-type': 'application/merge-patch+json' },
    );
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    const err = await deploying;
    expect(err).toBeInstanceOf(DeployRefusedError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `rollout of models/fraud-v12-production cannot succeed: pod ${pod.metadata.name} container ${container} exited 3`,
      ),
    );
    expect(Date.now() - started).toBeLessThan(60_000);
    await fleet.teardown('fraud-v12-production');
  });

  it('with an HPA on p95 latency and scaleWithWeight: the fleet moves the bounds, the autoscaler keeps the count', async () => {
    const auto = new KubernetesFleet({
      ...options,
      scaleWithWeight: true,
      hpa: { minReplicas: 2, maxReplicas: 8, target: { p95LatencyMs: 50 } },
    });
    const name = 'fraud-v13-production';
    const hpaPath = `/apis/autoscaling/v2/namespaces/${NS}/horizontalpodautoscalers/${name}`;
    const depPath = `/apis/apps/v1/namespaces/${NS}/deployments/${name}`;
    const bounds = async (): Promise<[number, number]> => {
      const h = await get(hpaPath);
      return [h.spec.minReplicas, h.spec.maxReplicas];
    };
    // A candidate enters at 10%: its autoscaler may run it on 1 replica only.
    await auto.deploy(request({ version: '13', replicas: 4, weight: 10 }));
    expect(await bounds()).toEqual([1, 1]);
    expect((await get(hpaPath)).spec.metrics[0]).toEqual({
      type: 'Pods',
      pods: {
        metric: { name: 'runway_server_request_p95_seconds' },
        target: { type: 'AverageValue', averageValue: '50m' },
      },
    });
    expect((await get(depPath)).spec.replicas).toBe(1);
    // 50%: the bounds grow with the share; the count stays the autoscaler's to raise.
    await auto.scaleToWeight(name, 50);
    expect(await bounds()).toEqual([1, 4]);
    expect((await get(depPath)).spec.replicas).toBe(1);
    // The autoscaler scales to 3 (as the HPA controller does, through the scale subresource) ...
    const scaled = await cluster.api(
      'PATCH',
      `${depPath}/scale`,
      { spec: { replicas: 3 } },
      { 'content-type': 'application/merge-patch+json' },
    );
    expect(scaled.status, JSON.stringify(scaled.body)).toBe(200);
    // ... and neither a re-deploy (a resumed promotion) nor the next weight change resets it.
    await auto.deploy(request({ version: '13', replicas: 4, weight: 50 }));
    expect((await get(depPath)).spec.replicas).toBe(3);
    await auto.scaleToWeight(name, 100);
    expect(await bounds()).toEqual([2, 8]);
    expect((await get(depPath)).spec.replicas).toBe(3);
    // Shrinking to 25% clamps the live count into the new bounds at once, freeing replicas.
    await auto.scaleToWeight(name, 25);
    expect(await bounds()).toEqual([1, 2]);
    expect((await get(depPath)).spec.replicas).toBe(2);
    await auto.teardown(name);
  });

  it('with an HPA: applies the autoscaler on queue depth and leaves replicas to it', async () => {
    const auto = new KubernetesFleet({
      ...options,
      hpa: { minReplicas: 1, maxReplicas: 5, target: { queueDepth: 8 } },
    });
    await auto.deploy(request({ version: '12', replicas: 2 }));
    const hpa = await get(
      `/apis/autoscaling/v2/namespaces/${NS}/horizontalpodautoscalers/fraud-v12-production`,
    );
    expect(hpa.spec).toMatchObject({
      minReplicas: 1,
      maxReplicas: 5,
      scaleTargetRef: { kind: 'Deployment', name: 'fraud-v12-production' },
      metrics: [
        {
          type: 'Pods',
          pods: {
            metric: { name: 'runway_server_queue_depth' },
            target: { type: 'AverageValue', averageValue: '8' },
          },
        },
      ],
    });
    await expect(auto.scale('fraud-v12-production', 3)).rejects.toThrow(
      /HorizontalPodAutoscaler owns the replicas/,
    );
    await auto.teardown('fraud-v12-production');
    expect(
      (
        await cluster.api(
          'GET',
          `/apis/autoscaling/v2/namespaces/${NS}/horizontalpodautoscalers/fraud-v12-production`,
        )
      ).status,
    ).toBe(404);
  });

  it('endpointsFor: a deployment’s traffic can be served by a local stand-in (for full promotions)', async () => {
    const model = path.join(projectRoot, 'demo/models/fraud-v1.onnx');
    if (!fs.existsSync(model))
      throw new Error('demo/models/fraud-v1.onnx missing: run `npm run demo:models`');
    // The pod spec fetches the artifact by digest; the stand-in serves the same file, verified too.
    const sha256 = createHash('sha256').update(fs.readFileSync(model)).digest('hex');
    const standIns = localStandIns(cluster, startServe);
    try {
      const local = new KubernetesFleet({
        ...options,
        endpointsFor: standIns.endpointsFor,
      });
      const d = await local.deploy(request({ version: '30', replicas: 1, artifactPath: model, sha256 }));
      expect(d.endpoints[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const ready = await fetch(`${d.endpoints[0]}/v2/models/fraud/versions/30/ready`);
      expect(ready.status).toBe(200);
      expect((await local.get('fraud-v30-production'))?.endpoints).toEqual(d.endpoints);
      await local.teardown('fraud-v30-production');
    } finally {
      await standIns.stopAll();
    }
  });

  it('teardown deletes what runway created and nothing else', async () => {
    // Someone else's Service carrying our instance label, but not managed by runway.
    const other = await cluster.api('POST', `/api/v1/namespaces/${NS}/services`, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'fraud-debug', labels: { 'app.kubernetes.io/instance': 'fraud-v7-production' } },
      spec: { ports: [{ port: 80 }] },
    });
    expect(other.status).toBe(201);
    await fleet.teardown('fraud-v7-production');
    await fleet.teardown('fraud-v7-production'); // idempotent
    const sel = 'labelSelector=app.kubernetes.io/managed-by%3Drunway';
    for (const p of [
      `/apis/apps/v1/namespaces/${NS}/deployments`,
      `/apis/apps/v1/namespaces/${NS}/replicasets`,
      `/api/v1/namespaces/${NS}/services`,
      `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets`,
      `/apis/autoscaling/v2/namespaces/${NS}/horizontalpodautoscalers`,
      `/api/v1/namespaces/${NS}/pods`,
    ]) {
      await eventually(`${p} empty`, async () =>
        (await get(`${p}?${sel}`)).items.length === 0 ? true : undefined,
      );
    }
    expect((await cluster.api('GET', `/api/v1/namespaces/${NS}/services/fraud-debug`)).status).toBe(200);
    expect(
      (await cluster.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments/fraud-v9-production`)).status,
    ).toBe(200);
  });

  it('accepts the deploy/ manifests, and their RBAC lets the worker run the fleet in its namespace only', async () => {
    for (const f of ['namespaces.yaml', 'rbac.yaml', 'routes.yaml', 'router.yaml', 'worker.yaml']) {
      await cluster.applyFile(path.join(projectRoot, 'deploy/base', f));
    }
    await eventually('runway-models service account', async () =>
      (await cluster.api('GET', '/api/v1/namespaces/runway-models/serviceaccounts/default')).status === 200
        ? true
        : undefined,
    );
    // A real token of the worker's ServiceAccount, as its pod would have.
    const tr = await cluster.api(
      'POST',
      '/api/v1/namespaces/runway-system/serviceaccounts/runway-worker/token',
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 600 },
      },
    );
    expect(tr.status, JSON.stringify(tr.body)).toBe(201);
    const kubeconfig = path.join(cluster.dir, 'worker.kubeconfig');
    const admin = JSON.parse(fs.readFileSync(cluster.kubeconfig, 'utf8'));
    admin.users = [{ name: 'admin', user: { token: tr.body.status.token } }];
    fs.writeFileSync(kubeconfig, JSON.stringify(admin));

    const worker = new KubernetesFleet({
      ...options,
      namespace: 'runway-models',
      connection: { kubeconfig },
    });
    const d = await worker.deploy(request({ version: '20', replicas: 1 }));
    expect(d.ready).toBe(true);
    await worker.teardown('fraud-v20-production');
    // The same credentials cannot deploy anywhere else.
    const elsewhere = new KubernetesFleet({ ...options, namespace: NS, connection: { kubeconfig } });
    await expect(elsewhere.deploy(request({ version: '21' }))).rejects.toThrow(/forbidden.*HTTP 403/i);

    const can = async (
      user: string,
      verb: string,
      resource: string,
      namespace: string,
      name?: string,
      group = '',
    ): Promise<boolean> => {
      const r = await cluster.api('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user,
          groups: ['system:serviceaccounts'],
          resourceAttributes: { verb, resource, group, namespace, ...(name ? { name } : {}) },
        },
      });
      return r.body.status.allowed === true;
    };
    const w = 'system:serviceaccount:runway-system:runway-worker';
    const r = 'system:serviceaccount:runway-system:runway-router';
    expect(await can(w, 'patch', 'configmaps', 'runway-system', 'runway-routes')).toBe(true);
    expect(await can(w, 'patch', 'configmaps', 'runway-system', 'runway-platform')).toBe(false);
    expect(await can(w, 'get', 'secrets', 'runway-models')).toBe(false);
    expect(await can(w, 'create', 'clusterroles', '', undefined, 'rbac.authorization.k8s.io')).toBe(false);
    expect(await can(r, 'watch', 'configmaps', 'runway-system', 'runway-routes')).toBe(true);
    expect(await can(r, 'patch', 'configmaps', 'runway-system', 'runway-routes')).toBe(false);
    expect(await can(r, 'list', 'configmaps', 'runway-system')).toBe(false);
    expect(await can(r, 'get', 'secrets', 'runway-system')).toBe(false);
  });
});
