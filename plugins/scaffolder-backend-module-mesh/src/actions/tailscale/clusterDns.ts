import {
  AppsV1Api,
  CoreV1Api,
  V1ConfigMap,
  V1Deployment,
} from '@kubernetes/client-node';
import {
  COREDNS_CONFIGMAP,
  COREDNS_COREFILE_KEY,
  KUBE_SYSTEM_NAMESPACE,
} from '@tailmesh/plugin-mesh-common';
import { isNotFound } from '../../service/kubeErrors';
import { TargetCluster } from '../../service/MeshActionDeps';
import { tailnetStanza } from './corefile';

/** AKS's ConfigMap whose `*.server` keys its CoreDNS imports as server blocks. */
export const AKS_COREDNS_CUSTOM_CONFIGMAP = 'coredns-custom';
/** GKE's kube-dns ConfigMap, whose `stubDomains` forward a domain to other nameservers. */
export const KUBE_DNS_CONFIGMAP = 'kube-dns';
const KUBE_DNS_DEPLOYMENT = 'kube-dns';
const COREDNS_DEPLOYMENT = 'coredns';

/** The addon manager's label: `Reconcile` puts every edit of the object back. */
const ADDON_MANAGER_MODE = 'addonmanager.kubernetes.io/mode';
/** EKS labels the CoreDNS it ships with this; its managed add-on applies as field manager `eks`. */
const EKS_COMPONENT = 'eks.amazonaws.com/component';

/**
 * How a cluster's DNS can be told to forward the tailnet's domain:
 * - `corefile`: a CoreDNS whose Corefile is the cluster's own (kubeadm, kind, most self-run
 *   clusters): Tailmesh edits it.
 * - `aks-custom`: the Corefile belongs to the addon manager and imports `custom/*.server` from the
 *   `coredns-custom` ConfigMap (AKS: https://learn.microsoft.com/azure/aks/coredns-custom):
 *   Tailmesh writes its server block there and restarts CoreDNS, as AKS documents.
 * - `kube-dns`: no CoreDNS but kube-dns (GKE's default): a stub domain in ConfigMap kube-dns
 *   (https://cloud.google.com/kubernetes-engine/docs/how-to/kube-dns), which kube-dns reloads.
 * - `eks-addon`: CoreDNS of the EKS managed add-on: a Corefile edit is lost at the add-on's next
 *   update, so the admin adds the block through the add-on's configuration values.
 * - `reconciled`: a Corefile the addon manager puts back, with no import to write to.
 * - `none`: neither CoreDNS nor kube-dns.
 */
export type ClusterDnsKind =
  'corefile' | 'aks-custom' | 'kube-dns' | 'eks-addon' | 'reconciled' | 'none';

export interface ClusterDns {
  kind: ClusterDnsKind;
  coredns?: V1ConfigMap;
  custom?: V1ConfigMap;
  kubeDns?: V1ConfigMap;
}

const IMPORT_CUSTOM_SERVER = /^\s*import\s+custom\/\*\.server\s*$/m;

const managedByEks = (obj?: { metadata?: V1Deployment['metadata'] }) =>
  obj?.metadata?.labels?.[EKS_COMPONENT] === 'coredns' &&
  (obj.metadata.managedFields ?? []).some(f => f.manager === 'eks');

/** Reads, and writes nothing: which of the kinds above the cluster's DNS is. */
export async function detectClusterDns(
  target: TargetCluster,
): Promise<ClusterDns> {
  const core = target.kc.makeApiClient(CoreV1Api);
  const apps = target.kc.makeApiClient(AppsV1Api);
  const optional = async <T>(read: () => Promise<T>) => {
    try {
      return await read();
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  };
  const configMap = (name: string) =>
    optional(() =>
      core.readNamespacedConfigMap({ name, namespace: KUBE_SYSTEM_NAMESPACE }),
    );
  const deployment = (name: string) =>
    optional(() =>
      apps.readNamespacedDeployment({ name, namespace: KUBE_SYSTEM_NAMESPACE }),
    );

  const coredns = await configMap(COREDNS_CONFIGMAP);
  if (coredns?.data?.[COREDNS_COREFILE_KEY] !== undefined) {
    const corefile = coredns.data[COREDNS_COREFILE_KEY];
    if (
      managedByEks(coredns) ||
      managedByEks(await deployment(COREDNS_DEPLOYMENT))
    )
      return { kind: 'eks-addon', coredns };
    if (coredns.metadata?.labels?.[ADDON_MANAGER_MODE] === 'Reconcile') {
      return IMPORT_CUSTOM_SERVER.test(corefile)
        ? {
            kind: 'aks-custom',
            coredns,
            custom: await configMap(AKS_COREDNS_CUSTOM_CONFIGMAP),
          }
        : { kind: 'reconciled', coredns };
    }
    return { kind: 'corefile', coredns };
  }
  if (await deployment(KUBE_DNS_DEPLOYMENT))
    return { kind: 'kube-dns', kubeDns: await configMap(KUBE_DNS_CONFIGMAP) };
  return { kind: 'none' };
}

/** The `coredns-custom` key that holds Tailmesh's server block for a tailnet. */
export const customServerKey = (tailnet: string) =>
  `tailmesh-${tailnet.replace(/\./g, '-')}.server`;

/**
 * `stubDomains` of a kube-dns ConfigMap with the tailnet forwarded to `ip`; others kept. The
 * outcome is the tailnet's own entry's: `added` where it had none (the admin's stub domains
 * beside it do not make it an update), `updated` where it pointed elsewhere.
 */
export function withStubDomain(
  current: string | undefined,
  tailnet: string,
  ip: string,
): { text: string; outcome: 'added' | 'updated' | 'unchanged' } {
  let domains: Record<string, unknown> = {};
  if (current?.trim()) {
    try {
      const parsed: unknown = JSON.parse(current);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
        domains = parsed as Record<string, unknown>;
      else throw new Error('not an object');
    } catch (e) {
      throw new Error(
        `ConfigMap ${KUBE_SYSTEM_NAMESPACE}/${KUBE_DNS_CONFIGMAP} has stubDomains that are not a JSON object (${(e as Error).message}); fix them by hand, then run again. Nothing was written`,
      );
    }
  }
  const want = [ip];
  const outcome = !Object.prototype.hasOwnProperty.call(domains, tailnet)
    ? 'added'
    : JSON.stringify(domains[tailnet]) !== JSON.stringify(want)
      ? 'updated'
      : 'unchanged';
  return { text: JSON.stringify({ ...domains, [tailnet]: want }), outcome };
}

/** What the admin must do where Tailmesh cannot write the cluster's DNS configuration itself. */
export function manualDnsInstructions(
  dns: ClusterDnsKind,
  cluster: string,
  tailnet: string,
  ip: string,
): string {
  const block = tailnetStanza(tailnet, ip);
  switch (dns) {
    case 'eks-addon':
      return `${cluster} runs CoreDNS as the EKS managed add-on: an edit of its Corefile is lost at the add-on's next update, so Tailmesh does not make one. Add this server block to the add-on's configuration values ("corefile", https://docs.aws.amazon.com/eks/latest/userguide/coredns-add-on-update.html), then run again:\n${block}`;
    case 'reconciled':
      return `${cluster}'s Corefile is labelled ${ADDON_MANAGER_MODE}=Reconcile, so the addon manager puts every edit back, and it imports no custom server blocks. Add this server block where that cluster's provider lets you extend CoreDNS, then run again:\n${block}`;
    default:
      return `${cluster} runs neither CoreDNS (ConfigMap ${KUBE_SYSTEM_NAMESPACE}/${COREDNS_CONFIGMAP}) nor kube-dns (Deployment ${KUBE_SYSTEM_NAMESPACE}/${KUBE_DNS_DEPLOYMENT}); make its DNS forward ${tailnet} to ${ip}, then run again`;
  }
}

/** Whether a configuration Tailmesh could not write already forwards the tailnet to `ip`. */
export function forwardsTailnet(
  corefile: string | undefined,
  tailnet: string,
  ip: string,
): boolean {
  if (!corefile) return false;
  const escaped = tailnet.replace(/\./g, '\\.');
  const block = new RegExp(
    `(^|\\s)${escaped}\\.?(:53)?\\s*\\{[^}]*\\bforward\\s+\\.\\s+${ip.replace(/\./g, '\\.')}(\\s|$)`,
    'm',
  );
  return block.test(corefile);
}
