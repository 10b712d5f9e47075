/**
 * The pure parts of the Kubernetes seams: manifests, rollout state, pod reasons, HTTPRoute
 * building, PromQL, weight-proportional replicas. The real API server tests are in
 * test/integration/k8s-*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  cpuCores,
  deploymentManifest,
  manifestsFor,
  type KubernetesDeploymentRequest,
} from '../../serving/fleet/k8s-manifests';
import { replicasForWeight } from '../../serving/fleet/sizing';
import { podProblems, refusedContainers, rolloutState, weightedBounds } from '../../serving/fleet/kubernetes';
import { snapshotQuery } from '../../serving/metrics/prometheus';
import { parseConfigMapRef } from '../../serving/traffic/configmap';
import { httpRouteFor, mirrorShare, serviceOf } from '../../serving/traffic/gateway-api';

const req: KubernetesDeploymentRequest = {
  model: 'fraud',
  version: '7',
  environment: 'staging',
  artifactPath: '/models/fraud/7.onnx',
  sha256: 'cd'.repeat(32),
  replicas: 2,
  resources: { cpu: '2', memory: '4Gi', gpu: 1 },
};
const opts = {
  namespace: 'm',
  image: 'runway:1',
  artifact: { kind: 'volume' as const, claimName: 'registry' },
  accelerator: { value: 'NVIDIA-H100' },
};

describe('kubernetes manifests', () => {
  it('asks for GPUs in requests and limits, on the accelerator’s nodes, with the artifact from a volume', () => {
    const d = deploymentManifest(req, opts) as any; // eslint-disable-line @typescript-eslint/no-explicit-any -- reading a nested manifest
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    expect(c.resources.limits).toEqual({ cpu: '2', memory: '4Gi', 'nvidia.com/gpu': '1' });
    expect(c.resources.requests).toEqual(c.resources.limits);
    expect(
      pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]
        .matchExpressions[0],
    ).toEqual({
      key: 'nvidia.com/gpu.product',
      operator: 'In',
      values: ['NVIDIA-H100'],
    });
    expect(pod.volumes).toContainEqual({
      name: 'model',
      persistentVolumeClaim: { claimName: 'registry', readOnly: true },
    });
    expect(c.args.slice(0, 3)).toEqual(['serve', '--model', '/models/fraud/7.onnx']);
    expect(pod.initContainers).toBeUndefined();
    expect(JSON.parse(d.metadata.annotations['runway.dev/request'])).toEqual(req);
  });

  it("sizes each session's threads to the pod's CPU limit, not the node's cores, unless the spec sets them", () => {
    const threadsOf = (r: KubernetesDeploymentRequest): string | undefined => {
      const args = (deploymentManifest(r, opts) as any).spec.template.spec.containers[0].args as string[]; // eslint-disable-line @typescript-eslint/no-explicit-any -- reading a nested manifest
      const i = args.indexOf('--threads');
      return i < 0 ? undefined : args[i + 1];
    };
    expect(threadsOf(req)).toBe('2');
    expect(threadsOf({ ...req, resources: { ...req.resources!, cpu: '4' }, serving: { instances: 2 } })).toBe(
      '2',
    );
    expect(threadsOf({ ...req, resources: { ...req.resources!, cpu: '500m' } })).toBe('1');
    expect(threadsOf({ ...req, resources: { ...req.resources!, cpu: '1.5' } })).toBe('1');
    expect(threadsOf({ ...req, serving: { threads: 6 } })).toBe('6');
    expect(cpuCores('250m')).toBe(0.25);
    expect(cpuCores('3')).toBe(3);
    expect(cpuCores('2Gi')).toBeUndefined();
  });

  it('refuses what cannot work, naming why', () => {
    expect(() => deploymentManifest({ ...req, artifactPath: '/elsewhere/x.onnx' }, opts)).toThrow(
      /not under the volume mount \/models\//,
    );
    expect(() =>
      deploymentManifest(
        { ...req, sha256: undefined },
        { ...opts, artifact: { kind: 'init-container', registryUrl: 'http://r' } },
      ),
    ).toThrow(/needs the artifact's sha256/);
    expect(() => deploymentManifest({ ...req, model: 'Fraud_Detector' }, opts)).toThrow(
      /not a valid Kubernetes name/,
    );
  });

  it('adds an HPA only when configured', () => {
    expect(manifestsFor(req, opts).map((m) => m.kind)).toEqual([
      'Deployment',
      'Service',
      'PodDisruptionBudget',
    ]);
    const withHpa = manifestsFor(req, {
      ...opts,
      hpa: { minReplicas: 1, maxReplicas: 4, target: { queueDepth: 5 } },
    });
    expect(withHpa.map((m) => m.kind)).toContain('HorizontalPodAutoscaler');
  });

  it("an HPA on p95 latency targets the adapter metric in seconds, within the version's own bounds", () => {
    const [deployment, , , hpa] = manifestsFor(
      { ...req, replicas: 9, autoscale: { minReplicas: 1, maxReplicas: 2 } },
      { ...opts, hpa: { minReplicas: 2, maxReplicas: 8, target: { p95LatencyMs: 50 } } },
    );
    expect(hpa?.spec).toMatchObject({
      minReplicas: 1,
      maxReplicas: 2,
      metrics: [
        {
          type: 'Pods',
          pods: {
            metric: { name: 'runway_server_request_p95_seconds' },
            target: { type: 'AverageValue', averageValue: '50m' },
          },
        },
      ],
    });
    // The count the fleet passes is kept inside the autoscaler's bounds.
    expect((deployment?.spec as { replicas: number }).replicas).toBe(2);
  });

  it('autoscaler bounds follow weight like a fixed count does, capped by the budget', () => {
    const hpa = { minReplicas: 2, maxReplicas: 8, target: { queueDepth: 4 } };
    expect([5, 25, 50, 100].map((w) => weightedBounds(hpa, w))).toEqual([
      { minReplicas: 1, maxReplicas: 1 },
      { minReplicas: 1, maxReplicas: 2 },
      { minReplicas: 1, maxReplicas: 4 },
      { minReplicas: 2, maxReplicas: 8 },
    ]);
    expect(weightedBounds(hpa, 100, 3)).toEqual({ minReplicas: 2, maxReplicas: 3 });
  });

  it('replicas follow weight: proportional, rounded up, at least one, at most the full count', () => {
    expect([0, 5, 25, 50, 100].map((w) => replicasForWeight(8, w))).toEqual([1, 1, 2, 4, 8]);
    expect(() => replicasForWeight(8, 101)).toThrow(/weight: expected 0–100/);
  });
});

describe('rollout state and reasons', () => {
  it('reads a rollout as kubectl does', () => {
    const base = { metadata: { generation: 2 }, spec: { replicas: 2 } };
    expect(rolloutState({ ...base, status: { observedGeneration: 1 } }).message).toMatch(
      /observe the new spec/,
    );
    expect(rolloutState({ ...base, status: { observedGeneration: 2, updatedReplicas: 1 } }).done).toBe(false);
    expect(
      rolloutState({
        ...base,
        status: { observedGeneration: 2, updatedReplicas: 2, replicas: 3, availableReplicas: 2 },
      }).message,
    ).toMatch(/1 old replica/);
    expect(
      rolloutState({
        ...base,
        status: { observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 2 },
      }).done,
    ).toBe(true);
    const stuck = rolloutState({
      ...base,
      status: {
        observedGeneration: 2,
        conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
      },
    });
    expect(stuck.failed).toBe(true);
  });

  it('explains pods in their own words', () => {
    expect(
      podProblems({
        status: {
          conditions: [
            {
              type: 'PodScheduled',
              status: 'False',
              message: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.',
            },
          ],
          containerStatuses: [
            {
              name: 'server',
              state: { waiting: { reason: 'ImagePullBackOff', message: 'pull access denied' } },
            },
            {
              name: 'side',
              restartCount: 4,
              state: { waiting: { reason: 'CrashLoopBackOff' } },
              lastState: { terminated: { exitCode: 1 } },
            },
          ],
        },
      }),
    ).toEqual([
      'unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.',
      'container server: ImagePullBackOff (pull access denied)',
      'container side: CrashLoopBackOff',
      'container side restarted 4 time(s), last exit code 1',
    ]);
  });

  it('tells a refused artifact (exit 3) from other crashes', () => {
    const crashed = (exitCode: number, where: 'state' | 'lastState') => ({
      status: {
        containerStatuses: [
          {
            name: 'server',
            restartCount: 1,
            [where]: { terminated: { exitCode } },
          },
        ],
      },
    });
    expect(refusedContainers(crashed(3, 'lastState'))).toEqual([
      'container server exited 3: the model server refused its artifact (its log names the sha256 or signature)',
    ]);
    expect(refusedContainers({ metadata: { name: 'fraud-v7-abc' }, ...crashed(3, 'lastState') })).toEqual([
      'pod fraud-v7-abc container server exited 3: the model server refused its artifact (kubectl logs fraud-v7-abc -c server --previous names the sha256 or signature)',
    ]);
    expect(refusedContainers(crashed(3, 'state'))).toHaveLength(1);
    expect(refusedContainers(crashed(1, 'lastState'))).toEqual([]);
    expect(refusedContainers(crashed(137, 'state'))).toEqual([]);
    expect(refusedContainers({})).toEqual([]);
  });
});

describe('gateway-api and configmap routes', () => {
  it('maps Service URLs to backendRefs and mirror shares to percent or fraction', () => {
    expect(
      serviceOf(
        { name: 'v1', endpoints: ['http://a-v1-production.models.svc.cluster.local:8080'], weight: 1 },
        0,
      ),
    ).toEqual({
      name: 'a-v1-production',
      namespace: 'models',
      port: 8080,
    });
    expect(mirrorShare(5)).toEqual({ percent: 5 });
    expect(mirrorShare(0.5)).toEqual({ fraction: { numerator: 5000, denominator: 1_000_000 } });
    const r = httpRouteFor(
      'fraud',
      { variants: [{ name: 'v1', endpoints: ['http://s.models.svc'], weight: 100 }] },
      { namespace: 'models', parentRefs: [{ name: 'gw' }] },
    ) as any; // eslint-disable-line @typescript-eslint/no-explicit-any -- reading a nested manifest
    expect(r.spec.rules[0].backendRefs).toEqual([{ kind: 'Service', name: 's', port: 80, weight: 100 }]);
    expect(r.spec.rules[0].filters).toBeUndefined();
  });

  it('parses NAMESPACE/NAME', () => {
    expect(parseConfigMapRef('runway-system/runway-routes')).toEqual({
      namespace: 'runway-system',
      name: 'runway-routes',
    });
    expect(() => parseConfigMapRef('runway-routes')).toThrow(/expected NAMESPACE\/NAME/);
  });
});

describe('PromQL', () => {
  it('sums every router series of one model over replicas, quoting the label value', () => {
    const q = snapshotQuery('fr"aud', 'job="runway-router"');
    expect(q).toMatch(
      /^sum by \(__name__, variant, code_class, le, result, direction\) \(\{__name__=~"runway_router_requests_total\|/,
    );
    expect(q).toContain('model="fr\\"aud"');
    expect(q).toContain('job="runway-router"');
  });
});
