/**
 * One cluster's DNS as its pods see it, wired to the cluster's live state:
 * - the CoreDNS stand-in (coreDns.ts) on the cluster's kube-dns ClusterIP, answering from the
 *   cluster's Services and EndpointSlices and running the Corefile of `kube-system/coredns`, so
 *   whatever a program writes there (Tailmesh's tailnet stanza among it) is what resolution does;
 * - the Tailscale nameserver stand-in (k8sNameserver.ts) on the ClusterIP of the operator's
 *   `nameserver` Service, while that Service exists and its Deployment has a ready pod (the real
 *   one is a pod behind that Service, kube-proxy routing :53 to its :1053), serving the records of
 *   the `dnsrecords` ConfigMap it mounts.
 * The "outside world" that `forward . /etc/resolv.conf` reaches answers NXDOMAIN: public DNS has
 * neither cluster-internal names nor the private names of a tailnet.
 */
import type { ClusterCache } from '../kube/clusterCache';
import { LoopbackAddresses } from '../network/loopbackAddresses';
import {
  startCoreDns,
  type CoreDns,
  type KubernetesRecordSource,
  type ServiceRecord,
} from './coreDns';
import { startK8sNameserver, type K8sNameserver } from './k8sNameserver';

export interface ClusterDns {
  stop(): Promise<void>;
}

function recordSource(cache: ClusterCache): KubernetesRecordSource {
  return {
    service(namespace, name): ServiceRecord | undefined {
      const svc = cache.service(namespace, name);
      if (!svc) return undefined;
      const type = (svc.spec?.type ?? 'ClusterIP') as ServiceRecord['type'];
      const headless = svc.spec?.clusterIP === 'None';
      const clusterIPs = headless
        ? []
        : (
            svc.spec?.clusterIPs ??
            (svc.spec?.clusterIP ? [svc.spec.clusterIP] : [])
          ).filter(ip => ip !== 'None');
      const endpoints = cache
        .readyEndpoints(namespace, name)
        .map(e => ({ ip: e.ip, hostname: e.hostname, ready: true }));
      return {
        namespace,
        name,
        clusterIPs,
        headless,
        endpoints,
        type,
        externalName: svc.spec?.externalName,
        ports: (svc.spec?.ports ?? []).map(p => ({
          name: p.name,
          port: p.port,
          protocol: p.protocol ?? 'TCP',
        })),
      };
    },
    namespaceExists: namespace => cache.namespaceHasServices(namespace),
  };
}

export async function startClusterDns(
  cache: ClusterCache,
  dnsIp: string,
  addresses: LoopbackAddresses,
  log: (msg: string) => void,
): Promise<ClusterDns> {
  await addresses.acquire(dnsIp);
  const coreDns: CoreDns = await startCoreDns({
    host: dnsIp,
    kubernetes: recordSource(cache),
    log: msg => log(`${cache.name} coredns: ${msg}`),
  });
  let corefile: string | undefined;
  let nameserver: { ip: string; server: K8sNameserver } | undefined;
  // What the nameserver was last given; `null` until it is given anything.
  let records: string | undefined | null = null;
  let busy = Promise.resolve();

  const sync = async () => {
    const cm = cache.coreDnsConfig.cache.get('kube-system/coredns');
    const text = cm?.data?.Corefile;
    if (text !== undefined && text !== corefile) {
      corefile = text;
      coreDns.setCorefile(text);
    }
    const svc = cache.service(cache.operatorNamespace, 'nameserver');
    const ip = svc?.spec?.clusterIP;
    const serving =
      !!ip &&
      ip !== 'None' &&
      cache.readyEndpoints(cache.operatorNamespace, 'nameserver').length > 0;
    if (nameserver && (!serving || nameserver.ip !== ip)) {
      await nameserver.server.close();
      await addresses.release(nameserver.ip);
      log(`${cache.name}: ts.net nameserver on ${nameserver.ip} stopped`);
      nameserver = undefined;
      records = null;
    }
    if (serving && ip && !nameserver) {
      await addresses.acquire(ip);
      nameserver = {
        ip,
        server: await startK8sNameserver({
          host: ip,
          log: msg => log(`${cache.name} nameserver: ${msg}`),
        }),
      };
      log(`${cache.name}: ts.net nameserver on ${ip}`);
    }
    if (nameserver) {
      const next = cache.dnsRecordsConfig.cache.get(
        `${cache.operatorNamespace}/dnsrecords`,
      )?.data?.['records.json'];
      if (next !== records) {
        records = next;
        nameserver.server.setRecords(next);
      }
    }
  };
  const kick = () => {
    busy = busy
      .then(sync)
      .catch(err => log(`${cache.name} dns: ${String(err)}`));
  };
  const unsubscribe = cache.onChange(kick);
  kick();
  return {
    async stop() {
      unsubscribe();
      await busy;
      if (nameserver) {
        await nameserver.server.close();
        await addresses.release(nameserver.ip).catch(() => undefined);
      }
      await coreDns.close();
      await addresses.release(dnsIp).catch(() => undefined);
    },
  };
}
