/**
 * The install (deploy/: kustomize base + the production overlay) on a real kube-apiserver with
 * controllers, scheduler and kwok nodes: rendered by real kustomize (what `kubectl apply -k` embeds)
 * after `kustomize edit set image`, the one image setting; every object accepted by server-side
 * apply; the router and worker pods scheduled on kwok nodes; the rendered platform configuration
 * valid and selecting what the install sets up; and the worker's RBAC exactly what the fleet and
 * traffic providers call: a SubjectAccessReview matrix, the providers' real calls with the worker's
 * own token, and forbidden calls refused.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot, toolCacheDir } from '../../common/paths';
import { createFleet } from '../../serving/fleet/factory';
import { createTrafficRouter } from '../../serving/traffic/factory';
import { loadPlatformConfig } from '../../workers/config';
import {
  eventually,
  objectPath,
  requireK8s,
  startTestCluster,
  type KubeJson,
  type TestCluster,
} from '../helpers/k8s';

const { bins, skipReason: k8sSkip } = requireK8s();
const kustomizeVersion = /^KUSTOMIZE_VERSION=(\S+)/m.exec(
  fs.readFileSync(path.join(projectRoot, 'scripts/tools.sh'), 'utf8'),
)?.[1];
const kustomize = path.join(toolCacheDir(), 'bin', `kustomize-${kustomizeVersion}`);
let skipReason = k8sSkip;
if (!skipReason && !fs.existsSync(kustomize)) {
  skipReason = `INSTALL TESTS SKIPPED: ${kustomize} is missing (bash scripts/tools.sh kustomize)`;
  if (process.env.CI === 'true') throw new Error(`${skipReason} (CI=true: these tests must run)`);
  console.warn(`\n${'!'.repeat(100)}\n${skipReason}\n${'!'.repeat(100)}\n`);
}

const IMAGE = 'registry.test/ml/runway:abc123';
const WORKER = 'system:serviceaccount:runway-system:runway-worker';
const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: KubeJson;
};

describe.skipIf(!!skipReason)('the install (deploy/) on a real API server', () => {
  let cluster: TestCluster;
  let objects: Obj[];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-install-'));

  beforeAll(async () => {
    // What a platform team (or its CI) does: its copy of the overlay, one image setting, render.
    const overlay = path.join(dir, 'overlay');
    fs.cpSync(path.join(projectRoot, 'deploy/overlays/production'), overlay, { recursive: true });
    const k = path.join(overlay, 'kustomization.yaml');
    fs.writeFileSync(
      k,
      fs
        .readFileSync(k, 'utf8')
        .replace('../../base', path.relative(overlay, path.join(projectRoot, 'deploy/base'))),
    );
    execFileSync(kustomize, ['edit', 'set', 'image', `runway=${IMAGE}`], { cwd: overlay });
    const rendered = execFileSync(
      kustomize,
      ['build', '--load-restrictor', 'LoadRestrictionsNone', overlay],
      {
        encoding: 'utf8',
      },
    );
    objects = YAML.parseAllDocuments(rendered).map((d) => d.toJSON() as Obj);
    cluster = await startTestCluster(bins!, {
      nodes: [{ name: 'kwok-0' }, { name: 'kwok-1' }],
      extraControllers: ['persistentvolume-binder-controller'],
    });
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const find = (kind: string, name: string, namespace?: string): Obj => {
    const o = objects.find(
      (x) =>
        x.kind === kind &&
        (x.metadata.name === name || x.metadata.name.startsWith(`${name}-`)) &&
        (namespace === undefined || x.metadata.namespace === namespace),
    );
    if (!o) throw new Error(`no ${kind} ${name} in the rendered install`);
    return o;
  };

  it('renders every piece, with one image everywhere', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    for (const want of [
      'Namespace//runway-system',
      'Namespace//runway-models',
      'ServiceAccount/runway-system/runway-worker',
      'Role/runway-models/runway-fleet',
      'RoleBinding/runway-models/runway-worker-fleet',
      'Deployment/runway-system/runway-router',
      'Service/runway-system/runway-router',
      'PodDisruptionBudget/runway-system/runway-router',
      'NetworkPolicy/runway-system/runway-router',
      'Deployment/runway-system/runway-worker',
      'ConfigMap/runway-system/runway-routes',
    ])
      expect(kinds).toContain(want);
    const images = objects
      .filter((o) => o.kind === 'Deployment')
      .flatMap((d) => d.spec.template.spec.containers.map((c: { image: string }) => c.image));
    expect(new Set(images)).toEqual(new Set([IMAGE]));
    const worker = find('Deployment', 'runway-worker').spec.template.spec.containers[0];
    expect(worker.env).toContainEqual({ name: 'RUNWAY_FLEET_IMAGE', value: IMAGE });
    const router = find('Deployment', 'runway-router').spec.template;
    expect(router.metadata.annotations['prometheus.io/scrape']).toBe('true');
    expect(router.spec.containers[0].readinessProbe.httpGet.path).toBe('/v2/health/ready');
  });

  it('ships a platform configuration that is valid and names what the install sets up', () => {
    const cm = find('ConfigMap', 'runway-platform', 'runway-system');
    expect(cm.metadata.name).toMatch(/^runway-platform-[a-z0-9]+$/); // content hash: a change rolls the worker
    const mounted = find('Deployment', 'runway-worker').spec.template.spec.volumes;
    expect(mounted).toContainEqual({ name: 'config', configMap: { name: cm.metadata.name } });
    const file = path.join(dir, 'platform.yaml');
    fs.writeFileSync(file, cm.data['platform.yaml']);
    // The router's admin token comes from the Secret the worker mounts where the config reads it.
    const tokenFile = find('Deployment', 'runway-worker').spec.template.spec.containers[0].volumeMounts.find(
      (m: KubeJson) => m.name === 'admin-token',
    ).mountPath;
    expect(`${tokenFile}/token`).toBe('/var/run/runway/admin/token');
    fs.writeFileSync(path.join(dir, 'token'), 'install-test-token\n');
    const config = loadPlatformConfig({
      file,
      env: { RUNWAY_FLEET_IMAGE: IMAGE, RUNWAY_ROUTER_TOKEN_FILE: path.join(dir, 'token') },
    });
    expect(config.router.tokenFile).toBe(path.join(dir, 'token'));
    expect(config.fleet.driver).toBe('kubernetes');
    expect(config.fleet.kubernetes?.image).toBe(IMAGE);
    expect(config.fleet.namespace).toBe('runway-models');
    const art = config.fleet.kubernetes?.artifact;
    expect(art?.kind === 'volume' && art.claimName).toBe(
      find('PersistentVolumeClaim', 'runway-registry', 'runway-models').metadata.name,
    );
    const routes = find('ConfigMap', 'runway-routes');
    expect(config.router.driver).toBe('configmap');
    expect(config.router.configMap).toBe(`${routes.metadata.namespace}/${routes.metadata.name}`);
    expect(config.registry.dir).toBe('/var/lib/runway/registry');
  });

  it('is accepted by server-side apply, and its pods are scheduled on kwok nodes and turn Ready', async () => {
    for (const o of objects) {
      const r = await cluster.api(
        'PATCH',
        `${objectPath(o)}?fieldManager=kubectl&force=true`,
        JSON.stringify(o),
        {
          'content-type': 'application/apply-patch+yaml',
        },
      );
      expect(r.status, `${o.kind} ${o.metadata.name}: ${JSON.stringify(r.body).slice(0, 400)}`).toBeLessThan(
        300,
      );
    }
    // What the operator adds (docs/kubernetes.md): the router's admin token, and the shared storage
    // behind both registry claims (here two hostPath volumes; on a cluster, NFS or the like).
    await cluster.api('POST', '/api/v1/namespaces/runway-system/secrets', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'runway-router-admin' },
      stringData: { token: 'install-test-token' },
    });
    for (const [ns, mode] of [
      ['runway-system', 'ReadWriteMany'],
      ['runway-models', 'ReadOnlyMany'],
    ] as const) {
      const r = await cluster.api('POST', '/api/v1/persistentvolumes', {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: `registry-${ns}` },
        spec: {
          capacity: { storage: '20Gi' },
          accessModes: [mode],
          hostPath: { path: '/srv/runway-registry' },
          claimRef: { namespace: ns, name: 'runway-registry' },
        },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    const pods = await eventually(
      'router and worker pods Ready',
      async () => {
        const r = await cluster.api('GET', '/api/v1/namespaces/runway-system/pods');
        const items = (r.body.items ?? []) as KubeJson[];
        const ready = items.filter((p) =>
          p.status?.conditions?.some((c: KubeJson) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length === 3 ? ready : undefined;
      },
      120_000,
    );
    const byApp = (app: string): KubeJson[] =>
      pods.filter((p) => p.metadata.labels['app.kubernetes.io/name'] === app);
    expect(byApp('runway-router')).toHaveLength(2);
    expect(byApp('runway-worker')).toHaveLength(1);
    for (const p of pods) expect(['kwok-0', 'kwok-1']).toContain(p.spec.nodeName);
    // The router's preferred anti-affinity spreads its two replicas over both nodes.
    expect(new Set(byApp('runway-router').map((p) => p.spec.nodeName)).size).toBe(2);
  }, 180_000);

  it('gives the worker exactly what the fleet and traffic providers call, and nothing more', async () => {
    const can = async (
      verb: string,
      group: string,
      resource: string,
      namespace: string,
      name?: string,
      subresource?: string,
    ) => {
      const r = await cluster.api('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: WORKER,
          groups: ['system:serviceaccounts', 'system:serviceaccounts:runway-system', 'system:authenticated'],
          resourceAttributes: {
            verb,
            group,
            resource,
            namespace,
            ...(name ? { name } : {}),
            ...(subresource ? { subresource } : {}),
          },
        },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.status.allowed === true;
    };
    // What serving/fleet/kubernetes.ts, serving/traffic/configmap.ts and gateway-api.ts call.
    const calls: Record<string, string[]> = {
      'runway-models apps/deployments': ['get', 'list', 'create', 'patch', 'delete'],
      'runway-models /services': ['get', 'list', 'create', 'patch', 'delete'],
      'runway-models policy/poddisruptionbudgets': ['list', 'create', 'patch', 'delete'],
      'runway-models autoscaling/horizontalpodautoscalers': ['list', 'create', 'patch', 'delete'],
      'runway-models /pods': ['list'],
      'runway-models gateway.networking.k8s.io/httproutes': ['get', 'list', 'create', 'patch', 'delete'],
      'runway-models networking.istio.io/virtualservices': ['get', 'list', 'create', 'patch', 'delete'],
      'runway-models networking.istio.io/destinationrules': ['get', 'list', 'create', 'patch', 'delete'],
      'runway-system /configmaps:runway-routes': ['get', 'create', 'patch'],
      // the keyring of signed decisions (workers/keyring.ts): read only
      'runway-system /configmaps:runway-keyring': ['get', 'create'],
      // create cannot be narrowed to a name, so any ConfigMap in runway-system may be created.
      'runway-system /configmaps:other': ['create'],
    };
    const verbs = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
    const resources = [
      'apps/deployments', 'apps/replicasets', 'apps/statefulsets', 'apps/daemonsets', '/services', '/pods',
      '/pods/exec', '/pods/log', '/events', '/secrets', '/configmaps:runway-routes', '/configmaps:runway-keyring', '/configmaps:other',
      '/serviceaccounts', 'policy/poddisruptionbudgets', 'autoscaling/horizontalpodautoscalers',
      'gateway.networking.k8s.io/httproutes', 'networking.istio.io/virtualservices',
      'networking.istio.io/destinationrules', 'networking.istio.io/gateways', 'rbac.authorization.k8s.io/roles',
      'rbac.authorization.k8s.io/rolebindings', 'networking.k8s.io/networkpolicies',
    ]; // prettier-ignore
    const wrong: string[] = [];
    for (const ns of ['runway-models', 'runway-system', 'default']) {
      for (const res of resources) {
        const [gr, name] = res.split(':') as [string, string | undefined];
        const [group, resource, subresource] = gr.split('/') as [string, string, string | undefined];
        const allowedVerbs = calls[`${ns} ${res}`] ?? [];
        for (const verb of verbs) {
          const allowed = await can(
            verb,
            group,
            resource,
            ns,
            name === 'other' ? 'runway-platform' : name,
            subresource,
          );
          if (allowed !== allowedVerbs.includes(verb))
            wrong.push(`${allowed ? 'allowed' : 'denied'}: ${verb} ${res} in ${ns}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(await can('create', 'rbac.authorization.k8s.io', 'clusterroles', '')).toBe(false);
    expect(await can('list', '', 'nodes', '')).toBe(false);
  }, 180_000);

  it("runs the providers' real calls with the worker's own token; a Secret elsewhere is forbidden", async () => {
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
    const kubeconfig = path.join(dir, 'worker.kubeconfig');
    const admin = JSON.parse(fs.readFileSync(cluster.kubeconfig, 'utf8'));
    admin.users = [{ name: 'admin', user: { token: tr.body.status.token } }];
    fs.writeFileSync(kubeconfig, JSON.stringify(admin));

    // The worker's view: the rendered platform config, as the pod loads it (env from the Deployment).
    const file = path.join(dir, 'platform.yaml');
    fs.writeFileSync(file, find('ConfigMap', 'runway-platform').data['platform.yaml']);
    fs.writeFileSync(path.join(dir, 'token'), 'install-test-token\n');
    const config = loadPlatformConfig({
      file,
      env: {
        RUNWAY_FLEET_IMAGE: IMAGE,
        KUBECONFIG: kubeconfig,
        RUNWAY_ROUTER_TOKEN_FILE: path.join(dir, 'token'),
      },
    });
    const fleet = createFleet(config.fleet, quiet);
    const traffic = createTrafficRouter(config.router, undefined, { kubeconfig });

    const d = await fleet.deploy({
      model: 'fraud',
      version: '3',
      environment: 'production',
      artifactPath: '/var/lib/runway/registry/blobs/sha256/ab',
      sha256: 'ab'.repeat(32),
      replicas: 1,
    });
    expect(d.ready).toBe(true);
    const dep = await cluster.api(
      'GET',
      '/apis/apps/v1/namespaces/runway-models/deployments/fraud-v3-production',
    );
    expect(dep.body.spec.template.spec.containers[0].image).toBe(IMAGE);
    const route = { variants: [{ name: 'v3', endpoints: d.endpoints, weight: 100 }] };
    await traffic.setRoute('fraud', route);
    expect(await traffic.getRoute('fraud')).toEqual(route);
    await traffic.deleteRoute('fraud');
    await fleet.teardown('fraud-v3-production');

    const asWorker = async (p: string): Promise<number> => {
      const r = await fetchAs(cluster, tr.body.status.token, p);
      return r;
    };
    expect(await asWorker('/api/v1/namespaces/default/secrets')).toBe(403);
    expect(await asWorker('/api/v1/namespaces/runway-system/secrets/runway-router-admin')).toBe(403);
    expect(await asWorker('/apis/apps/v1/namespaces/default/deployments')).toBe(403);
    expect(await asWorker('/apis/apps/v1/namespaces/runway-models/deployments')).toBe(200);
  }, 180_000);
});

async function fetchAs(cluster: TestCluster, token: string, p: string): Promise<number> {
  const { Agent, request } = await import('undici');
  const agent = new Agent({ connect: { ca: cluster.ca } });
  try {
    const r = await request(`${cluster.server}${p}`, {
      dispatcher: agent,
      headers: { authorization: `Bearer ${token}` },
    });
    await r.body.dump();
    return r.statusCode;
  } finally {
    await agent.close();
  }
}
