import type { Command } from 'commander';
import { startModelServer } from '../../serving/server';

const int =
  (flag: string) =>
  (value: string): number => {
    if (!/^\d+$/.test(value)) throw new Error(`${flag}: expected a non-negative integer, got "${value}"`);
    return Number(value);
  };
const num =
  (flag: string) =>
  (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n))
      throw new Error(`${flag}: expected a number, got "${value}"`);
    return n;
  };
const sizes = (value: string): number[] =>
  value === ''
    ? []
    : value.split(',').map((s) => {
        if (!/^\d+$/.test(s.trim()))
          throw new Error(`--preferred-batch-sizes: "${s}" is not a positive integer`);
        return Number(s.trim());
      });

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve an ONNX model over the Open Inference Protocol v2 with dynamic batching')
    .requiredOption('--model <path>', 'ONNX model file')
    .requiredOption('--name <name>', 'model name in the API')
    .option('--version <v>', 'model version in the API', '1')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port to bind (0 picks a free one)', int('--port'), 8000)
    .option(
      '--grpc-port <port>',
      'also serve the OIP gRPC service (inference.GRPCInferenceService) on this port (0 picks a free one; default: off)',
      int('--grpc-port'),
    )
    .option('--grpc-host <host>', 'address the gRPC service binds (default: --host)')
    .option(
      '--grpc-tls-cert <file>',
      'a PEM certificate chain: the gRPC service speaks TLS (with --grpc-tls-key)',
    )
    .option('--grpc-tls-key <file>', 'the PEM private key of --grpc-tls-cert')
    .option(
      '--max-batch-size <n>',
      'largest merged batch (1 turns batching off)',
      int('--max-batch-size'),
      32,
    )
    .option(
      '--preferred-batch-sizes <list>',
      'batch sizes dispatched without waiting, e.g. 8,16',
      sizes,
      [8, 16],
    )
    .option('--max-queue-delay-ms <ms>', 'longest wait for a fuller batch', num('--max-queue-delay-ms'), 2)
    .option('--max-queue-size <n>', 'queued requests before new ones get 503', int('--max-queue-size'), 1024)
    .option('--strict-queue-delay', 'always wait the full queue delay, even with no other request on its way')
    .option('--instances <n>', 'model instances (worker threads, one session each)', int('--instances'), 1)
    .option('--device <device>', 'cpu or cuda (falls back to cpu when CUDA cannot load)', 'cpu')
    .option('--threads <n>', 'intra-op threads per instance (default: cores / instances)', int('--threads'))
    .option(
      '--spin-wait',
      "let onnxruntime's idle threads spin-wait for work (lower latency for a lone client on a dedicated machine; takes cores under load)",
    )
    .option('--sha256 <hex>', 'refuse to start unless the model file has this digest')
    .option(
      '--max-body-bytes <n>',
      'largest HTTP request body and gRPC request message (larger: 400 / RESOURCE_EXHAUSTED)',
      int('--max-body-bytes'),
      64 * 1024 * 1024,
    )
    .option(
      '--request-timeout-ms <ms>',
      'default queue timeout per request (0: none)',
      num('--request-timeout-ms'),
      0,
    )
    .option(
      '--request-log-sample <share>',
      'share of successful inference requests logged, 0..1 (failures: up to 10/s)',
      num('--request-log-sample'),
      0.01,
    )
    .option(
      '--drift-reference <json|file>',
      'reference bins (from the evaluation data) for per-feature input and prediction histograms',
    )
    .option('--request-log-inputs', 'log input values (default: a sha256 digest of each input, never values)')
    .action(async (flags: Record<string, unknown>) => {
      if (flags.device !== 'cpu' && flags.device !== 'cuda') {
        throw new Error(`--device: expected cpu or cuda, got "${String(flags.device)}"`);
      }
      const server = await startModelServer({
        model: flags.model as string,
        name: flags.name as string,
        version: flags.version as string,
        host: flags.host as string,
        port: flags.port as number,
        ...(flags.grpcPort !== undefined ? { grpcPort: flags.grpcPort as number } : {}),
        ...(flags.grpcHost !== undefined ? { grpcHost: flags.grpcHost as string } : {}),
        ...(flags.grpcTlsCert !== undefined ? { grpcTlsCert: flags.grpcTlsCert as string } : {}),
        ...(flags.grpcTlsKey !== undefined ? { grpcTlsKey: flags.grpcTlsKey as string } : {}),
        maxBatchSize: flags.maxBatchSize as number,
        preferredBatchSizes: flags.preferredBatchSizes as number[],
        maxQueueDelayMs: flags.maxQueueDelayMs as number,
        maxQueueSize: flags.maxQueueSize as number,
        strictQueueDelay: flags.strictQueueDelay === true,
        instances: flags.instances as number,
        device: flags.device,
        ...(flags.threads !== undefined ? { threads: flags.threads as number } : {}),
        spinWait: flags.spinWait === true,
        ...(flags.sha256 !== undefined ? { sha256: flags.sha256 as string } : {}),
        maxBodyBytes: flags.maxBodyBytes as number,
        requestTimeoutMs: flags.requestTimeoutMs as number,
        requestLogSample: flags.requestLogSample as number,
        requestLogInputs: flags.requestLogInputs === true,
        ...(flags.driftReference !== undefined ? { driftReference: flags.driftReference as string } : {}),
      });
      const grpcNote = server.grpc ? `, grpc${server.grpc.tls ? 's' : ''} at ${server.grpc.address}` : '';
      process.stdout.write(
        `runway serve: ready at ${server.url} (model ${flags.name as string}, provider ${server.provider})${grpcNote}\n`,
      );
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`runway serve: ${signal} received, draining\n`);
        server.close().then(
          () => process.exit(0),
          (err: unknown) => {
            process.stderr.write(`runway serve: shutdown failed: ${(err as Error).message}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
