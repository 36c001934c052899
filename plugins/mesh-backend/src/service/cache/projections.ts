import {
  V1ConfigMap,
  V1Deployment,
  V1EndpointSlice,
  V1ObjectMeta,
  V1Service,
} from '@kubernetes/client-node';
import {
  ANNOTATION_INTERMEDIATE_NOT_AFTER,
  ANNOTATION_ROOT_FINGERPRINT,
  ANNOTATION_ISTIO_CLUSTER,
  COREDNS_COREFILE_KEY,
  EAST_WEST_GATEWAY_SERVICE,
  EGRESS_SERVICE_NAMESPACE,
  ISTIO_CA_ROOT_CERT_KEY,
  ISTIO_MESH_NETWORKS_KEY,
  ISTIO_NAMESPACE,
  LABEL_ISTIO_NETWORK,
  LABEL_MESH_ID,
  LABEL_PEER,
  LABEL_TOPOLOGY_REGION,
  LABEL_TOPOLOGY_ZONE,
  EgressTarget,
  MeshNetworks,
  TAILSCALE_PROXY_READY_CONDITION,
  clusterOfRemoteSecret,
  coreDnsStanzaMarkers,
  corefileHasTailnetStanza,
  egressTargetOf,
  parseMeshNetworks,
} from '@tailmesh/plugin-mesh-common';
import {
  certificateFingerprint,
  certificateNotAfter,
  deploymentReady,
  deploymentReplicas,
  imageTag,
} from '@tailmesh/plugin-mesh-node';
import { parse } from 'yaml';

/**
 * What the cache keeps of each watched object: small plain values, so that a cluster with
 * thousands of Services and EndpointSlices costs kilobytes, and no Secret data is ever held.
 */

/** An object as the metadata-only list and watch return it. */
export interface MetadataOnly {
  metadata?: V1ObjectMeta;
}

export interface DeploymentProjection {
  ready: boolean;
  /** Image tag of the first container: istiod's version. */
  version?: string;
  /** Ready replicas and the replicas the Deployment asks for. */
  replicas: { ready: number; desired: number };
}

export function projectDeployment(d: V1Deployment): DeploymentProjection {
  const ready = deploymentReady(d);
  const version = imageTag(d);
  const replicas = deploymentReplicas(d);
  return version ? { ready, version, replicas } : { ready, replicas };
}

export interface ServiceProjection {
  namespace: string;
  name: string;
  /** Load balancer ingress, kept only for the east-west gateway. */
  ingress?: { hostname?: string; ip?: string };
  /**
   * Peer, what of it the Service leads to, wiring state and UID (its proxy pods carry it as
   * `app`), kept only for egress Services.
   */
  egress?: { peer: string; to?: EgressTarget; ready: boolean; uid?: string };
}

export function isEastWestGateway(s: {
  namespace: string;
  name: string;
}): boolean {
  return (
    s.namespace === ISTIO_NAMESPACE && s.name === EAST_WEST_GATEWAY_SERVICE
  );
}

export function projectService(s: V1Service): ServiceProjection {
  const namespace = s.metadata?.namespace ?? '';
  const name = s.metadata?.name ?? '';
  const out: ServiceProjection = { namespace, name };
  if (isEastWestGateway(out)) {
    const ingress = s.status?.loadBalancer?.ingress ?? [];
    out.ingress = {
      hostname: ingress.find(i => i.hostname)?.hostname,
      ip: ingress.find(i => i.ip)?.ip,
    };
  }
  const peer = s.metadata?.labels?.[LABEL_PEER];
  if (namespace === EGRESS_SERVICE_NAMESPACE && peer !== undefined) {
    const to = egressTargetOf(name, peer);
    out.egress = {
      peer,
      ...(to ? { to } : {}),
      ready: (s.status?.conditions ?? []).some(
        c => c.type === TAILSCALE_PROXY_READY_CONDITION && c.status === 'True',
      ),
      ...(s.metadata?.uid ? { uid: s.metadata.uid } : {}),
    };
  }
  return out;
}

export interface ZoneCount {
  zone: string;
  ready: number;
  notReady: number;
}

export interface EndpointSliceProjection {
  namespace: string;
  /** The Service the slice belongs to (`kubernetes.io/service-name`). */
  service: string;
  addressType: string;
  /** Sorted by zone. */
  zones: ZoneCount[];
}

// Plain code-point order: zone names are identifiers, and the result must not depend on locale.
function compareZones(a: ZoneCount, b: ZoneCount): number {
  if (a.zone === b.zone) return 0;
  return a.zone < b.zone ? -1 : 1;
}

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** Undefined for slices that belong to no Service (hand-made slices). */
export function projectEndpointSlice(
  s: V1EndpointSlice,
): EndpointSliceProjection | undefined {
  const service = s.metadata?.labels?.[SERVICE_NAME_LABEL];
  if (!service) return undefined;
  const byZone = new Map<string, ZoneCount>();
  for (const e of s.endpoints ?? []) {
    // Terminating endpoints are on their way out; counting them as not ready would make every
    // rollout look like an outage.
    if (e.conditions?.terminating === true) continue;
    const zone = e.zone ?? '';
    const count = byZone.get(zone) ?? { zone, ready: 0, notReady: 0 };
    // The API says an unset `ready` means unknown and is to be read as ready.
    if (e.conditions?.ready === false) count.notReady += 1;
    else count.ready += 1;
    byZone.set(zone, count);
  }
  return {
    namespace: s.metadata?.namespace ?? '',
    service,
    addressType: s.addressType,
    zones: [...byZone.values()].sort(compareZones),
  };
}

export interface NodeProjection {
  region?: string;
  zone?: string;
}

export function projectNode(n: MetadataOnly): NodeProjection {
  const labels = n.metadata?.labels ?? {};
  return {
    region: labels[LABEL_TOPOLOGY_REGION],
    zone: labels[LABEL_TOPOLOGY_ZONE],
  };
}

export interface NamespaceProjection {
  network?: string;
  meshId?: string;
}

export function projectIstioNamespace(ns: MetadataOnly): NamespaceProjection {
  const labels = ns.metadata?.labels ?? {};
  return {
    network: labels[LABEL_ISTIO_NETWORK],
    meshId: labels[LABEL_MESH_ID],
  };
}

export interface MeshConfigProjection {
  /** Undefined when the key is absent or does not parse. */
  meshNetworks?: MeshNetworks;
}

export function projectMeshConfig(cm: V1ConfigMap): MeshConfigProjection {
  const text = cm.data?.[ISTIO_MESH_NETWORKS_KEY];
  if (!text) return {};
  try {
    return { meshNetworks: parseMeshNetworks(parse(text)) };
  } catch {
    // istiod rejects what does not parse too, so for the audit the cluster has no meshNetworks.
    return {};
  }
}

export interface RootCertProjection {
  fingerprint?: string;
  /** When the root expires (ISO 8601). */
  notAfter?: string;
}

/** Fingerprint of a PEM certificate; undefined when it is not one. */
export function fingerprintOf(pem: string | undefined): string | undefined {
  if (!pem) return undefined;
  try {
    return certificateFingerprint(pem);
  } catch {
    return undefined;
  }
}

export function projectRootCert(cm: V1ConfigMap): RootCertProjection {
  const pem = cm.data?.[ISTIO_CA_ROOT_CERT_KEY];
  const notAfter = certificateNotAfter(pem);
  return { fingerprint: fingerprintOf(pem), ...(notAfter ? { notAfter } : {}) };
}

export interface CoreDnsProjection {
  /** Undefined when the Corefile cannot tell (see corefileHasTailnetStanza). */
  tailnetStanza: boolean | undefined;
}

export function coreDnsProjector(
  tailnet: string,
): (cm: V1ConfigMap) => CoreDnsProjection {
  coreDnsStanzaMarkers(tailnet); // validates the tailnet once
  return cm => ({
    tailnetStanza: corefileHasTailnetStanza(
      cm.data?.[COREDNS_COREFILE_KEY] ?? '',
      tailnet,
    ),
  });
}

export interface RemoteSecretProjection {
  /** The cluster the secret gives access to; undefined when it names none. */
  cluster?: string;
}

export function projectRemoteSecret(s: MetadataOnly): RemoteSecretProjection {
  return {
    cluster:
      s.metadata?.annotations?.[ANNOTATION_ISTIO_CLUSTER] ??
      clusterOfRemoteSecret(s.metadata?.name ?? ''),
  };
}

export interface SecretVersionProjection {
  resourceVersion: string;
  /** For `cacerts`: the intermediate's expiry Tailmesh recorded (ANNOTATION_INTERMEDIATE_NOT_AFTER). */
  intermediateNotAfter?: string;
  /** For `cacerts`: its root's fingerprint Tailmesh recorded (ANNOTATION_ROOT_FINGERPRINT). */
  rootFingerprint?: string;
}

const FINGERPRINT = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

export function projectSecretVersion(s: MetadataOnly): SecretVersionProjection {
  const at = s.metadata?.annotations?.[ANNOTATION_INTERMEDIATE_NOT_AFTER];
  const root = s.metadata?.annotations?.[ANNOTATION_ROOT_FINGERPRINT];
  return {
    resourceVersion: s.metadata?.resourceVersion ?? '',
    ...(at && !Number.isNaN(Date.parse(at))
      ? { intermediateNotAfter: at }
      : {}),
    ...(root && FINGERPRINT.test(root) ? { rootFingerprint: root } : {}),
  };
}
