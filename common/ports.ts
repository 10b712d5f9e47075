/** Loopback ports: ask the kernel for a free one, or whether a wanted one is free. */
import net from 'node:net';

/**
 * A port the kernel just handed out and released. Racy by nature (another process may bind it
 * first): whoever uses it retries on a new one when binding fails (the fleet does, on EADDRINUSE).
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
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

/** Whether `port` can be bound on `host` right now (a preferred port such as 8080 or 7233). */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}
