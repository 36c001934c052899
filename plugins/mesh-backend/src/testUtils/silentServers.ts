import http from 'node:http';
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

/** A listening server and how to reach and close it. */
export interface TestServer {
  url: string;
  close(): Promise<void>;
}

function listen(server: net.Server, scheme: string): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  server.on('connection', s => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise(resolve => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        url: `${scheme}://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>(done => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/**
 * A TCP server that accepts every connection and never sends a byte: what a hung apiserver, or a
 * proxy in front of a dead one, looks like to a client (TLS handshakes never finish either).
 */
export function silentServer(scheme: 'http' | 'https'): Promise<TestServer> {
  return listen(net.createServer(), scheme);
}

/** An HTTP server that sends a 200 and its headers, then nothing more. */
export function stallingServer(): Promise<TestServer> {
  return listen(
    http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
    }),
    'http',
  );
}

/** A kubeconfig for a test server (TLS unverified: test servers have no certificate at all). */
export function kubeConfigFor(
  name: string,
  server: { url: string },
): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name, server: server.url, skipTLSVerify: true }],
    users: [{ name, token: 'test-token' }],
    contexts: [{ name, cluster: name, user: name }],
    currentContext: name,
  });
  return kc;
}
