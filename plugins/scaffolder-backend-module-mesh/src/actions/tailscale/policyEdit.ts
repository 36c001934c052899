import { structuredPatch } from 'diff';
import { InputError } from '@backstage/errors';
import {
  EAST_WEST_TLS_PORT,
  ISTIO_REMOTE_READERS_GROUP,
  TAG_ISTIO_EAST_WEST_GATEWAY,
  TAG_K8S_OPERATOR,
  TAG_K8S_PROXY,
  TAG_MESH_EGRESS,
  TAILSCALE_API_PROXY_PORT,
  TAILSCALE_KUBERNETES_CAPABILITY,
} from '@tailmesh/plugin-mesh-common';
import {
  applyEdits,
  Edit,
  findNodeAtLocation,
  Node,
  parseTree,
  ParseError,
  printParseErrorCode,
} from 'jsonc-parser';

/** One grant of the tailnet policy file (kb/1538): `ip` and/or `app`. */
export interface PolicyGrant {
  src: string[];
  dst: string[];
  ip?: string[];
  app?: Record<string, unknown[]>;
}

/** What the mesh needs in the tailnet policy file; entries already there are left alone. */
export interface MeshPolicy {
  /** Tag -> owners that must (at least) own it. */
  tagOwners: Record<string, string[]>;
  /** Grants with a comment saying why each is there. */
  grants: Array<{ comment: string; grant: PolicyGrant }>;
  /**
   * Grants earlier Tailmesh versions wrote that the ones above replace: removed when found exactly
   * as Tailmesh wrote them (with their `// Tailmesh:` comment line), and nothing else is.
   */
  superseded?: PolicyGrant[];
}

/**
 * What Tailmesh's grant-access wrote before the mesh's flows were read from Tailscale's source:
 * the Kubernetes capability to every operator proxy (`tag:k8s`) without network access, and
 * gateway-to-gateway access on four ports, when only egress proxies send, to tcp:15443 alone.
 */
export const SUPERSEDED_MESH_GRANTS: PolicyGrant[] = [
  {
    src: [TAG_K8S_PROXY],
    dst: [TAG_K8S_OPERATOR],
    app: {
      [TAILSCALE_KUBERNETES_CAPABILITY]: [
        { impersonate: { groups: [ISTIO_REMOTE_READERS_GROUP] } },
      ],
    },
  },
  {
    src: [TAG_ISTIO_EAST_WEST_GATEWAY],
    dst: [TAG_ISTIO_EAST_WEST_GATEWAY],
    ip: ['tcp:15021', 'tcp:15443', 'tcp:15012', 'tcp:15017'],
  },
];

/**
 * The mesh's tag owners and grants, for the flows the mesh really has (tailscale.com/kb/1236, kb/1437 and kb/1538; `cmd/k8s-operator/api-proxy/proxy.go`):
 * - The operator may only create devices with tags it owns: `tag:k8s` for its proxies (the
 *   chart's default), `tag:tailmesh-egress` for Tailmesh's egress proxies and
 *   `tag:istio-eastwestgateway` for the east-west gateways.
 * - Only Tailmesh's egress proxies send mesh traffic: istiod's calls to a peer's API server proxy
 *   (network access to tcp:443, which the proxy needs besides the capability, and the Kubernetes
 *   capability impersonating only the group bound to Istio's reader ClusterRole, not the recipe's
 *   `system:masters`), and pods' requests to a peer's east-west gateway (tcp:15443 only). Gateways
 *   and API server proxies only receive.
 */
export function meshPolicy(owners: string[]): MeshPolicy {
  return {
    tagOwners: {
      [TAG_K8S_OPERATOR]: owners,
      [TAG_K8S_PROXY]: [TAG_K8S_OPERATOR],
      [TAG_MESH_EGRESS]: [TAG_K8S_OPERATOR],
      [TAG_ISTIO_EAST_WEST_GATEWAY]: [...owners, TAG_K8S_OPERATOR],
    },
    grants: [
      {
        comment:
          "Tailmesh: istiod reads peer clusters through their operators' API server proxies (from its own cluster's egress proxy), as Istio's reader role only.",
        grant: {
          src: [TAG_MESH_EGRESS],
          dst: [TAG_K8S_OPERATOR],
          ip: [`tcp:${TAILSCALE_API_PROXY_PORT}`],
          app: {
            [TAILSCALE_KUBERNETES_CAPABILITY]: [
              { impersonate: { groups: [ISTIO_REMOTE_READERS_GROUP] } },
            ],
          },
        },
      },
      {
        comment:
          "Tailmesh: pods reach peers' east-west gateways (through their cluster's egress proxy) on the cross-network mTLS port only.",
        grant: {
          src: [TAG_MESH_EGRESS],
          dst: [TAG_ISTIO_EAST_WEST_GATEWAY],
          ip: [`tcp:${EAST_WEST_TLS_PORT}`],
        },
      },
    ],
    superseded: SUPERSEDED_MESH_GRANTS,
  };
}

export interface PolicyEditResult {
  text: string;
  /** One line per entry added; empty when the policy already had everything. */
  changes: string[];
}

interface Style {
  eol: string;
  indentUnit: string;
  /** HuJSON's trailing commas, used by new containers only if the file already has them. */
  trailingCommas: boolean;
}

const PARSE_OPTIONS = {
  allowTrailingComma: true,
  disallowComments: false,
  allowEmptyContent: false,
};

function position(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

/** Parses HuJSON; a malformed file is the admin's to fix, so the error names where it broke. */
export function parsePolicy(text: string): Node {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, PARSE_OPTIONS);
  if (errors.length > 0 || !root) {
    const first = errors[0];
    const where = first
      ? `${printParseErrorCode(first.error)} at ${position(text, first.offset)}`
      : 'it is empty';
    throw new InputError(
      `The tailnet policy file is not valid HuJSON (${where}); nothing was written`,
    );
  }
  if (root.type !== 'object') {
    throw new InputError(
      `The tailnet policy file must be a JSON object (${position(text, root.offset)}); nothing was written`,
    );
  }
  return root;
}

function expectType(
  text: string,
  node: Node,
  type: Node['type'],
  what: string,
): void {
  if (node.type !== type) {
    throw new InputError(
      `The tailnet policy file's ${what} must be ${type === 'array' ? 'an array' : `an ${type}`} (${position(text, node.offset)}); nothing was written`,
    );
  }
}

function detectStyle(text: string): Style {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const trailingCommas = /,\s*(\/\/[^\n]*\s*)*[}\]]/.test(text);
  const indents = text
    .split(/\r?\n/)
    .map(line => /^([ \t]+)\S/.exec(line)?.[1])
    .filter((i): i is string => !!i);
  if (indents.some(i => i.startsWith('\t')))
    return { eol, indentUnit: '\t', trailingCommas };
  const smallest = Math.min(...indents.map(i => i.length));
  return {
    eol,
    indentUnit: ' '.repeat(Number.isFinite(smallest) ? smallest : 2),
    trailingCommas,
  };
}

function lineIndent(text: string, offset: number): string {
  const start = text.lastIndexOf('\n', offset - 1) + 1;
  return /^[ \t]*/.exec(text.slice(start))![0];
}

/** Compact, one-line JSON the way people write policy entries by hand: `{"src": ["a"], ...}`. */
export function inlineJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(inlineJson).join(', ')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}: ${inlineJson(v)}`)
      .join(', ')}}`;
  }
  return JSON.stringify(value);
}

/**
 * What follows the last member of a container: whether a comma does, whether the container closes
 * on the same line, and where the line (including a trailing comment) ends.
 */
function afterLastMember(text: string, memberEnd: number) {
  let comma: number | undefined;
  let i = memberEnd;
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t') i++;
    else if (c === ',' && comma === undefined) comma = i++;
    else if (text.startsWith('/*', i)) {
      const close = text.indexOf('*/', i + 2);
      i = close < 0 ? text.length : close + 2;
    } else if (text.startsWith('//', i)) {
      const eol = text.indexOf('\n', i);
      return { comma, lineEnd: eol < 0 ? text.length : eol + 1 };
    } else if (c === '\n' || text.startsWith('\r\n', i)) {
      return { comma, lineEnd: i + (c === '\n' ? 1 : 2) };
    } else break;
  }
  return { comma, lineEnd: undefined };
}

/**
 * An edit that adds one member (`"key": value` or an array element) at the end of `container`,
 * in the file's own style: on its own line with its siblings' indentation, or inline when the
 * container is written on one line; a trailing comma when the siblings have one. Nothing else in
 * the file moves, so the admin's comments and alignment stay where they are.
 */
function appendMember(
  text: string,
  container: Node,
  member: string,
  style: Style,
  opts: { comment?: string; inlineIfEmpty?: boolean } = {},
): Edit[] {
  const { comment } = opts;
  const members = container.children ?? [];
  const open = container.offset;
  const close = container.offset + container.length - 1;
  if (members.length === 0) {
    const inner = text.slice(open + 1, close);
    if (opts.inlineIfEmpty && inner.trim() === '')
      return [{ offset: open + 1, length: close - open - 1, content: member }];
    const outer = lineIndent(text, open);
    const indent = outer + style.indentUnit;
    const lines = [
      ...(comment ? [`${indent}// ${comment}`] : []),
      `${indent}${member}${style.trailingCommas ? ',' : ''}`,
    ];
    if (inner.trim() === '') {
      return [
        {
          offset: open + 1,
          length: close - open - 1,
          content: `${style.eol}${lines.join(style.eol)}${style.eol}${outer}`,
        },
      ];
    }
    return [
      {
        offset: open + 1,
        length: 0,
        content: `${style.eol}${lines.join(style.eol)}`,
      },
    ];
  }
  const last = members[members.length - 1];
  const lastEnd = last.offset + last.length;
  const after = afterLastMember(text, lastEnd);
  const edits: Edit[] = [];
  if (after.lineEnd === undefined) {
    // The container ends on the last member's line: add inline, before the closing bracket.
    const at = after.comma !== undefined ? after.comma + 1 : lastEnd;
    const content = `${after.comma !== undefined ? ' ' : ', '}${comment ? `/* ${comment} */ ` : ''}${member}${after.comma !== undefined ? ',' : ''}`;
    edits.push({ offset: at, length: 0, content });
    return edits;
  }
  const indent = lineIndent(text, last.offset);
  if (after.comma === undefined)
    edits.push({ offset: lastEnd, length: 0, content: ',' });
  const lines = [
    ...(comment ? [`${indent}// ${comment}`] : []),
    `${indent}${member}${after.comma !== undefined ? ',' : ''}`,
  ];
  edits.push({
    offset: after.lineEnd,
    length: 0,
    content: `${lines.join(style.eol)}${style.eol}`,
  });
  return edits;
}

/**
 * An edit that removes one array element with its comma, and the whole line (with a `// Tailmesh:`
 * comment line right above it) when the element stands on a line of its own; other comments stay.
 */
function removeElementEdit(text: string, element: Node): Edit {
  let start = element.offset;
  let end = element.offset + element.length;
  const comma = /^\s*,/.exec(text.slice(end));
  if (comma) end += comma[0].length;
  const lineStart = text.lastIndexOf('\n', start - 1) + 1;
  const lineEndAt = text.indexOf('\n', end);
  const lineEnd = lineEndAt < 0 ? text.length : lineEndAt + 1;
  const ownLine =
    text.slice(lineStart, start).trim() === '' &&
    text.slice(end, lineEnd).trim() === '';
  if (!ownLine) {
    // Inline in a one-line array: the element and its comma (or the comma before it).
    if (!comma) {
      const before = /,\s*$/.exec(text.slice(0, start));
      if (before) start -= before[0].length;
    }
    return { offset: start, length: end - start, content: '' };
  }
  start = lineStart;
  end = lineEnd;
  const prevLineStart = text.lastIndexOf('\n', lineStart - 2) + 1;
  if (/^\s*\/\/\s*Tailmesh:/.test(text.slice(prevLineStart, lineStart)))
    start = prevLineStart;
  return { offset: start, length: end - start, content: '' };
}

function stringValues(node: Node | undefined): string[] {
  return (node?.children ?? [])
    .filter(c => c.type === 'string')
    .map(c => String(c.value));
}

function valueOf(node: Node | undefined): unknown {
  if (!node) return undefined;
  switch (node.type) {
    case 'object':
      return Object.fromEntries(
        (node.children ?? []).map(p => [
          String(p.children![0].value),
          valueOf(p.children![1]),
        ]),
      );
    case 'array':
      return (node.children ?? []).map(valueOf);
    default:
      return node.value;
  }
}

const canonical = (value: unknown): string =>
  JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );

const asSet = (values: unknown): string =>
  canonical([...new Set((values as string[] | undefined) ?? [])].sort());

/** Same sources, destinations, ports and capabilities, whatever the order of the lists. */
function sameGrant(existing: unknown, wanted: PolicyGrant): boolean {
  if (!existing || typeof existing !== 'object') return false;
  const e = existing as Record<string, unknown>;
  return (
    asSet(e.src) === asSet(wanted.src) &&
    asSet(e.dst) === asSet(wanted.dst) &&
    asSet(e.ip) === asSet(wanted.ip) &&
    canonical(e.app ?? null) === canonical(wanted.app ?? null)
  );
}

/** Applies one edit step and re-parses, so the next step sees the file as it now is. */
class PolicyText {
  root: Node;
  constructor(
    public text: string,
    readonly style: Style,
  ) {
    this.root = parsePolicy(text);
  }

  apply(edits: Edit[]) {
    this.text = applyEdits(this.text, edits);
    this.root = parsePolicy(this.text);
  }

  section(key: string, type: 'object' | 'array'): Node {
    let node = findNodeAtLocation(this.root, [key]);
    if (!node) {
      this.apply(
        appendMember(
          this.text,
          this.root,
          `${JSON.stringify(key)}: ${type === 'object' ? '{}' : '[]'}`,
          this.style,
        ),
      );
      node = findNodeAtLocation(this.root, [key])!;
    }
    expectType(this.text, node, type, `"${key}"`);
    return node;
  }
}

/**
 * Adds what `wanted` asks for and is not yet in the policy file: missing tags, missing owners of
 * existing tags, missing grants. Removes only grants an earlier Tailmesh wrote that `wanted`
 * supersedes, found exactly as written; never anything else the admin wrote.
 */
export function addMeshPolicy(
  text: string,
  wanted: MeshPolicy,
): PolicyEditResult {
  const doc = new PolicyText(text, detectStyle(text));
  const changes: string[] = [];

  for (const [tag, owners] of Object.entries(wanted.tagOwners)) {
    const tagOwners = doc.section('tagOwners', 'object');
    const current = findNodeAtLocation(tagOwners, [tag]);
    if (!current) {
      doc.apply(
        appendMember(
          doc.text,
          tagOwners,
          `${JSON.stringify(tag)}: ${inlineJson(owners)}`,
          doc.style,
        ),
      );
      changes.push(`tagOwners: added ${tag} owned by ${owners.join(', ')}`);
      continue;
    }
    expectType(doc.text, current, 'array', `tagOwners["${tag}"]`);
    const missing = owners.filter(o => !stringValues(current).includes(o));
    for (const owner of missing) {
      const list = findNodeAtLocation(doc.section('tagOwners', 'object'), [
        tag,
      ])!;
      doc.apply(
        appendMember(doc.text, list, JSON.stringify(owner), doc.style, {
          inlineIfEmpty: true,
        }),
      );
    }
    if (missing.length)
      changes.push(`tagOwners: ${tag} now also owned by ${missing.join(', ')}`);
  }

  for (const old of wanted.superseded ?? []) {
    const grants = findNodeAtLocation(doc.root, ['grants']);
    if (grants?.type !== 'array') break;
    const found = (grants.children ?? []).find(g => sameGrant(valueOf(g), old));
    if (!found) continue;
    doc.apply([removeElementEdit(doc.text, found)]);
    changes.push(
      `grants: removed ${inlineJson(old)} (written by an earlier Tailmesh, replaced below)`,
    );
  }

  for (const { comment, grant } of wanted.grants) {
    const grants = doc.section('grants', 'array');
    if ((grants.children ?? []).some(g => sameGrant(valueOf(g), grant)))
      continue;
    doc.apply(
      appendMember(doc.text, grants, inlineJson(grant), doc.style, { comment }),
    );
    changes.push(`grants: added ${inlineJson(grant)}`);
  }

  return { text: doc.text, changes };
}

/**
 * A unified diff (`---`/`+++`, `@@` hunks, 3 lines of context) of two versions of a text, so a
 * dry run shows exactly what would be written. The hunks are jsdiff's (`structuredPatch`,
 * https://github.com/kpdecker/jsdiff), the same Myers diff `git diff` defaults to.
 */
export function unifiedDiff(
  before: string,
  after: string,
  fromLabel: string,
  toLabel: string,
  context = 3,
): string {
  if (before === after) return '';
  const { hunks } = structuredPatch(
    fromLabel,
    toLabel,
    before,
    after,
    undefined,
    undefined,
    { context },
  );
  return [
    `--- ${fromLabel}`,
    `+++ ${toLabel}`,
    ...hunks.flatMap(h => [
      `@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`,
      ...h.lines,
    ]),
    '',
  ].join('\n');
}
