import fs from 'node:fs';
import type { Command } from 'commander';
import { createLogger } from '../../common/log';
import { watchRouteConfigMap } from '../../serving/router/configmap';
import { parseConfigMapRef } from '../../serving/traffic/configmap';
import { startRouter } from '../../serving/router/server';

function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`${flag} expects a non-negative integer, got "${value}"`);
    return n;
  };
}

function nonNegative(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} expects a number ≥ 0, got "${value}"`);
    return n;
  };
}

/** The token comes from a file (first line) or RUNWAY_ROUTER_TOKEN; it is never printed. */
function readToken(file: string | undefined): string | undefined {
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read --admin-token-file ${file}: ${(err as Error).message}`);
    }
    const token = text.split('\n')[0]?.trim();
    if (!token) throw new Error(`--admin-token-file ${file} is empty`);
    return token;
  }
  return process.env.RUNWAY_ROUTER_TOKEN?.trim() || undefined;
}

export function registerRouter(program: Command): void {
  program
    .command('router')
    .description('run the traffic router: weighted/sticky variants, mirroring, feedback, metrics, admin API')
    .option('--host <host>', 'address to listen on (non-loopback needs an admin token)', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 = any free port)', positiveInt('--port'), 8080)
    .option(
      '--grpc-port <port>',
      'also serve the OIP gRPC service on this port (0 = any free port; default: off); replicas need runway serve --grpc-port',
      positiveInt('--grpc-port'),
    )
    .option(
      '--admin-token-file <path>',
      'file whose first line is the admin bearer token (else RUNWAY_ROUTER_TOKEN)',
    )
    .option('--routes-file <path>', 'load routes from this JSON file at start and rewrite it on every change')
    .option(
      '--routes-configmap <namespace/name>',
      'in Kubernetes: routes come from this ConfigMap (one key per model), watched for changes',
    )
    .option(
      '--kubeconfig <path>',
      'kubeconfig for --routes-configmap (default: KUBECONFIG, ~/.kube/config, in-cluster)',
    )
    .option('--kube-context <name>', 'kubeconfig context for --routes-configmap')
    .option(
      '--upstream-timeout-ms <n>',
      'upstream header/body timeout; exceeded answers 504',
      positiveInt('--upstream-timeout-ms'),
      30_000,
    )
    .option(
      '--mirror-concurrency <n>',
      'shadow copies in flight at most; excess is dropped and counted',
      positiveInt('--mirror-concurrency'),
      64,
    )
    .option(
      '--shadow-tolerance <x>',
      'numeric tolerance (absolute or relative) for shadow agreement',
      nonNegative('--shadow-tolerance'),
      1e-4,
    )
    .option(
      '--max-body-bytes <n>',
      'largest request body accepted (413 above)',
      positiveInt('--max-body-bytes'),
      64 * 1024 * 1024,
    )
    .option(
      '--max-inflight-per-replica <n>',
      'requests in flight to one replica at most; beyond it the router answers 503 at once instead of queueing',
      positiveInt('--max-inflight-per-replica'),
      256,
    )
    .option(
      '--api-keys-file <path>',
      'require an API key on /v2/models/* and gRPC model calls: YAML of {id, sha256, models, rateLimit} per key (docs/security.md); reread on change or SIGHUP',
    )
    .action(
      async (opts: {
        host: string;
        port: number;
        grpcPort?: number;
        adminTokenFile?: string;
        routesFile?: string;
        routesConfigmap?: string;
        kubeconfig?: string;
        kubeContext?: string;
        upstreamTimeoutMs: number;
        mirrorConcurrency: number;
        shadowTolerance: number;
        maxBodyBytes: number;
        apiKeysFile?: string;
        maxInflightPerReplica: number;
      }) => {
        if (opts.maxInflightPerReplica < 1) throw new Error('--max-inflight-per-replica expects at least 1');
        const log = createLogger('router');
        if (opts.routesConfigmap && opts.routesFile) {
          throw new Error('--routes-file and --routes-configmap are exclusive: routes have one source');
        }
        const configMap = opts.routesConfigmap ? parseConfigMapRef(opts.routesConfigmap) : undefined;
        const router = await startRouter({
          host: opts.host,
          port: opts.port,
          ...(opts.grpcPort !== undefined ? { grpcPort: opts.grpcPort } : {}),
          adminToken: readToken(opts.adminTokenFile),
          routesFile: opts.routesFile,
          upstreamTimeoutMs: opts.upstreamTimeoutMs,
          mirrorConcurrency: opts.mirrorConcurrency,
          shadowTolerance: opts.shadowTolerance,
          maxBodyBytes: opts.maxBodyBytes,
          maxInFlightPerReplica: opts.maxInflightPerReplica,
          ...(opts.apiKeysFile ? { apiKeysFile: opts.apiKeysFile } : {}),
          logger: log,
        });
        // The ConfigMap is the source of truth: routes are loaded before the router reports ready.
        const watch = configMap
          ? watchRouteConfigMap({
              ref: configMap,
              connection: { kubeconfig: opts.kubeconfig, context: opts.kubeContext },
              apply: (routes) => router.replaceRoutes(routes),
              logger: log.child('configmap'),
            })
          : undefined;
        try {
          await watch?.ready;
        } catch (err) {
          await watch?.stop();
          await router.close();
          throw err;
        }
        // One machine-readable line on stdout so a parent process learns the port.
        process.stdout.write(
          `${JSON.stringify({ url: router.url, adminUrl: router.adminUrl, ...(router.grpcAddress ? { grpc: router.grpcAddress } : {}) })}\n`,
        );
        const stop = (signal: string): void => {
          log.info('stopping', { signal });
          void Promise.resolve(watch?.stop())
            .then(() => router.close())
            .then(() => process.exit(0));
        };
        // SIGHUP rereads the API keys file (also reread on change); without one it is only logged.
        process.on('SIGHUP', () => {
          if (router.reloadApiKeys) void router.reloadApiKeys();
          else log.info('SIGHUP ignored: no --api-keys-file');
        });
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      },
    );
}
