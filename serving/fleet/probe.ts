/** Readiness as the Open Inference Protocol defines it, asked of one replica over loopback. */
import http from 'node:http';

function status(url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    // agent:false: no pooled sockets that would outlive the probe (or keep a test process open).
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/**
 * Ready AND serving the expected model version: the second check is what tells our replica
 * apart from whatever else might listen on a reused port.
 */
export async function replicaReady(
  endpoint: string,
  model: string,
  version: string,
  timeoutMs = 1_000,
): Promise<boolean> {
  if ((await status(`${endpoint}/v2/health/ready`, timeoutMs)) !== 200) return false;
  const path = `/v2/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(version)}/ready`;
  return (await status(`${endpoint}${path}`, timeoutMs)) === 200;
}
