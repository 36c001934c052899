import { AuditFinding } from './api';
import { auditFindingId } from './findings';
import { EAST_WEST_TLS_PORT } from './istio';
import { ISTIO_REMOTE_READERS_GROUP } from './remoteAccess';
import {
  TAG_ISTIO_EAST_WEST_GATEWAY,
  TAG_K8S_OPERATOR,
  TAG_K8S_PROXY,
  TAG_MESH_EGRESS,
  TAILSCALE_KUBERNETES_CAPABILITY,
} from './tailscale';

/**
 * Port of the Tailscale operator's API server proxy on the tailnet (HTTPS).
 *
 * @public
 */
export const TAILSCALE_API_PROXY_PORT = 443;

/** Kubernetes' built-in cluster-admin group: impersonating it gives full control of a cluster. */
const CLUSTER_ADMIN_GROUP = 'system:masters';

/**
 * Sources that stand for every person or every device of the tailnet; the mesh's grants name
 * their device tags instead.
 */
const BROAD_SOURCES = new Set(['*', 'autogroup:member', 'autogroup:tagged']);

/** Device tags of the mesh, whose grants are Tailmesh's to judge. */
const MESH_DEVICE_TAGS = new Set([
  TAG_K8S_PROXY,
  TAG_MESH_EGRESS,
  TAG_K8S_OPERATOR,
  TAG_ISTIO_EAST_WEST_GATEWAY,
]);

type MeshTarget = 'gateway' | 'operator';

/**
 * What the mesh itself needs to reach on each kind of its devices: the gateways' cross-network
 * mTLS port (their readiness port serves the cluster, not the tailnet) and the API server proxy.
 */
const NEEDED_PORTS: Record<MeshTarget, ReadonlySet<number>> = {
  gateway: new Set([EAST_WEST_TLS_PORT]),
  operator: new Set([TAILSCALE_API_PROXY_PORT]),
};
const TARGET_TAG: Record<MeshTarget, string> = {
  gateway: TAG_ISTIO_EAST_WEST_GATEWAY,
  operator: TAG_K8S_OPERATOR,
};

/** A grant or a legacy ACL row, reduced to what the audit reads. */
interface Rule {
  /** Where it is in the file and what it connects, for messages: `grants[2] (a → b)`. */
  label: string;
  src: string[];
  dst: string[];
  /** `ip` entries of a grant; `proto:port` of ACL rows. */
  ip: string[];
  /** The `tailscale.com/cap/kubernetes` values. */
  kubernetes: unknown[];
}

const strings = (value: unknown): string[] =>
  Array.isArray(value)
    ? value.filter((v): v is string => typeof v === 'string')
    : [];

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function label(section: string, i: number, src: string[], dst: string[]) {
  return `${section}[${i}] (${src.join(', ') || 'nobody'} → ${dst.join(', ') || 'nowhere'})`;
}

/** Grants (kb/1538) and legacy ACL rows (kb/1337: `dst` is `host:ports`) as rules. */
function rulesOf(policy: unknown): Rule[] {
  if (!isObject(policy)) return [];
  const rules: Rule[] = [];
  const grants = Array.isArray(policy.grants) ? policy.grants : [];
  grants.forEach((g, i) => {
    if (!isObject(g)) return;
    const src = strings(g.src);
    const dst = strings(g.dst);
    const app = isObject(g.app) ? g.app : {};
    const kubernetes = app[TAILSCALE_KUBERNETES_CAPABILITY];
    rules.push({
      label: label('grants', i, src, dst),
      src,
      dst,
      ip: strings(g.ip),
      kubernetes: Array.isArray(kubernetes) ? kubernetes : [],
    });
  });
  const acls = Array.isArray(policy.acls) ? policy.acls : [];
  acls.forEach((a, i) => {
    if (!isObject(a)) return;
    const src = strings(a.src ?? a.users);
    const proto = typeof a.proto === 'string' ? `${a.proto}:` : '';
    const hosts: string[] = [];
    const ip: string[] = [];
    for (const entry of strings(a.dst ?? a.ports)) {
      const colon = entry.lastIndexOf(':');
      if (colon <= 0) continue;
      hosts.push(entry.slice(0, colon));
      ip.push(`${proto}${entry.slice(colon + 1)}`);
    }
    rules.push({
      label: label('acls', i, src, hosts),
      src,
      dst: hosts,
      ip,
      kubernetes: [],
    });
  });
  return rules;
}

/** Which of the mesh's device kinds a rule's destinations take in; `*` takes in all of them. */
function targetsOf(dst: string[]): MeshTarget[] {
  const all = dst.includes('*');
  return (['gateway', 'operator'] as const).filter(
    t => all || dst.includes(TARGET_TAG[t]),
  );
}

/**
 * Whether an `ip` entry (`*`, `443`, `tcp:*`, `tcp:15000-16000`, `tcp:443,8443`) opens a port the
 * mesh does not use toward `targets` through a wildcard or a range. Single named ports are left
 * alone: they are a deliberate choice (a scraper's port), not a blanket.
 */
function opensBeyondNeeds(entry: string, targets: MeshTarget[]): boolean {
  const colon = entry.indexOf(':');
  const ports = colon >= 0 ? entry.slice(colon + 1) : entry;
  const needed = new Set(targets.flatMap(t => [...NEEDED_PORTS[t]]));
  return ports.split(',').some(part => {
    if (part === '*') return true;
    const range = /^(\d+)-(\d+)$/.exec(part);
    if (!range) return false;
    const [from, to] = [Number(range[1]), Number(range[2])];
    const neededInside = [...needed].filter(p => p >= from && p <= to);
    return to - from + 1 > neededInside.length;
  });
}

/** Groups a `tailscale.com/cap/kubernetes` value impersonates. */
function impersonatedGroups(values: unknown[]): string[] {
  return values.flatMap(v =>
    isObject(v) && isObject(v.impersonate) ? strings(v.impersonate.groups) : [],
  );
}

interface Problem {
  text: string;
  fix: string;
}

function problemsOf(rule: Rule): Problem[] {
  const targets = targetsOf(rule.dst);
  if (targets.length === 0) return [];
  const reached = targets.map(t => TARGET_TAG[t]).join(' and ');
  const problems: Problem[] = [];
  const wide = rule.ip.filter(e => opensBeyondNeeds(e, targets));
  if (wide.length > 0) {
    problems.push({
      text: `${rule.label} opens ${wide.map(e => JSON.stringify(e)).join(', ')} to ${reached}${rule.dst.includes('*') ? ' (dst "*" takes in every device of the mesh)' : ''}`,
      fix: `limit ${rule.label} to the ports the mesh uses: ${targets
        .map(
          t =>
            `${[...NEEDED_PORTS[t]].map(p => `tcp:${p}`).join(', ')} on ${TARGET_TAG[t]}`,
        )
        .join('; ')}`,
    });
  }
  const capability = targets.includes('operator') && rule.kubernetes.length > 0;
  const fromDevicesOrEveryone = rule.src.filter(
    s => MESH_DEVICE_TAGS.has(s) || BROAD_SOURCES.has(s),
  );
  if (
    capability &&
    fromDevicesOrEveryone.length > 0 &&
    impersonatedGroups(rule.kubernetes).includes(CLUSTER_ADMIN_GROUP)
  ) {
    problems.push({
      text: `${rule.label} lets ${fromDevicesOrEveryone.join(', ')} impersonate ${CLUSTER_ADMIN_GROUP} through the API server proxies: every cluster is cluster-admin of every other`,
      fix: `impersonate only the group ${ISTIO_REMOTE_READERS_GROUP} in ${rule.label}`,
    });
  }
  const broad = rule.src.filter(s => BROAD_SOURCES.has(s));
  // A destination of "*" alone is any admin's business; it is the mesh's once it carries the
  // Kubernetes capability or names the mesh's tags.
  const namesMeshTag = rule.dst.some(d => MESH_DEVICE_TAGS.has(d));
  if (broad.length > 0 && (namesMeshTag || capability)) {
    const needed = TAG_MESH_EGRESS;
    problems.push({
      text: `${rule.label} lets ${broad.join(', ')} reach ${reached}, where the mesh needs only ${needed}`,
      fix: `use src ["${needed}"] in ${rule.label}`,
    });
  }
  return problems;
}

/**
 * Judges the tailnet policy file (parsed from HuJSON) for grants broader than the mesh needs: a
 * wildcard or range of ports toward the east-west gateways or the operators' API server proxies
 * (dst `*` included), `system:masters` impersonated through the Kubernetes capability by devices
 * or by everyone, and sources such as `*` or `autogroup:member` where the mesh's device tag is
 * enough. Grants for people (a named group impersonating an admin group to run kubectl) are not
 * the mesh's and are left alone. Yields at most one `grant-too-broad` finding, for `clusters`
 * (the members, whose gateways and proxies the grants expose), listing every broad grant.
 *
 * @public
 */
export function auditTailnetPolicy(
  policy: unknown,
  clusters: ReadonlyArray<string>,
): AuditFinding[] {
  const problems = rulesOf(policy).flatMap(problemsOf);
  if (problems.length === 0) return [];
  return [
    {
      id: auditFindingId('grant-too-broad', clusters),
      kind: 'grant-too-broad',
      severity: 'warning',
      clusters: [...clusters],
      message: `The tailnet policy file grants more than the mesh needs: ${problems.map(p => p.text).join('; ')}`,
      fix: `In the tailnet policy file, ${problems.map(p => p.fix).join('; ')}. The grants mesh:tailscale:grant-access writes are exactly what the mesh needs.`,
    },
  ];
}

/** Sources that take in a device tagged `tag` (kb/1337: `*` is everyone, `autogroup:tagged` every tagged device). */
function sourceTakesIn(src: string[], tag: string): boolean {
  return src.some(s => s === tag || s === '*' || s === 'autogroup:tagged');
}

/** Whether an `ip` entry (`*`, `443`, `tcp:*`, `tcp:15000-16000`, `tcp:443,8443`) opens tcp:`port`. */
function opensTcpPort(entry: string, port: number): boolean {
  const colon = entry.indexOf(':');
  const proto = colon >= 0 ? entry.slice(0, colon) : '';
  // Without a protocol an entry means TCP, UDP and ICMP; `6` is TCP's IANA number.
  if (proto !== '' && proto !== 'tcp' && proto !== '6' && proto !== '*')
    return false;
  const ports = colon >= 0 ? entry.slice(colon + 1) : entry;
  return ports.split(',').some(part => {
    if (part === '*') return true;
    const range = /^(\d+)-(\d+)$/.exec(part);
    if (range) return Number(range[1]) <= port && port <= Number(range[2]);
    return Number(part) === port;
  });
}

/** A flow the mesh depends on, from Tailmesh's egress proxies. */
interface NeededFlow {
  what: string;
  dst: string;
  port: number;
  /** Whether the Kubernetes capability (impersonating the remote readers' group) is needed too. */
  capability: boolean;
}

const NEEDED_FLOWS: NeededFlow[] = [
  {
    what: "istiod's calls to peers' API server proxies",
    dst: TAG_K8S_OPERATOR,
    port: TAILSCALE_API_PROXY_PORT,
    capability: true,
  },
  {
    what: "pods' requests to peers' east-west gateways",
    dst: TAG_ISTIO_EAST_WEST_GATEWAY,
    port: EAST_WEST_TLS_PORT,
    capability: false,
  },
];

/**
 * Judges the tailnet policy file for what the mesh's traffic needs and does not get, by the rules
 * a Tailscale node filters with (kb/1538, kb/1337): network access is an `ip` grant (or an ACL
 * row) from a source that takes in `tag:tailmesh-egress` to a destination that takes in the
 * target's tag, on a port entry that takes in the port; an `app` grant alone opens no port. The
 * API server proxy also needs the `tailscale.com/cap/kubernetes` capability impersonating
 * {@link ISTIO_REMOTE_READERS_GROUP}, or it impersonates the caller's tags, which no RBAC binds
 * (`cmd/k8s-operator/api-proxy/proxy.go`). Yields at most one `grant-missing` error for the
 * members, naming each missing flow.
 *
 * @public
 */
export function auditMissingGrants(
  policy: unknown,
  clusters: ReadonlyArray<string>,
): AuditFinding[] {
  const rules = rulesOf(policy);
  const reaches = (flow: NeededFlow) =>
    rules.filter(
      r =>
        sourceTakesIn(r.src, TAG_MESH_EGRESS) &&
        (r.dst.includes(flow.dst) || r.dst.includes('*')),
    );
  const missing: string[] = [];
  for (const flow of NEEDED_FLOWS) {
    const candidates = reaches(flow);
    if (!candidates.some(r => r.ip.some(e => opensTcpPort(e, flow.port)))) {
      missing.push(
        `network access from ${TAG_MESH_EGRESS} to tcp:${flow.port} on ${flow.dst} (${flow.what})`,
      );
    }
    if (
      flow.capability &&
      !candidates.some(r =>
        impersonatedGroups(r.kubernetes).includes(ISTIO_REMOTE_READERS_GROUP),
      )
    ) {
      missing.push(
        `the ${TAILSCALE_KUBERNETES_CAPABILITY} capability from ${TAG_MESH_EGRESS} to ${flow.dst} impersonating ${ISTIO_REMOTE_READERS_GROUP} (${flow.what})`,
      );
    }
  }
  if (missing.length === 0) return [];
  return [
    {
      id: auditFindingId('grant-missing', clusters),
      kind: 'grant-missing',
      severity: 'error',
      clusters: [...clusters],
      message: `The tailnet policy file lacks what the mesh's traffic needs, so the tailnet drops it: ${missing.join('; ')}`,
      fix:
        'Run mesh:tailscale:grant-access (the Join template does), or add the grants by hand: {"src": ["tag:tailmesh-egress"], "dst": ["tag:k8s-operator"], "ip": ["tcp:443"], "app": {"tailscale.com/cap/kubernetes": [{"impersonate": {"groups": ["' +
        ISTIO_REMOTE_READERS_GROUP +
        '"]}}]}} and {"src": ["tag:tailmesh-egress"], "dst": ["tag:istio-eastwestgateway"], "ip": ["tcp:15443"]}.',
    },
  ];
}
