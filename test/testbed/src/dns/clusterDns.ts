/**
 * One cluster's DNS as its pods see it, wired to the cluster's live state:
 * - the CoreDNS stand-in (coreDns.ts) on the cluster's kube-dns ClusterIP, answering from the
 *   cluster's Services and EndpointSlices and running the Corefile of `kube-system/coredns`, so
 *   whatever a program writes there (Tailmesh's tailnet stanza among it) is what resolution does;
 *   with the files of the ConfigMap volumes of Deployment `kube-system/coredns` where the cluster
 *   runs one (AKS: `coredns-custom` at /etc/coredns/custom, which its Corefile imports);
 * - where the cluster runs Deployment `kube-system/kube-dns` instead (GKE), the same stand-in
 *   running the Corefile that answers as kube-dns does with ConfigMap `kube-system/kube-dns`
 *   (kubeDns.ts): its stub domains (Tailmesh's tailnet among them) and upstream nameservers;
 * - the Tailscale nameserver stand-in (k8sNameserver.ts) on the ClusterIP of the operator's
 *   `nameserver` Service, while that Service exists and its Deployment has a ready pod (the real
 *   one is a pod behind that Service, kube-proxy routing :53 to its :1053), serving the records of
 *   the `dnsrecords` ConfigMap it mounts.
 * The "outside world" that `forward . /etc/resolv.conf` reaches answers NXDOMAIN: public DNS has
 * neither cluster-internal names nor the private names of a tailnet.
 */
import path from 'node:path';
import type { ClusterCache } from '../kube/clusterCache';
import { LoopbackAddresses } from '../network/loopbackAddresses';
import {
  startCoreDns,
  type CoreDns,
  type KubernetesRecordSource,
  type MountedFiles,
  type ServiceRecord,
} from './coreDns';
import { startK8sNameserver, type K8sNameserver } from './k8sNameserver';
import { kubeDnsCorefile, parseKubeDnsConfig } from './kubeDns';

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

/**
 * The files CoreDNS's pods see besides their Corefile: the ConfigMap volumes of Deployment
 * kube-system/coredns as the kubelet mounts them (every key a file under the mount path, or only
 * the volume's `items`; an optional ConfigMap that does not exist an empty directory). Without
 * that Deployment (the test bed's kubeadm shape) nothing else is mounted.
 */
function mountedFiles(cache: ClusterCache): MountedFiles {
  const files = new Map<string, string>();
  const spec = cache.kubeSystemDeployments.cache.get('kube-system/coredns')?.spec
    ?.template?.spec;
  const container =
    spec?.containers?.find(c => c.name === 'coredns') ?? spec?.containers?.[0];
  for (const mount of container?.volumeMounts ?? []) {
    const volume = spec?.volumes?.find(v => v.name === mount.name)?.configMap;
    if (!volume?.name || mount.subPath) continue;
    const data =
      cache.kubeSystemConfigMaps.cache.get(`kube-system/${volume.name}`)
        ?.data ?? {};
    const entries = volume.items
      ? volume.items
          .filter(i => i.key in data)
          .map(i => [i.path, data[i.key]] as const)
      : Object.entries(data);
    for (const [file, content] of entries)
      files.set(path.posix.join(mount.mountPath, file), content);
  }
  return files;
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
  // The kube-dns ConfigMap data last translated, while kube-dns is the cluster's DNS.
  let kubeDnsData: string | undefined;
  let mounted = '[]';
  let nameserver: { ip: string; server: K8sNameserver } | undefined;
  // What the nameserver was last given; `null` until it is given anything.
  let records: string | undefined | null = null;
  let busy = Promise.resolve();

  const sync = async () => {
    const files = mountedFiles(cache);
    const filesKey = JSON.stringify([...files]);
    if (filesKey !== mounted) {
      mounted = filesKey;
      coreDns.setFiles(files);
    }
    let text: string | undefined;
    const deployments = cache.kubeSystemDeployments.cache;
    if (deployments.get('kube-system/kube-dns') && !deployments.get('kube-system/coredns')) {
      // kube-dns answers: its configuration is ConfigMap kube-dns; one it ignores (invalid) keeps
      // the running one.
      const data = cache.kubeSystemConfigMaps.cache.get('kube-system/kube-dns')?.data;
      const key = JSON.stringify(data ?? null);
      if (key === kubeDnsData) {
        text = corefile;
      } else {
        // A kube-dns that starts with a configuration it cannot use runs the default one
        // (pkg/dnsmasq/nanny.go RunNanny).
        const starting = kubeDnsData === undefined;
        kubeDnsData = key;
        const config = parseKubeDnsConfig(data);
        if ('error' in config) {
          log(`${cache.name} kube-dns: ${config.error}`);
          text = starting ? kubeDnsCorefile({ stubDomains: {}, upstreamNameservers: [] }).corefile : corefile;
        } else {
          const translated = kubeDnsCorefile(config);
          for (const why of translated.skipped) log(`${cache.name} kube-dns: ${why}`);
          text = translated.corefile;
        }
      }
    } else {
      kubeDnsData = undefined;
      text = cache.kubeSystemConfigMaps.cache.get('kube-system/coredns')?.data?.Corefile;
    }
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
