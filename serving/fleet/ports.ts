/** Free loopback ports: ask the kernel for one, release it, hand it to a replica. */
import net from 'node:net';

/**
 * Racy by nature (another process may bind it before the replica does); the fleet retries on a
 * new port when a replica dies with EADDRINUSE.
 */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}
