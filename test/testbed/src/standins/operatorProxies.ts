/**
 * Stand-in for two more things the Tailscale operator does for egress Services (tailscale.com
 * v1.102.5, paths relative to that module), next to operator.ts's status writes:
 *
 * - The proxy StatefulSet (cmd/k8s-operator/sts.go reconcileSTS with deploy/manifests/proxy.yaml):
 *   named like the headless proxy Service operator.ts creates, in the operator namespace, labelled
 *   with the same child-resource labels, selector `app: <parent Service UID>` (the headless
 *   Service's selector), one replica, ServiceAccount `proxies` (the chart's), one `tailscale`
 *   container with TS_TAILNET_TARGET_FQDN (or TS_TAILNET_TARGET_IP). kwok runs the pod like any
 *   other, so it gets a pod IP and the headless Service gets a ready endpoint. What the real proxy
 *   pod does on the tailnet (log in with an auth key, forward to the target) is the tailnet
 *   model's part (test/testbed/src/tailnet). The StatefulSet goes when its headless Service goes
 *   (sts.go Cleanup deletes the proxy's resources by their labels).
 *
 * - The records of the in-cluster ts.net nameserver (cmd/k8s-operator/dnsrecords.go): while
 *   exactly one DNSConfig exists and is Ready (k8s-operator/conditions.go DNSCfgIsReady: condition
 *   NameserverReady True at the current generation), the `dnsrecords` ConfigMap's `records.json`
 *   maps every egress Service's `tailscale.com/tailnet-fqdn` to the ready pod IPs of its proxy
 *   (EndpointSlices of the headless Service; dnsrecords.go getPodIPs, epIsReady), version
 *   `v1alpha1` (k8s-operator/utils.go Records). The real reconciler edits one name at a time
 *   and keeps a finalizer on the proxy Service to remove its record; the stand-in computes the
 *   whole map from the cluster's state on every change, which ends in the same records. If the
 *   ConfigMap does not exist it writes nothing (dnsrecords.go updateDNSConfig).
 */
import { isStatus, MERGE_PATCH } from '../kube/kubeClient';
import type { ClusterCache, Service } from '../kube/clusterCache';
import {
  LabelManaged,
  LabelParentName,
  LabelParentNamespace,
  LabelParentType,
} from './operatorReconcile';

const AnnotationTailnetTargetFQDN = 'tailscale.com/tailnet-fqdn';
const AnnotationTailnetTargetIP = 'tailscale.com/tailnet-ip';
const DNSRecordsKey = 'records.json';
/** operator.go: PROXY_IMAGE, the chart sets it to tailscale/tailscale:<appVersion>. */
const ProxyImage = 'tailscale/tailscale:v1.102.5';

export interface DnsRecords {
  version: string;
  ip4: Record<string, string[]>;
  ip6?: Record<string, string[]>;
}

/** Headless proxy Services the operator stand-in made for egress Services, with their parent. */
export function egressProxies(cache: ClusterCache): Array<{ proxy: Service; parent: Service; target: string }> {
  const out: Array<{ proxy: Service; parent: Service; target: string }> = [];
  for (const proxy of cache.services.cache.values()) {
    const labels = proxy.metadata.labels ?? {};
    if (proxy.metadata.namespace !== cache.operatorNamespace) continue;
    if (labels[LabelManaged] !== 'true' || labels[LabelParentType] !== 'svc') continue;
    if (proxy.metadata.deletionTimestamp) continue;
    const parent = cache.service(labels[LabelParentNamespace] ?? '', labels[LabelParentName] ?? '');
    const annotations = parent?.metadata.annotations ?? {};
    const target = annotations[AnnotationTailnetTargetFQDN] ?? annotations[AnnotationTailnetTargetIP];
    if (parent && target) out.push({ proxy, parent, target });
  }
  return out.sort((a, b) => a.proxy.metadata.name.localeCompare(b.proxy.metadata.name));
}

/** The `dnsrecords` content the operator would converge to, or undefined when it writes none. */
export function desiredDnsRecords(cache: ClusterCache): DnsRecords | undefined {
  const configs = [...cache.dnsConfigs.cache.values()];
  if (configs.length !== 1) return undefined;
  const ready = configs[0].status?.conditions?.some(c => c.type === 'NameserverReady' && c.status === 'True');
  if (!ready) return undefined;
  const ip4: Record<string, string[]> = {};
  for (const { proxy, parent } of egressProxies(cache)) {
    const fqdn = parent.metadata.annotations?.[AnnotationTailnetTargetFQDN];
    if (!fqdn) continue; // IP targets need no name (dnsrecords.go isInterestingService)
    const ips = cache.readyEndpoints(cache.operatorNamespace, proxy.metadata.name).map(e => e.ip);
    if (ips.length) ip4[fqdn] = [...new Set(ips)];
  }
  return { version: 'v1alpha1', ip4 };
}

function statefulSetFor(proxy: Service, parent: Service, target: string) {
  const labels = Object.fromEntries(
    [LabelManaged, LabelParentName, LabelParentNamespace, LabelParentType].map(k => [
      k,
      proxy.metadata.labels?.[k] ?? '',
    ]),
  );
  const app = proxy.spec?.selector?.app ?? parent.metadata.uid ?? '';
  const targetEnv = parent.metadata.annotations?.[AnnotationTailnetTargetFQDN]
    ? { name: 'TS_TAILNET_TARGET_FQDN', value: target }
    : { name: 'TS_TAILNET_TARGET_IP', value: target };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: proxy.metadata.name, namespace: proxy.metadata.namespace, labels },
    spec: {
      replicas: 1,
      serviceName: proxy.metadata.name,
      selector: { matchLabels: { app } },
      template: {
        metadata: { labels: { ...labels, app }, deletionGracePeriodSeconds: 10 },
        spec: {
          serviceAccountName: 'proxies',
          containers: [
            {
              name: 'tailscale',
              image: ProxyImage,
              env: [
                { name: 'TS_USERSPACE', value: 'false' },
                { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
                { name: 'TS_KUBE_SECRET', value: '$(POD_NAME)' },
                targetEnv,
              ],
              securityContext: { privileged: true },
            },
          ],
        },
      },
    },
  };
}

/** Keeps proxy StatefulSets and `dnsrecords` in step with one cluster; returns a stop function. */
export function startOperatorProxies(cache: ClusterCache, log: (msg: string) => void): () => void {
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  const opNs = encodeURIComponent(cache.operatorNamespace);
  const stsPath = `/apis/apps/v1/namespaces/${opNs}/statefulsets`;

  const reconcile = async () => {
    const proxies = egressProxies(cache);
    const wanted = new Set(proxies.map(p => p.proxy.metadata.name));
    for (const { proxy, parent, target } of proxies) {
      if (cache.operatorStatefulSets.cache.has(`${cache.operatorNamespace}/${proxy.metadata.name}`)) continue;
      try {
        await cache.rest.json('POST', stsPath, { body: statefulSetFor(proxy, parent, target) });
        log(`${cache.name}: created proxy StatefulSet ${cache.operatorNamespace}/${proxy.metadata.name} for ${target}`);
      } catch (err) {
        if (!isStatus(err, 409)) throw err;
      }
    }
    for (const sts of cache.operatorStatefulSets.cache.values()) {
      const labels = sts.metadata.labels ?? {};
      if (labels[LabelManaged] !== 'true' || labels[LabelParentType] !== 'svc') continue;
      if (wanted.has(sts.metadata.name) || sts.metadata.deletionTimestamp) continue;
      try {
        await cache.rest.json('DELETE', `${stsPath}/${encodeURIComponent(sts.metadata.name)}`, {
          body: { propagationPolicy: 'Foreground' },
        });
        log(`${cache.name}: deleted proxy StatefulSet ${cache.operatorNamespace}/${sts.metadata.name}`);
      } catch (err) {
        if (!isStatus(err, 404)) throw err;
      }
    }

    const records = desiredDnsRecords(cache);
    const cm = cache.dnsRecordsConfig.cache.get(`${cache.operatorNamespace}/dnsrecords`);
    if (!records || !cm) return;
    const text = JSON.stringify(records);
    if (cm.data?.[DNSRecordsKey] === text) return;
    const updated = await cache.rest.json<typeof cm>(
      'PATCH',
      `/api/v1/namespaces/${opNs}/configmaps/dnsrecords`,
      {
        body: { metadata: { resourceVersion: cm.metadata.resourceVersion }, data: { [DNSRecordsKey]: text } },
        contentType: MERGE_PATCH,
      },
    );
    cache.dnsRecordsConfig.observe(updated);
    log(`${cache.name}: dnsrecords ${Object.keys(records.ip4).join(', ') || '(none)'}`);
  };

  const kick = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = reconcile()
      .catch(err => {
        if (!stopped) {
          log(`${cache.name}: proxy reconcile failed: ${String(err)}; retrying`);
          setTimeout(kick, 1000).unref();
        }
      })
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          kick();
        }
      });
  };
  const unsubscribe = cache.onChange(kick);
  const resync = setInterval(kick, 30_000);
  resync.unref();
  kick();
  return () => {
    stopped = true;
    unsubscribe();
    clearInterval(resync);
  };
}
