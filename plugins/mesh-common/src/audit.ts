import {
  AuditFinding,
  AuditFindingKind,
  AuditSeverity,
  ClusterError,
  MembershipCell,
} from './api';
import { compareStrings, mostCommon } from './compareStrings';
import { auditMissingGrants, auditTailnetPolicy } from './auditTailnetPolicy';
import { auditFindingId, sortFindings } from './findings';
import type { IstiodRemoteView } from './istiodView';
import { MeshNetworks } from './meshNetworks';
import {
  EGRESS_SERVICE_NAMESPACE,
  egressServiceName,
  type EgressTarget,
} from './names';
import { apiEgressPolicyName } from './networkPolicy';

/** The egress Services a member needs per peer, and how messages name what each leads to. */
const EGRESS_TARGETS: ReadonlyArray<{ to: EgressTarget; what: string }> = [
  { to: 'api-server-proxy', what: 'API proxy' },
  { to: 'east-west-gateway', what: 'east-west gateway' },
];

/**
 * What Tailmesh needs to know of one cluster to judge the mesh. The backend builds it from its
 * watch caches, `mesh:verify` from direct reads: both judge it with {@link auditMesh}.
 *
 * @public
 */
export interface MeshClusterSnapshot {
  cluster: string;
  /** Set when the cluster could not be read; the other fields are then unknown. */
  error?: ClusterError;
  /** `topology.istio.io/network` on istio-system. */
  network?: string;
  /** `tailmesh.dev/mesh-id` on istio-system. */
  meshId?: string;
  /** Undefined when istiod is not installed. */
  istiod?: {
    ready: boolean;
    version?: string;
    /** Ready replicas and the replicas its Deployment asks for. */
    replicas?: { ready: number; desired: number };
  };
  /** Undefined when the Tailscale operator is not installed. */
  operator?: { ready: boolean };
  /** The east-west gateway Service; undefined when there is none. */
  gateway?: { hostname?: string; ip?: string };
  /** SHA-256 fingerprint of the mesh root this cluster's istiod uses. */
  rootFingerprint?: string;
  /**
   * When the CA certificates expire (ISO 8601), where known: the root istiod publishes, and the
   * intermediate Tailmesh recorded on `cacerts` when it issued it.
   */
  caNotAfter?: { root?: string; intermediate?: string };
  /** Clusters this one holds an Istio remote secret for. */
  remoteSecretsFor: string[];
  /**
   * Tailmesh's egress Services of this cluster: the peer, which of its devices the Service leads
   * to (undefined for one named like neither), and whether the operator wired it.
   */
  egressFor: Array<{
    peer: string;
    to?: EgressTarget;
    ready: boolean;
    /**
     * For the egress Service to a peer's API server proxy: why pods other than istiod's can
     * reach its proxy (see `apiEgressOpenTo`); absent when only istiod's can, or when the
     * NetworkPolicies were not judged.
     */
    openToPods?: string;
  }>;
  /** Parsed meshNetworks of istiod's ConfigMap; undefined when absent. */
  meshNetworks?: MeshNetworks;
  /** Whether CoreDNS forwards the tailnet domain; undefined when not checked. */
  tailnetDns?: boolean;
  /** istiod's own view of its remote clusters; undefined when not read (no istiod, or not yet). */
  istiodRemotes?: IstiodRemoteView;
}

/**
 * A member runs istiod and carries a network and Tailmesh's mesh id on istio-system: what
 * `mesh:istio:install` sets up and `mesh:istio:leave` ends (by removing the mesh id).
 *
 * @public
 */
export function isMeshMember(s: MeshClusterSnapshot): boolean {
  return (
    !s.error &&
    s.istiod !== undefined &&
    s.network !== undefined &&
    s.meshId !== undefined
  );
}

/**
 * The address other clusters should use for a member's east-west gateway.
 *
 * @public
 */
export function gatewayAddressOf(s: MeshClusterSnapshot): string | undefined {
  return s.gateway?.hostname ?? s.gateway?.ip;
}

function finding(
  kind: AuditFindingKind,
  severity: AuditSeverity,
  clusters: string[],
  message: string,
  fix: string,
): AuditFinding {
  return {
    id: auditFindingId(kind, clusters),
    kind,
    severity,
    clusters,
    message,
    fix,
  };
}

/**
 * What `s`'s istiod reports about `peer`: its sync state, `not-listed`, or undefined when istiod's
 * view is not known.
 */
function istiodSyncOf(
  s: MeshClusterSnapshot,
  peer: string,
): IstiodRemoteView['remotes'][number]['status'] | 'not-listed' | undefined {
  if (s.istiodRemotes?.state !== 'reported') return undefined;
  return (
    s.istiodRemotes.remotes.find(r => r.cluster === peer)?.status ??
    'not-listed'
  );
}

/** Where a member's meshNetworks sends traffic for `network`, or undefined when it does not. */
function routedGateways(
  networks: MeshNetworks,
  network: string,
): string[] | undefined {
  const entry = networks.networks[network];
  if (!entry) return undefined;
  return entry.gateways.flatMap(g => (g.address ? [g.address] : []));
}

/**
 * What the audit judges besides the clusters.
 *
 * @public
 */
/**
 * How long before a CA certificate expires the audit warns (`ca-expiring`): time to issue a new
 * intermediate (mesh:ca:issue-intermediate renews ahead of expiry) or to rotate the root.
 *
 * @public
 */
export const CA_EXPIRY_WARNING_DAYS = 90;

const DAY_MS = 24 * 60 * 60 * 1000;

/** `ca-expiring` findings of one member: expired is an error, within the warning window a warning. */
function caExpiryFindings(m: MeshClusterSnapshot, now: Date): AuditFinding[] {
  const out: AuditFinding[] = [];
  const certs = [
    {
      what: 'intermediate CA',
      at: m.caNotAfter?.intermediate,
      fix: `Issue a new intermediate: run mesh:ca:issue-intermediate for ${m.cluster} (or the Join template again); istiod reloads cacerts by itself.`,
    },
    {
      what: 'mesh root CA',
      at: m.caNotAfter?.root,
      fix: 'Rotate the mesh root: a new root in the CA store, then a new intermediate for every member (workloads trust both roots during the change).',
    },
  ];
  const problems = certs.flatMap(c => {
    const at = c.at ? Date.parse(c.at) : NaN;
    if (Number.isNaN(at)) return [];
    const days = Math.floor((at - now.getTime()) / DAY_MS);
    if (days >= CA_EXPIRY_WARNING_DAYS) return [];
    return [
      {
        ...c,
        expired: at <= now.getTime(),
        days,
        on: new Date(at).toISOString(),
      },
    ];
  });
  if (problems.length) {
    const expired = problems.some(p => p.expired);
    out.push(
      finding(
        'ca-expiring',
        expired ? 'error' : 'warning',
        [m.cluster],
        problems
          .map(p =>
            p.expired
              ? `${m.cluster}'s ${p.what} expired on ${p.on}: istiod cannot issue workload certificates others trust`
              : `${m.cluster}'s ${p.what} expires on ${p.on} (in ${p.days} days)`,
          )
          .join('; '),
        problems.map(p => p.fix).join(' '),
      ),
    );
  }
  return out;
}

/** @public */
export interface MeshAuditContext {
  /**
   * The tailnet policy file, parsed from HuJSON; undefined when it is not known (no Tailscale
   * client configured, or not read yet), which skips the grant checks.
   */
  tailnetPolicy?: unknown;
  /** The time CA expiry is judged at; default now. */
  now?: Date;
}

/**
 * Judges the mesh from its clusters' snapshots (and the tailnet policy file, when given): every
 * finding with its severity, the clusters involved and the fix, most severe first. Unreadable
 * clusters yield no finding of their own (their row reports the error) and are not blamed for
 * what cannot be seen.
 *
 * @public
 */
export function auditMesh(
  snapshots: ReadonlyArray<MeshClusterSnapshot>,
  context: MeshAuditContext = {},
): AuditFinding[] {
  const members = snapshots
    .filter(isMeshMember)
    .sort((a, b) => compareStrings(a.cluster, b.cluster));
  const memberNames = new Set(members.map(m => m.cluster));
  const readable = new Set(snapshots.filter(s => !s.error).map(s => s.cluster));
  const out: AuditFinding[] = [];

  const roots = members.flatMap(m =>
    m.rootFingerprint ? [m.rootFingerprint] : [],
  );
  const commonRoot = mostCommon(roots);
  for (const m of members) {
    if (m.rootFingerprint && commonRoot && m.rootFingerprint !== commonRoot) {
      out.push(
        finding(
          'root-ca-mismatch',
          'error',
          [m.cluster],
          `${m.cluster} trusts root ${m.rootFingerprint.slice(0, 23)}…, the rest of the mesh ${commonRoot.slice(0, 23)}…: mTLS between them fails`,
          `Re-issue ${m.cluster}'s cacerts from the mesh root (mesh:ca:issue-intermediate) and restart its istiod.`,
        ),
      );
    }
  }

  const meshIds = [
    ...new Set(members.flatMap(m => (m.meshId ? [m.meshId] : []))),
  ].sort(compareStrings);
  if (meshIds.length > 1) {
    out.push(
      finding(
        'mesh-id-clash',
        'error',
        members.map(m => m.cluster),
        `Members disagree on the mesh id: ${meshIds.join(', ')}`,
        'Reinstall Istio (mesh:istio:install) with the one mesh id on the members that differ.',
      ),
    );
  }

  const byNetwork = new Map<string, string[]>();
  for (const m of members)
    byNetwork.set(m.network!, [
      ...(byNetwork.get(m.network!) ?? []),
      m.cluster,
    ]);
  for (const [network, clusters] of byNetwork) {
    if (clusters.length > 1) {
      out.push(
        finding(
          'network-clash',
          'error',
          clusters,
          `${clusters.join(' and ')} claim the same network "${network}", but their pods cannot reach each other directly`,
          'Give each cluster its own network id (mesh:istio:install) so traffic between them goes through the east-west gateways.',
        ),
      );
    }
  }

  for (const m of members) {
    if (!m.istiod!.ready) {
      out.push(
        finding(
          'istiod-not-ready',
          'error',
          [m.cluster],
          `istiod in ${m.cluster} is not ready`,
          `Check the istiod Deployment in ${m.cluster} (events, pod logs); nothing in the mesh can learn about ${m.cluster}'s changes until it is.`,
        ),
      );
    }
    if (!gatewayAddressOf(m)) {
      out.push(
        finding(
          'gateway-without-address',
          'error',
          [m.cluster],
          m.gateway
            ? `The east-west gateway of ${m.cluster} has no tailnet address yet`
            : `${m.cluster} has no east-west gateway`,
          m.gateway
            ? `Check that the Tailscale operator runs in ${m.cluster} and the tailnet policy lets it create tag:istio-eastwestgateway devices.`
            : `Deploy it with mesh:istio:deploy-eastwest-gateway.`,
        ),
      );
    }
    if (m.operator && !m.operator.ready) {
      out.push(
        finding(
          'operator-not-ready',
          'error',
          [m.cluster],
          `The Tailscale operator in ${m.cluster} is not ready: its API proxy and gateways are unreachable`,
          `Check the operator Deployment in ${m.cluster} and its OAuth client.`,
        ),
      );
    }
    if (m.tailnetDns === false) {
      out.push(
        finding(
          'tailnet-dns-missing',
          'error',
          [m.cluster],
          `CoreDNS in ${m.cluster} does not forward the tailnet domain: istiod cannot resolve its peers' API proxies`,
          'Run mesh:tailscale:configure-dns for the cluster.',
        ),
      );
    }
  }

  for (const a of members) {
    for (const b of members) {
      if (a === b) continue;
      const aHasB = a.remoteSecretsFor.includes(b.cluster);
      const bHasA = b.remoteSecretsFor.includes(a.cluster);
      if (!aHasB && bHasA) {
        out.push(
          finding(
            'one-way-remote-secret',
            'error',
            [a.cluster, b.cluster],
            `${a.cluster} holds no remote secret for ${b.cluster}, though ${b.cluster} holds one for ${a.cluster}: ${a.cluster}'s istiod does not see ${b.cluster}'s endpoints`,
            `Create it with mesh:istio:create-remote-secrets (cluster ${a.cluster}, peer ${b.cluster}).`,
          ),
        );
      } else if (!aHasB && !bHasA && a.cluster < b.cluster) {
        out.push(
          finding(
            'remote-secrets-missing',
            'error',
            [a.cluster, b.cluster],
            `${a.cluster} and ${b.cluster} hold no remote secret for each other: neither sees the other's endpoints`,
            `Run mesh:istio:create-remote-secrets for ${a.cluster} with peer ${b.cluster}.`,
          ),
        );
      }
      const sync = aHasB ? istiodSyncOf(a, b.cluster) : undefined;
      if (sync === 'timeout' || sync === 'closed') {
        const way = `the way from ${a.cluster} to ${b.cluster}'s API server proxy: the egress Service and the CoreDNS tailnet stanza in ${a.cluster}, the tailnet grants (network access to tcp:443 and the Kubernetes capability) and the tailnet's HTTPS setting. istiod's log in ${a.cluster} names the error.`;
        // istiod reads a remote cluster with the remote's own `istio-reader` ClusterRole, which
        // each release's chart defines for that release's istiod: a newer istiod can be refused
        // what an older peer's role does not grant, and never syncs it (the 1.29 charts' role
        // adds ConfigMaps, which the 1.28 charts' lacks: manifests/charts/istio-control/
        // istio-discovery/templates/reader-clusterrole.yaml; test/fixtures/istio-release-charts).
        const [va, vb] = [a.istiod?.version, b.istiod?.version];
        const skew = va && vb && va !== vb;
        out.push(
          finding(
            'istiod-remote-unsynced',
            'error',
            [a.cluster, b.cluster],
            `${a.cluster}'s istiod reports ${b.cluster} as "${sync}": it cannot read ${b.cluster}'s API server, so ${a.cluster} knows none of ${b.cluster}'s endpoints${
              skew
                ? ` (${a.cluster} runs istiod ${va}, ${b.cluster} ${vb})`
                : ''
            }`,
            skew
              ? `Run one Istio version on every member: a newer istiod may be refused what an older member's istio-reader ClusterRole does not grant (look for "forbidden" in istiod's log in ${a.cluster}). If that is not it, check ${way}`
              : `Check ${way}`,
          ),
        );
      }
      const egressProblems = a.operator
        ? EGRESS_TARGETS.flatMap(({ to, what }) => {
            const egress = a.egressFor.find(
              e => e.peer === b.cluster && e.to === to,
            );
            if (!egress)
              return [
                `${a.cluster} has no egress Service for ${b.cluster}'s ${what}`,
              ];
            return egress.ready
              ? []
              : [
                  `the egress Service in ${a.cluster} for ${b.cluster}'s ${what} is not wired by the operator yet`,
                ];
          })
        : [];
      if (egressProblems.length) {
        const message = egressProblems.join('; ');
        out.push(
          finding(
            'egress-missing',
            'error',
            [a.cluster, b.cluster],
            message.charAt(0).toUpperCase() + message.slice(1),
            `Run mesh:tailscale:create-egress for ${a.cluster} with peer ${b.cluster}.`,
          ),
        );
      }
      const apiEgress = a.egressFor.find(
        e => e.peer === b.cluster && e.to === 'api-server-proxy',
      );
      if (apiEgress?.openToPods) {
        out.push(
          finding(
            'grant-reachable-from-pods',
            'warning',
            [a.cluster, b.cluster],
            `Any pod in ${a.cluster} can reach ${b.cluster}'s API server proxy through egress Service ${EGRESS_SERVICE_NAMESPACE}/${egressServiceName(b.cluster)} (${apiEgress.openToPods}), and with it the tailnet grant through which istiod reads every Secret in ${b.cluster}`,
            `Run mesh:tailscale:create-egress for ${a.cluster} with peer ${b.cluster}: it adds NetworkPolicy ${EGRESS_SERVICE_NAMESPACE}/${apiEgressPolicyName(b.cluster)}, which admits only istiod. It holds only where ${a.cluster}'s network plugin enforces NetworkPolicy.`,
          ),
        );
      }
      if (a.meshNetworks && Object.keys(a.meshNetworks.networks).length > 0) {
        const routed = routedGateways(a.meshNetworks, b.network!);
        const address = gatewayAddressOf(b);
        if (!routed) {
          out.push(
            finding(
              'mesh-networks-missing-member',
              'error',
              [a.cluster, b.cluster],
              `meshNetworks in ${a.cluster} has no entry for ${b.cluster}'s network "${b.network}"`,
              'Run mesh:istio:configure-networks with every member.',
            ),
          );
        } else if (address && !routed.includes(address)) {
          out.push(
            finding(
              'mesh-networks-wrong-address',
              'error',
              [a.cluster, b.cluster],
              `meshNetworks in ${a.cluster} sends "${b.network}" traffic to ${routed.join(', ') || 'no address'}, but ${b.cluster}'s gateway is at ${address}`,
              'Run mesh:istio:configure-networks with every member.',
            ),
          );
        }
      }
    }
    for (const target of a.remoteSecretsFor) {
      if (
        !memberNames.has(target) &&
        (readable.has(target) || !snapshots.some(s => s.cluster === target))
      ) {
        out.push(
          finding(
            'remote-secret-for-non-member',
            'warning',
            [a.cluster, target],
            `${a.cluster} holds a remote secret for ${target}, which is not a mesh member: its istiod keeps trying to reach it`,
            `Remove it (the "Leave mesh" template, or delete Secret istio-remote-secret-${target} in ${a.cluster}).`,
          ),
        );
      }
    }
  }
  const now = context.now ?? new Date();
  for (const m of members) out.push(...caExpiryFindings(m, now));
  if (context.tailnetPolicy !== undefined) {
    const clusters = members.map(m => m.cluster);
    out.push(...auditTailnetPolicy(context.tailnetPolicy, clusters));
    // One member has no peer to reach, so no flow to grant.
    if (clusters.length > 1)
      out.push(...auditMissingGrants(context.tailnetPolicy, clusters));
  }
  return sortFindings(out);
}

/**
 * The N x N view of members: does `from` hold a remote secret for `to`, and does `from`'s
 * meshNetworks route to `to`'s current gateway address.
 *
 * @public
 */
export function membershipMatrix(
  snapshots: ReadonlyArray<MeshClusterSnapshot>,
): {
  clusters: string[];
  matrix: MembershipCell[][];
} {
  const members = snapshots
    .filter(isMeshMember)
    .sort((a, b) => compareStrings(a.cluster, b.cluster));
  const matrix = members.map(from =>
    members.map((to): MembershipCell => {
      if (from === to) {
        return {
          from: from.cluster,
          to: to.cluster,
          remoteSecret: 'not-applicable',
          gatewayInMeshNetworks: 'not-applicable',
          istiodSync: 'not-applicable',
        };
      }
      let gatewayInMeshNetworks: MembershipCell['gatewayInMeshNetworks'] =
        'not-applicable';
      if (
        from.meshNetworks &&
        Object.keys(from.meshNetworks.networks).length > 0
      ) {
        const routed = routedGateways(from.meshNetworks, to.network!);
        const address = gatewayAddressOf(to);
        if (!routed) gatewayInMeshNetworks = 'missing';
        else
          gatewayInMeshNetworks =
            address && !routed.includes(address) ? 'wrong-address' : 'present';
      }
      return {
        from: from.cluster,
        to: to.cluster,
        remoteSecret: from.remoteSecretsFor.includes(to.cluster)
          ? 'present'
          : 'missing',
        gatewayInMeshNetworks,
        istiodSync: istiodSyncOf(from, to.cluster) ?? 'unknown',
      };
    }),
  );
  return { clusters: members.map(m => m.cluster), matrix };
}
