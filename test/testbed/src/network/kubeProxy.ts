/**
 * The test bed's kube-proxy, for the Services whose ClusterIP the processes it runs connect to:
 * istiod's (`istiod` and `istiod-<revision>` in istio-system). A proxy dials
 * `istiod.istio-system.svc:15012` (the injector's `discoveryAddress`), and kube-proxy sends each
 * new connection to a ready endpoint of the Service as it is at that moment, so a restarted istiod
 * (a new pod, a new pod IP) is reached again on the next reconnect, as Envoy reconnects in a
 * cluster. Here each such ClusterIP is an address on the namespace's loopback listening on the
 * Service's TCP ports; every accepted connection is piped to a ready endpoint's target port, read
 * from the cluster's watch cache at accept time (kube-proxy's random pick among ready endpoints,
 * kubernetes `pkg/proxy/iptables/proxier.go`). ClusterIPs of the test bed's clusters never overlap
 * (each has its own service CIDR, layout.ts), so one namespace holds them all.
 */
import net from 'node:net';
import type { ClusterCache, Service } from '../kube/clusterCache';
import { pipeTo, targetPort } from './forward';
import { LoopbackAddresses } from './loopbackAddresses';

export interface KubeProxy {
  stop(): Promise<void>;
}

/** istiod's Services: the ones the data plane and istiod's own clients reach by ClusterIP. */
export function isProxiedService(svc: Service): boolean {
  return (
    svc.metadata.namespace === 'istio-system' &&
    /^istiod(-[a-z0-9-]+)?$/.test(svc.metadata.name) &&
    !svc.metadata.deletionTimestamp &&
    typeof svc.spec?.clusterIP === 'string' &&
    svc.spec.clusterIP !== 'None' &&
    svc.spec.clusterIP !== ''
  );
}

export function startKubeProxy(
  caches: ClusterCache[],
  addresses: LoopbackAddresses,
  log: (msg: string) => void,
): KubeProxy {
  // key `<clusterIP>:<port>` -> listening server
  const servers = new Map<string, { server: net.Server; ip: string }>();
  let stopped = false;
  let running: Promise<void> = Promise.resolve();

  // A reset is logged at most every 5 s per ClusterIP:port: enough to tell, in the test bed's log,
  // why a client could not reach istiod, without a line per retry.
  const lastNote = new Map<string, number>();
  const note = (key: string, msg: string) => {
    const now = Date.now();
    if (now - (lastNote.get(key) ?? 0) < 5000) return;
    lastNote.set(key, now);
    log(`kube-proxy: ${msg}`);
  };

  const desired = () => {
    const out = new Map<
      string,
      {
        cache: ClusterCache;
        svc: Service;
        port: { name?: string; port: number; targetPort?: number | string };
      }
    >();
    for (const cache of caches) {
      for (const svc of cache.services.cache.values()) {
        if (!isProxiedService(svc)) continue;
        for (const p of svc.spec?.ports ?? []) {
          if ((p.protocol ?? 'TCP') !== 'TCP') continue;
          out.set(`${svc.spec!.clusterIP}:${p.port}`, { cache, svc, port: p });
        }
      }
    }
    return out;
  };

  const reconcile = async () => {
    if (stopped) return;
    const want = desired();
    for (const [key, { server, ip }] of servers) {
      if (want.has(key)) continue;
      servers.delete(key);
      // Stop accepting, without waiting for the connections already piped: server.close()'s
      // callback waits for every one of them to end, and one long-lived stream (a proxy's ADS
      // connection) would then hold this reconcile, and with it every later Service's listener
      // (an istiod Service deleted and created again would never be listened on). kube-proxy too
      // leaves established flows to conntrack when a Service goes.
      server.close();
      await addresses.release(ip);
    }
    for (const [key, { cache, svc, port }] of want) {
      if (servers.has(key)) continue;
      const ip = svc.spec!.clusterIP!;
      const namespace = svc.metadata.namespace ?? '';
      const name = svc.metadata.name;
      const server = net.createServer(socket => {
        const ready = cache.readyEndpoints(namespace, name);
        const target = ready[Math.floor(Math.random() * ready.length)];
        const to = target && targetPort(port, target.ports);
        if (!target || to === undefined) {
          // No ready endpoint: kube-proxy rejects (ICMP unreachable), the caller sees a reset.
          note(
            key,
            `${cache.name} ${namespace}/${name} ${key}: no ready endpoint, connection reset`,
          );
          socket.resetAndDestroy();
          return;
        }
        pipeTo(socket, target.ip, to, undefined, err =>
          note(
            key,
            `${cache.name} ${namespace}/${name} ${key} -> ${target.ip}:${to}: ${err.message}, connection reset`,
          ),
        );
      });
      servers.set(key, { server, ip });
      await addresses.acquire(ip);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port.port, ip, () => {
          server.off('error', reject);
          resolve();
        });
      }).catch(e => {
        servers.delete(key);
        log(
          `kube-proxy: ${cache.name} ${namespace}/${name} ${key}: cannot listen: ${(e as Error).message}`,
        );
      });
    }
  };

  const kick = () => {
    running = running.then(reconcile, reconcile);
  };
  const unsubscribe = caches.map(c => c.onChange(kick));
  kick();

  return {
    async stop() {
      stopped = true;
      for (const u of unsubscribe) u();
      await running.catch(() => undefined);
      for (const { server, ip } of servers.values()) {
        await new Promise<void>(resolve => server.close(() => resolve()));
        await addresses.release(ip);
      }
      servers.clear();
    },
  };
}
