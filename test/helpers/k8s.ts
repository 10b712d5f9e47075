/**
 * A real, small Kubernetes control plane for tests: etcd + kube-apiserver + kube-controller-manager
 * (Deployments → ReplicaSets → Pods, garbage collection, namespaces, service accounts) +
 * kube-scheduler (binds pods, and explains why it cannot) + kwok (fake nodes; pods bound to them
 * turn Running and Ready, since no container can run here). Binaries come from
 * `bash scripts/k8s-env.sh` (built once into the tool cache). Everything listens on loopback, lives
 * in a temporary directory, and is stopped by `stop()` (call it from afterAll; idempotent).
 *
 * Without the binaries a k8s test file skips with a loud reason; with CI=true it fails instead,
 * so a green CI run means these tests ran.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { projectRoot } from '../../common/paths';
import { freePort } from '../../common/ports';

/** API answers: tests read Kubernetes objects of every kind, so their shape is not typed here. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
export type KubeJson = any;

export interface K8sBinaries {
  binDir: string;
  /** Gateway API standard-channel CRDs (one multi-document YAML). */
  gatewayCrds: string;
}

/** Where the binaries are, or why they are not there. Never builds (that is scripts/k8s-env.sh). */
export function k8sBinaries(): K8sBinaries | { unavailable: string } {
  let binDir: string;
  try {
    binDir = execFileSync('bash', [path.join(projectRoot, 'scripts/k8s-env.sh'), '--print'], {
      encoding: 'utf8',
    }).trim();
  } catch (err) {
    return { unavailable: `scripts/k8s-env.sh --print failed: ${(err as Error).message}` };
  }
  const root = path.dirname(binDir);
  const missing = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'].filter(
    (b) => !fs.existsSync(path.join(binDir, b)),
  );
  const gatewayCrds = path.join(root, 'crds', 'standard-install.yaml');
  if (!fs.existsSync(gatewayCrds)) missing.push('crds/standard-install.yaml');
  if (missing.length) {
    const failure = path.join(root, 'build-failed.txt');
    const why = fs.existsSync(failure)
      ? `; the last build failed: ${fs.readFileSync(failure, 'utf8').trim()}`
      : '';
    return {
      unavailable: `missing ${missing.join(', ')} in ${binDir}${why}. Build them with \`bash scripts/k8s-env.sh\` (Go needed; about 30 min the first time)`,
    };
  }
  return { binDir, gatewayCrds };
}

/**
 * For a test file's top level: the binaries, or a loud skip reason. Under CI=true a missing binary
 * throws, so the file fails rather than skipping.
 */
export function requireK8s(): { bins?: K8sBinaries; skipReason?: string } {
  const found = k8sBinaries();
  if ('binDir' in found) return { bins: found };
  const reason = `KUBERNETES TESTS SKIPPED: ${found.unavailable}`;
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: these tests must run)`);
  console.warn(`\n${'!'.repeat(100)}\n${reason}\n${'!'.repeat(100)}\n`);
  return { skipReason: reason };
}

export interface FakeNode {
  name: string;
  labels?: Record<string, string>;
  /** Extra capacity, e.g. { 'nvidia.com/gpu': '1' }. CPU 32, memory 128Gi, 110 pods by default. */
  capacity?: Record<string, string>;
}

export interface TestCluster {
  server: string;
  /** Path of an admin kubeconfig (static token, CA pinned). */
  kubeconfig: string;
  token: string;
  ca: string;
  dir: string;
  /** Milliseconds from spawn to a Ready fake node. */
  startupMs: number;
  /** GET/POST/... against the API server as admin; JSON in and out. */
  api(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: KubeJson }>;
  /** Applies a multi-document YAML/JSON file of objects (server-side apply, field manager test). */
  applyFile(file: string): Promise<void>;
  /** Last lines of each component's log, for failure messages. */
  logs(lines?: number): string;
  stop(): Promise<void>;
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  logs: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = '';
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(`${what} not ready after ${timeoutMs} ms${lastErr ? ` (${lastErr})` : ''}\n${logs()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function plural(kind: string): string {
  const k = kind.toLowerCase();
  return k.endsWith('s') ? `${k}es` : k.endsWith('y') ? `${k.slice(0, -1)}ies` : `${k}s`;
}

/** The REST path of an object, from its apiVersion/kind (enough for the kinds tests apply). */
export function objectPath(obj: {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}): string {
  const base = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const clusterScoped =
    /^(Namespace|Node|ClusterRole|ClusterRoleBinding|CustomResourceDefinition|PersistentVolume|StorageClass|PriorityClass|ValidatingAdmissionPolicy|ValidatingAdmissionPolicyBinding)$/.test(
      obj.kind,
    );
  const ns = !clusterScoped ? `/namespaces/${obj.metadata.namespace ?? 'default'}` : '';
  return `${base}${ns}/${plural(obj.kind)}/${encodeURIComponent(obj.metadata.name)}`;
}

export interface ClusterOptions {
  /** Fake nodes (default one CPU node). */
  nodes?: FakeNode[];
  /** Only etcd + kube-apiserver: enough for ConfigMaps and CRDs, and much lighter. */
  apiOnly?: boolean;
  /** More kube-controller-manager controllers, e.g. persistentvolume-binder-controller (PVCs bind). */
  extraControllers?: string[];
}

export async function startTestCluster(bins: K8sBinaries, opts: ClusterOptions = {}): Promise<TestCluster> {
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'runway-k8s-'));
  const bin = (b: string): string => path.join(bins.binDir, b);
  const children: { name: string; child: ChildProcess; log: string }[] = [];
  let stopped = false;

  const logs = (lines = 15): string =>
    children
      .map(({ name, log }) => {
        let text = '';
        try {
          text = fs.readFileSync(log, 'utf8');
        } catch {
          /* not written yet */
        }
        return `--- ${name} ---\n${text.split('\n').slice(-lines).join('\n')}`;
      })
      .join('\n');

  const run = (name: string, args: string[]): ChildProcess => {
    const log = path.join(dir, `${name}.log`);
    const fd = fs.openSync(log, 'a');
    const child = spawn(bin(name), args, { stdio: ['ignore', fd, fd], cwd: dir });
    fs.closeSync(fd);
    children.push({ name, child, log });
    return child;
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Reverse start order: clients first, etcd last.
    for (const { child } of [...children].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
    await agent.close().catch(() => undefined);
    if (!process.env.RUNWAY_KEEP_K8S) fs.rmSync(dir, { recursive: true, force: true });
  };

  // ---- credentials ----------------------------------------------------------------------------
  const ca = path.join(dir, 'serving.crt');
  const key = path.join(dir, 'serving.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', ca, '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-addext', 'basicConstraints=critical,CA:TRUE',
  ], { stdio: 'ignore' }); // prettier-ignore
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const saKey = path.join(dir, 'sa.key');
  const saPub = path.join(dir, 'sa.pub');
  fs.writeFileSync(saKey, sa.privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
  fs.writeFileSync(saPub, sa.publicKey.export({ type: 'spki', format: 'pem' }));
  const token = randomBytes(24).toString('hex');
  const tokens = path.join(dir, 'tokens.csv');
  fs.writeFileSync(tokens, `${token},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
  const caPem = fs.readFileSync(ca, 'utf8');
  const agent = new Agent({ connect: { ca: caPem } });

  try {
    // ---- etcd -----------------------------------------------------------------------------------
    const [etcdPort, peerPort, apiPort, kcmPort, schedPort] = await Promise.all(
      Array.from({ length: 5 }, () => freePort()),
    );
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    run('etcd', [
      '--data-dir', path.join(dir, 'etcd'),
      '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `default=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync', '--log-level', 'warn',
    ]); // prettier-ignore
    await until(
      'etcd',
      async () => {
        const r = await request(`${etcdUrl}/health`);
        const b = (await r.body.json()) as { health?: string };
        return b.health === 'true' ? true : undefined;
      },
      30_000,
      logs,
    );

    // ---- kube-apiserver --------------------------------------------------------------------------
    const server = `https://127.0.0.1:${apiPort}`;
    run('kube-apiserver', [
      `--etcd-servers=${etcdUrl}`,
      `--secure-port=${apiPort}`, '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1',
      `--tls-cert-file=${ca}`, `--tls-private-key-file=${key}`, `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
      `--token-auth-file=${tokens}`, '--authorization-mode=RBAC',
      `--service-account-issuer=https://kubernetes.default.svc`,
      `--service-account-key-file=${saPub}`, `--service-account-signing-key-file=${saKey}`,
      '--service-cluster-ip-range=10.96.0.0/16', '--endpoint-reconciler-type=none',
      '--enable-priority-and-fairness=false', '--profiling=false', '--v=0',
    ]); // prettier-ignore
    const api = async (
      method: string,
      p: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; body: KubeJson }> => {
      const res = await request(`${server}${p}`, {
        method: method as 'GET',
        dispatcher: agent,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.body.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* plain text (healthz) */
      }
      return { status: res.statusCode, body: parsed };
    };
    await until(
      'kube-apiserver',
      async () => ((await api('GET', '/readyz')).status === 200 ? true : undefined),
      90_000,
      logs,
    );

    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'test',
            cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
          },
        ],
        users: [{ name: 'admin', user: { token } }],
        contexts: [{ name: 'test', context: { cluster: 'test', user: 'admin', namespace: 'default' } }],
        'current-context': 'test',
      }),
      { mode: 0o600 },
    );

    // ---- controllers, scheduler, kwok -----------------------------------------------------------
    if (!opts.apiOnly) run('kube-controller-manager', [
      `--kubeconfig=${kubeconfig}`, '--leader-elect=false',
      `--secure-port=${kcmPort}`, '--bind-address=127.0.0.1', `--cert-dir=${path.join(dir, 'kcm-certs')}`,
      `--controllers=${['deployment-controller', 'replicaset-controller', 'garbage-collector-controller', 'namespace-controller', 'serviceaccount-controller', 'serviceaccount-token-controller', 'disruption-controller', ...(opts.extraControllers ?? [])].join(',')}`,
      `--service-account-private-key-file=${saKey}`, `--root-ca-file=${ca}`,
      '--use-service-account-credentials=false', '--concurrent-deployment-syncs=5', '--v=0',
    ]); // prettier-ignore
    if (!opts.apiOnly) run('kube-scheduler', [
      `--kubeconfig=${kubeconfig}`, '--leader-elect=false',
      `--secure-port=${schedPort}`, '--bind-address=127.0.0.1', `--cert-dir=${path.join(dir, 'sched-certs')}`, '--v=0',
    ]); // prettier-ignore
    if (!opts.apiOnly) run('kwok', [
      `--kubeconfig=${kubeconfig}`, '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--cidr=10.244.0.1/16', '--node-ip=10.0.0.1', '--server-address=',
    ]); // prettier-ignore

    const cluster: TestCluster = {
      server,
      kubeconfig,
      token,
      ca: caPem,
      dir,
      startupMs: 0,
      api,
      logs,
      stop,
      async applyFile(file: string): Promise<void> {
        const YAML = await import('yaml');
        const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'))
          .map(
            (d) =>
              d.toJSON() as {
                apiVersion: string;
                kind: string;
                metadata: { name: string; namespace?: string };
              } | null,
          )
          .filter((d): d is NonNullable<typeof d> => !!d && typeof d === 'object' && 'kind' in d);
        for (const d of docs) {
          const r = await api(
            'PATCH',
            `${objectPath(d)}?fieldManager=runway-test&force=true`,
            JSON.stringify(d),
            {
              'content-type': 'application/apply-patch+yaml',
            },
          );
          if (r.status >= 300) {
            throw new Error(
              `apply ${d.kind} ${d.metadata.name} from ${file}: ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`,
            );
          }
        }
      },
    };

    if (opts.apiOnly) {
      cluster.startupMs = Date.now() - started;
      return cluster;
    }
    for (const n of opts.nodes ?? [{ name: 'kwok-node-0' }]) {
      const r = await api('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: n.name,
          annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
          labels: {
            'kubernetes.io/hostname': n.name,
            'kubernetes.io/os': 'linux',
            type: 'kwok',
            ...n.labels,
          },
        },
        status: {
          allocatable: { cpu: '32', memory: '128Gi', pods: '110', ...n.capacity },
          capacity: { cpu: '32', memory: '128Gi', pods: '110', ...n.capacity },
        },
      });
      if (r.status >= 300) throw new Error(`create node ${n.name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    await until(
      'fake nodes Ready',
      async () => {
        const r = await api('GET', '/api/v1/nodes');
        const items =
          (r.body as { items?: { status?: { conditions?: { type: string; status: string }[] } }[] }).items ??
          [];
        const ready = items.filter((n) =>
          n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        return items.length > 0 && ready.length === items.length ? true : undefined;
      },
      60_000,
      logs,
    );
    // The API server taints new nodes not-ready; the node-lifecycle controller (not run here: kwok
    // fakes the kubelets) would lift it once Ready. Lift it ourselves, or nothing schedules.
    for (const n of opts.nodes ?? [{ name: 'kwok-node-0' }]) {
      const r = await api(
        'PATCH',
        `/api/v1/nodes/${n.name}`,
        [{ op: 'replace', path: '/spec/taints', value: [] }],
        {
          'content-type': 'application/json-patch+json',
        },
      );
      if (r.status >= 300) throw new Error(`untaint node ${n.name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    // Pods need the namespace's default ServiceAccount, which the controller creates.
    await until(
      'default service account',
      async () =>
        (await api('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200
          ? true
          : undefined,
      60_000,
      logs,
    );
    cluster.startupMs = Date.now() - started;
    return cluster;
  } catch (err) {
    const text = logs(30);
    await stop();
    throw err instanceof Error && !err.message.includes('---') ? new Error(`${err.message}\n${text}`) : err;
  }
}

/** Creates a namespace and waits for its default ServiceAccount (pods need it). */
export async function createNamespace(
  c: TestCluster,
  name: string,
  waitForServiceAccount = true,
): Promise<void> {
  const r = await c.api('POST', '/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name },
  });
  if (r.status >= 300 && r.status !== 409)
    throw new Error(`create namespace ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  if (!waitForServiceAccount) return;
  await until(
    `service account in ${name}`,
    async () =>
      (await c.api('GET', `/api/v1/namespaces/${name}/serviceaccounts/default`)).status === 200
        ? true
        : undefined,
    60_000,
    () => c.logs(),
  );
}

/** Waits until the API server has established the named CRD. */
async function crdEstablished(cluster: TestCluster, name: string): Promise<void> {
  await eventually(
    `${name} CRD established`,
    async () => {
      const r = await cluster.api('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      return r.body?.status?.conditions?.some(
        (c: { type: string; status: string }) => c.type === 'Established' && c.status === 'True',
      )
        ? true
        : undefined;
    },
    30_000,
  );
}

/** Applies the Gateway API CRDs and waits until the API server has established HTTPRoute. */
export async function installGatewayCrds(cluster: TestCluster, bins: K8sBinaries): Promise<void> {
  await cluster.applyFile(bins.gatewayCrds);
  await crdEstablished(cluster, 'httproutes.gateway.networking.k8s.io');
}

/** Applies Istio's CRDs (cached beside the Gateway API's) and waits for VirtualService. */
export async function installIstioCrds(cluster: TestCluster, bins: K8sBinaries): Promise<void> {
  await cluster.applyFile(path.join(path.dirname(bins.gatewayCrds), 'istio-v1.28.0.yaml'));
  await crdEstablished(cluster, 'virtualservices.networking.istio.io');
}

/** Polls `fn` until it returns a value (not undefined), or fails after `timeoutMs`. */

export function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  return until(what, fn, timeoutMs, () => '');
}

/**
 * For a full promotion with the kubernetes driver: kwok runs no containers, so each Deployment's
 * traffic is served by a local `runway serve` started from the request the driver recorded on the
 * Deployment (its `runway.dev/request` annotation). Pass `endpointsFor` to KubernetesFleet; call
 * `stopAll()` in afterAll. One local process per deployment, whatever its replica count.
 */
export function localStandIns(
  cluster: TestCluster,
  start: (args: string[]) => Promise<{ url: string; stop(): Promise<unknown> }>,
): {
  endpointsFor: (d: { name: string; namespace: string }) => Promise<string[]>;
  stopAll(): Promise<void>;
} {
  const running = new Map<string, Promise<{ url: string; stop(): Promise<unknown> }>>();
  return {
    async endpointsFor({ name, namespace }) {
      let p = running.get(`${namespace}/${name}`);
      if (!p) {
        const dep = await cluster.api('GET', `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`);
        const raw = dep.body?.metadata?.annotations?.['runway.dev/request'];
        if (dep.status !== 200 || !raw)
          throw new Error(`no runway deployment ${namespace}/${name} to stand in for`);
        const req = JSON.parse(raw) as {
          model: string;
          version: string;
          artifactPath: string;
          sha256?: string;
        };
        const args = ['--model', req.artifactPath, '--name', req.model, '--version', req.version];
        if (req.sha256) args.push('--sha256', req.sha256);
        p = start(args);
        running.set(`${namespace}/${name}`, p);
      }
      return [(await p).url];
    },
    async stopAll() {
      const all = [...running.values()];
      running.clear();
      await Promise.allSettled(all.map(async (p) => (await p).stop()));
    },
  };
}
