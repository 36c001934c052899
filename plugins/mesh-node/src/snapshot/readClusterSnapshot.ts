import { X509Certificate } from 'node:crypto';
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  NetworkingV1Api,
  V1Deployment,
} from '@kubernetes/client-node';
import {
  ANNOTATION_ISTIO_CLUSTER,
  CACERTS_KEYS,
  CACERTS_SECRET,
  COREDNS_CONFIGMAP,
  COREDNS_COREFILE_KEY,
  EAST_WEST_GATEWAY_SERVICE,
  EGRESS_SERVICE_NAMESPACE,
  ISTIO_CA_ROOT_CERT_CONFIGMAP,
  ISTIO_CA_ROOT_CERT_KEY,
  ISTIO_MESH_CONFIGMAP,
  ISTIO_MESH_NETWORKS_KEY,
  ISTIO_MULTI_CLUSTER_VALUE,
  ISTIO_NAMESPACE,
  ISTIOD_DEPLOYMENT,
  ISTIOD_MONITORING_PORT_NAME,
  ISTIOD_SERVICE,
  IstiodRemoteView,
  KUBE_SYSTEM_NAMESPACE,
  LABEL_ISTIO_MULTI_CLUSTER,
  LABEL_ISTIO_NETWORK,
  LABEL_MESH_ID,
  LABEL_PEER,
  MeshClusterSnapshot,
  TAILSCALE_NAMESPACE,
  TAILSCALE_OPERATOR_DEPLOYMENT,
  TAILSCALE_PROXY_READY_CONDITION,
  apiEgressOpenTo,
  clusterOfRemoteSecret,
  corefileHasTailnetStanza,
  egressTargetOf,
  parseIstiodRemoteSync,
  parseMeshNetworks,
} from '@tailmesh/plugin-mesh-common';
import { parse } from 'yaml';
import { describeClusterError } from '../clusters/describeClusterError';
import { networkPolicyView } from './networkPolicyView';
import {
  DEFAULT_CLUSTER_REQUEST_TIMEOUT_SECONDS,
  makeApiClientWithTimeout,
} from '../clusters/requestTimeout';

const notFound = (e: unknown) => (e as { code?: unknown })?.code === 404;

async function orUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (e) {
    if (notFound(e)) return undefined;
    throw e;
  }
}

/**
 * The SHA-256 fingerprint of a PEM certificate, as openssl prints it.
 *
 * @public
 */
export function certificateFingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/**
 * When a PEM certificate expires (ISO 8601); undefined when it is not one.
 *
 * @public
 */
export function certificateNotAfter(
  pem: string | undefined,
): string | undefined {
  if (!pem) return undefined;
  try {
    return new Date(new X509Certificate(pem).validTo).toISOString();
  } catch {
    return undefined;
  }
}

/**
 * Whether a Deployment serves: Available with every wanted replica ready. One scaled to zero does
 * not: for istiod or the Tailscale operator that is an outage, not a healthy idle state.
 *
 * @public
 */
export function deploymentReady(d: V1Deployment): boolean {
  const { ready, desired } = deploymentReplicas(d);
  return (
    desired > 0 &&
    ready >= desired &&
    (d.status?.conditions ?? []).some(
      c => c.type === 'Available' && c.status === 'True',
    )
  );
}

/**
 * Replicas of a Deployment that are ready, and how many it asks for (Kubernetes' default of one
 * when `spec.replicas` is unset).
 *
 * @public
 */
export function deploymentReplicas(d: V1Deployment): {
  ready: number;
  desired: number;
} {
  return {
    ready: d.status?.readyReplicas ?? 0,
    desired: d.spec?.replicas ?? 1,
  };
}

/**
 * The image tag of a Deployment's first container: istiod's version.
 *
 * @public
 */
export function imageTag(d: V1Deployment): string | undefined {
  const image = d.spec?.template.spec?.containers[0]?.image;
  const tag = image?.split('/').pop()?.split(':')[1];
  return tag || undefined;
}

/**
 * What istiod itself reports about its remote clusters: its metrics through the API server's
 * service proxy (see mesh-common istiodView.ts). A failure to read them is part of the answer
 * (`unreadable`, e.g. RBAC without `services/proxy`), not a failure to read the cluster.
 *
 * @public
 */
export async function readIstiodRemoteView(
  core: Pick<CoreV1Api, 'connectGetNamespacedServiceProxyWithPath'>,
  cluster: string,
  server: string,
): Promise<IstiodRemoteView> {
  const readAt = new Date().toISOString();
  try {
    const text = await core.connectGetNamespacedServiceProxyWithPath({
      name: `${ISTIOD_SERVICE}:${ISTIOD_MONITORING_PORT_NAME}`,
      namespace: ISTIO_NAMESPACE,
      path: 'metrics',
    });
    const remotes = parseIstiodRemoteSync(String(text));
    return remotes
      ? { state: 'reported', readAt, remotes }
      : { state: 'not-reported', readAt, remotes: [] };
  } catch (e) {
    return {
      state: 'unreadable',
      readAt,
      remotes: [],
      error: describeClusterError(cluster, server, e).message,
    };
  }
}

/**
 * Reads one cluster's mesh state directly from its API server (for `mesh:verify`; the backend
 * builds the same snapshot from its watch caches). Remote secrets are read by label and judged by
 * their annotation; their kubeconfigs are not looked at. Every request gives up after
 * `timeoutMs` (default `DEFAULT_CLUSTER_REQUEST_TIMEOUT_SECONDS`), so a cluster that never
 * answers yields a `timeout` error instead of hanging its caller.
 *
 * @public
 */
export async function readClusterSnapshot(
  kc: KubeConfig,
  cluster: string,
  opts: { tailnet?: string; timeoutMs?: number } = {},
): Promise<MeshClusterSnapshot> {
  const timeoutMs =
    opts.timeoutMs ?? DEFAULT_CLUSTER_REQUEST_TIMEOUT_SECONDS * 1000;
  const core = makeApiClientWithTimeout(kc, CoreV1Api, timeoutMs);
  const apps = makeApiClientWithTimeout(kc, AppsV1Api, timeoutMs);
  const networking = makeApiClientWithTimeout(kc, NetworkingV1Api, timeoutMs);
  const server = kc.getCurrentCluster()?.server ?? '';
  try {
    const [
      ns,
      istiod,
      operator,
      gateway,
      rootCm,
      meshCm,
      remoteSecrets,
      egress,
      coredns,
      policies,
    ] = await Promise.all([
      orUndefined(() => core.readNamespace({ name: ISTIO_NAMESPACE })),
      orUndefined(() =>
        apps.readNamespacedDeployment({
          name: ISTIOD_DEPLOYMENT,
          namespace: ISTIO_NAMESPACE,
        }),
      ),
      orUndefined(() =>
        apps.readNamespacedDeployment({
          name: TAILSCALE_OPERATOR_DEPLOYMENT,
          namespace: TAILSCALE_NAMESPACE,
        }),
      ),
      orUndefined(() =>
        core.readNamespacedService({
          name: EAST_WEST_GATEWAY_SERVICE,
          namespace: ISTIO_NAMESPACE,
        }),
      ),
      orUndefined(() =>
        core.readNamespacedConfigMap({
          name: ISTIO_CA_ROOT_CERT_CONFIGMAP,
          namespace: ISTIO_NAMESPACE,
        }),
      ),
      orUndefined(() =>
        core.readNamespacedConfigMap({
          name: ISTIO_MESH_CONFIGMAP,
          namespace: ISTIO_NAMESPACE,
        }),
      ),
      core.listNamespacedSecret({
        namespace: ISTIO_NAMESPACE,
        labelSelector: `${LABEL_ISTIO_MULTI_CLUSTER}=${ISTIO_MULTI_CLUSTER_VALUE}`,
      }),
      core.listNamespacedService({
        namespace: EGRESS_SERVICE_NAMESPACE,
        labelSelector: LABEL_PEER,
      }),
      orUndefined(() =>
        core.readNamespacedConfigMap({
          name: COREDNS_CONFIGMAP,
          namespace: KUBE_SYSTEM_NAMESPACE,
        }),
      ),
      networking.listNamespacedNetworkPolicy({
        namespace: EGRESS_SERVICE_NAMESPACE,
      }),
    ]);
    const policyViews = policies.items.map(networkPolicyView);

    let rootPem = rootCm?.data?.[ISTIO_CA_ROOT_CERT_KEY];
    if (!rootPem && istiod) {
      // Before istiod has published its root, the plugged-in CA it will use is the truth.
      const cacerts = await orUndefined(() =>
        core.readNamespacedSecret({
          name: CACERTS_SECRET,
          namespace: ISTIO_NAMESPACE,
        }),
      );
      const data = cacerts?.data?.[CACERTS_KEYS.rootCert];
      rootPem = data ? Buffer.from(data, 'base64').toString('utf8') : undefined;
    }

    const rootNotAfter = certificateNotAfter(rootPem);
    const istiodRemotes = istiod
      ? await readIstiodRemoteView(core, cluster, server)
      : undefined;
    const ingress = gateway?.status?.loadBalancer?.ingress ?? [];
    const meshNetworksText = meshCm?.data?.[ISTIO_MESH_NETWORKS_KEY];
    const corefile = coredns?.data?.[COREDNS_COREFILE_KEY];
    return {
      cluster,
      network: ns?.metadata?.labels?.[LABEL_ISTIO_NETWORK],
      meshId: ns?.metadata?.labels?.[LABEL_MESH_ID],
      istiod: istiod
        ? {
            ready: deploymentReady(istiod),
            version: imageTag(istiod),
            replicas: deploymentReplicas(istiod),
          }
        : undefined,
      operator: operator ? { ready: deploymentReady(operator) } : undefined,
      gateway: gateway
        ? {
            hostname: ingress.find(i => i.hostname)?.hostname,
            ip: ingress.find(i => i.ip)?.ip,
          }
        : undefined,
      rootFingerprint: rootPem ? certificateFingerprint(rootPem) : undefined,
      ...(rootNotAfter ? { caNotAfter: { root: rootNotAfter } } : {}),
      remoteSecretsFor: remoteSecrets.items
        .map(
          s =>
            s.metadata?.annotations?.[ANNOTATION_ISTIO_CLUSTER] ??
            clusterOfRemoteSecret(s.metadata?.name ?? ''),
        )
        .filter((c): c is string => Boolean(c))
        .sort(),
      egressFor: egress.items.map(s => {
        const to = egressTargetOf(
          s.metadata?.name ?? '',
          s.metadata!.labels![LABEL_PEER],
        );
        const openToPods =
          to === 'api-server-proxy' && s.metadata?.uid
            ? apiEgressOpenTo(policyViews, s.metadata.uid)
            : undefined;
        return {
          peer: s.metadata!.labels![LABEL_PEER],
          to,
          ready: (s.status?.conditions ?? []).some(
            c =>
              c.type === TAILSCALE_PROXY_READY_CONDITION && c.status === 'True',
          ),
          ...(openToPods ? { openToPods } : {}),
        };
      }),
      meshNetworks: meshNetworksText
        ? parseMeshNetworks(parse(meshNetworksText))
        : undefined,
      tailnetDns:
        opts.tailnet && corefile !== undefined
          ? corefileHasTailnetStanza(corefile, opts.tailnet)
          : undefined,
      ...(istiodRemotes ? { istiodRemotes } : {}),
    };
  } catch (e) {
    return {
      cluster,
      error: describeClusterError(cluster, server, e),
      remoteSecretsFor: [],
      egressFor: [],
    };
  }
}
