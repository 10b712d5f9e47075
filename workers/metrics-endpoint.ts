/**
 * `GET /metrics` of the worker, for Prometheus (platform config `worker.metricsListen`): the
 * promotions it ended and the notifications it sent (activities/metrics.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsEndpoint {
  url: string;
  close(): Promise<void>;
}

export async function serveWorkerMetrics(listen: string, registry: Registry): Promise<MetricsEndpoint> {
  const at = listen.lastIndexOf(':');
  const host = listen.slice(0, at) || '127.0.0.1';
  const port = Number(listen.slice(at + 1));
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"only GET /metrics here"}');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/metrics`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
