import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { readClusterSnapshot } from './readClusterSnapshot';

/** Accepts every connection and never sends a byte, like a hung apiserver. */
async function silentServer() {
  const sockets = new Set<net.Socket>();
  const server = net.createServer(s => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>(resolve => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('readClusterSnapshot', () => {
  it('reports a cluster that accepts connections and never answers as a timeout, in time', async () => {
    const silent = await silentServer();
    try {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'hung', server: silent.url, skipTLSVerify: true }],
        users: [{ name: 'hung', token: 'secret-token' }],
        contexts: [{ name: 'hung', cluster: 'hung', user: 'hung' }],
        currentContext: 'hung',
      });
      const started = Date.now();
      const snapshot = await readClusterSnapshot(kc, 'hung', {
        timeoutMs: 300,
      });
      const ms = Date.now() - started;
      expect(snapshot).toEqual({
        cluster: 'hung',
        error: {
          kind: 'timeout',
          message: `hung: ${silent.url} did not answer in time`,
        },
        remoteSecretsFor: [],
        egressFor: [],
      });
      expect(ms).toBeGreaterThanOrEqual(280);
      expect(ms).toBeLessThan(1_500);
    } finally {
      await silent.close();
    }
  });
});
