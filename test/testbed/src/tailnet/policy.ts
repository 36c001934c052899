/*
 * Tailnet policy evaluation for the test bed's enforcing tailnet model.
 *
 * This is a MODEL of how Tailscale evaluates a tailnet policy file, written for the test bed from
 * Tailscale's documentation and headscale's open implementation. It is not Tailscale's code (the
 * control plane is closed source) and it is not a complete policy engine.
 *
 * Modelled:
 *  - HuJSON parsing (comments, trailing commas); field names are matched case-insensitively and
 *    unknown fields are rejected, like headscale's decoder (`policyJSONOpts` in
 *    hscontrol/policy/v2/types.go: MatchCaseInsensitiveNames, RejectUnknownMembers), so a typo such
 *    as `srcPostures` cannot silently drop a condition;
 *  - the packet filter from `grants` (`ip`) and legacy `acls` (`src`/`dst` or `users`/`ports`,
 *    `proto`), per (source node, destination node, protocol, port);
 *  - application capabilities from `grants` (`app`), merged the way the client's WhoIs CapMap is;
 *  - selectors `*`, users, `user:*@<domain>`, `group:`, `tag:`,
 *    `autogroup:member|tagged|self|danger-all|<role>`, `hosts` aliases, IPv4/IPv6 addresses and
 *    CIDRs;
 *  - tag ownership (`tagOwners`, tags owning tags, the roles that may apply any tag);
 *  - the checks for which Tailscale refuses a policy file that matter to evaluation (they throw a
 *    PolicyError here, as Tailscale would refuse to save the file).
 *
 * Not modelled (and never allowed to widen access):
 *  - device posture: a rule with `srcPosture`, or without it while `defaultSrcPosture` is set,
 *    matches nothing, because no node attributes exist here to satisfy a posture;
 *  - `via` (routing through subnet routers / exit nodes): such grants give no node-to-node access;
 *  - `ipset:` selectors, `autogroup:shared` (no device sharing here), `autogroup:internet` (public
 *    addresses, never a tailnet node), `autogroup:nonroot` (SSH users only) and autogroups this model
 *    does not know: they match nothing (Tailscale itself rejects unknown autogroups);
 *  - subnet routes, exit nodes, `ssh`, `nodeAttrs`, `autoApprovers`, `tests`/`sshTests`, DERP and
 *    other network-wide settings: accepted as sections, otherwise ignored.
 *
 * Sources (cited again where each rule is applied):
 *  - https://tailscale.com/kb/1337/acl-syntax (acls, legacy users/ports, proto, hosts, groups)
 *  - https://tailscale.com/kb/1324/grants and https://tailscale.com/kb/1538/grants-syntax (grants)
 *  - https://tailscale.com/kb/1068/tags (tags, tag owners, who may apply a tag)
 *  - https://tailscale.com/kb/1396/targets (selectors and autogroups)
 *  - https://tailscale.com/docs/kubernetes-operator/reference/tags (tags owning tags, empty owners)
 *  - headscale, https://github.com/juanfont/headscale, hscontrol/policy/v2/types.go, utils.go,
 *    filter.go, compiled.go, policy.go, and its testdata/*_results/*.hujson: packet filters, WhoIs
 *    CapMaps and error messages captured from Tailscale's hosted control plane for known policies
 *  - tailscale/tailscale wgengine/filter/filter.go, `Filter.CapsWithValues` (how capabilities merge)
 */
import { BlockList, isIP } from 'node:net';
import {
  getNodeValue,
  parseTree,
  printParseErrorCode,
  type ParseError,
} from 'jsonc-parser';

// ---------------------------------------------------------------------------------------------
// Public API

export interface TailnetUser {
  loginName: string;
  role:
    | 'owner'
    | 'admin'
    | 'member'
    | 'it-admin'
    | 'network-admin'
    | 'billing-admin'
    | 'auditor';
}

export interface TailnetNode {
  /** MagicDNS FQDN without trailing dot, e.g. cluster2-k8s-operator.tailmesh-test.ts.net */
  name: string;
  ipv4: string; // 100.64.0.0/10
  ipv6?: string;
  /** Tags the device asked for / was given. Empty for a user-owned device. */
  tags: string[];
  /** Login name of the owning user, for untagged devices. */
  user?: string;
}

export type Proto = 'tcp' | 'udp';

export interface CompiledPolicy {
  /** Tags of `node` that the policy still defines in tagOwners (others are void: match nothing). */
  effectiveTags(node: TailnetNode): string[];
  /** Packet filter: may `src` open a connection to `dst` on proto/port? (grants with `ip`, legacy `acls`). */
  allows(
    src: TailnetNode,
    dst: TailnetNode,
    proto: Proto,
    port: number,
  ): boolean;
  /** App capabilities granted to `src` on `dst` (grants' `app`), capability name -> concatenated values, as Tailscale's WhoIs CapMap gives them to the destination. */
  capabilities(src: TailnetNode, dst: TailnetNode): Record<string, unknown[]>;
  /** May a credential acting with `ownerTags` (an OAuth client's tags / an auth key's tags) or as `user` put `tag` on a device? (tagOwners; tags may own tags). */
  mayApplyTag(
    tag: string,
    by: { tags?: string[]; user?: TailnetUser },
  ): boolean;
}

/** A policy file Tailscale would refuse (syntax or content); the message says where and why. */
export class PolicyError extends Error {
  constructor(message: string) {
    super(`tailnet policy: ${message}`);
    this.name = 'PolicyError';
  }
}

/**
 * Compiles a tailnet policy file (HuJSON). `context.users` gives the tailnet's users and their
 * roles (for `autogroup:member` and the role autogroups). Selectors are resolved per call from the
 * two nodes passed to `allows`/`capabilities` (`autogroup:self` needs only those two), so
 * `context.nodes` is accepted but not needed.
 */
export function compilePolicy(
  hujsonText: string,
  context: { users: TailnetUser[]; nodes?: TailnetNode[] },
): CompiledPolicy {
  const root = parseHuJson(hujsonText);
  const sections = readSections(root);
  const env = buildEnv(sections, context.users);
  const { netRules, appRules } = compileRules(sections, env);
  return {
    effectiveTags: node => effectiveTags(node, env),
    allows: (src, dst, proto, port) =>
      allows(netRules, env, src, dst, proto, port),
    capabilities: (src, dst) => capabilities(appRules, env, src, dst),
    mayApplyTag: (tag, by) => mayApplyTag(env, tag, by),
  };
}

// ---------------------------------------------------------------------------------------------
// HuJSON and field access

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseHuJson(text: string): JsonObject {
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, {
    allowTrailingComma: true,
    disallowComments: false,
    allowEmptyContent: false,
  });
  if (errors.length > 0) {
    const where = errors
      .map(e => `${position(text, e.offset)}: ${printParseErrorCode(e.error)}`)
      .join('; ');
    throw new PolicyError(`not valid HuJSON: ${where}`);
  }
  if (!tree) throw new PolicyError('not valid HuJSON: empty document');
  const value: unknown = getNodeValue(tree);
  if (!isObject(value))
    throw new PolicyError(`the policy file must be a JSON object`);
  return value;
}

function position(text: string, offset: number): string {
  const before = text.slice(0, offset).split(/\r\n|\r|\n/);
  return `line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

/**
 * Reads an object's fields by lower-cased name, rejecting unknown and case-folded duplicate
 * names (headscale decodes with MatchCaseInsensitiveNames + RejectUnknownMembers, types.go).
 */
function readFields(
  object: JsonObject,
  where: string,
  known: readonly string[],
): Map<string, unknown> {
  const byLower = new Map(known.map(k => [k.toLowerCase(), k]));
  const out = new Map<string, unknown>();
  for (const [key, value] of Object.entries(object)) {
    const name = byLower.get(key.toLowerCase());
    if (name === undefined)
      throw new PolicyError(`${where}: unknown field ${JSON.stringify(key)}`);
    if (out.has(name))
      throw new PolicyError(
        `${where}: field ${JSON.stringify(name)} appears twice`,
      );
    out.set(name, value);
  }
  return out;
}

function stringList(value: unknown, where: string): string[] {
  if (!Array.isArray(value))
    throw new PolicyError(`${where}: expected an array of strings`);
  return value.map((item, i) => {
    if (typeof item !== 'string' || item === '')
      throw new PolicyError(`${where}[${i}]: expected a non-empty string`);
    return item;
  });
}

function objectOf(value: unknown, where: string): JsonObject {
  if (!isObject(value)) throw new PolicyError(`${where}: expected an object`);
  return value;
}

function arrayOf(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value))
    throw new PolicyError(`${where}: expected an array`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Sections and the definitions rules refer to

/** Top-level sections of https://tailscale.com/kb/1337/acl-syntax and the policy-file reference. */
const TOP_LEVEL_SECTIONS = [
  'acls',
  'grants',
  'groups',
  'hosts',
  'tagOwners',
  'autoApprovers',
  'ssh',
  'nodeAttrs',
  'postures',
  'defaultSrcPosture',
  'ipsets',
  'tests',
  'sshTests',
  'derpMap',
  'disableIPv4',
  'randomizeClientPort',
  'OneCGNATRoute',
  'extraDNSRecords',
] as const;

type Sections = Map<string, unknown>;

function readSections(root: JsonObject): Sections {
  return readFields(root, 'policy', TOP_LEVEL_SECTIONS);
}

type Role = TailnetUser['role'];

const ROLES: readonly Role[] = [
  'owner',
  'admin',
  'member',
  'it-admin',
  'network-admin',
  'billing-admin',
  'auditor',
];

/** What selectors and tag owners resolve against. Login names are compared lower-cased. */
interface Env {
  groups: Map<string, ReadonlySet<string>>;
  hosts: Map<string, Prefix>;
  tagOwners: Map<string, Owner[]>;
  users: Map<string, TailnetUser>;
  /** `defaultSrcPosture` is set: every rule without its own srcPosture is posture-conditioned. */
  defaultPosture: boolean;
}

function buildEnv(sections: Sections, users: TailnetUser[]): Env {
  const groups = readGroups(sections.get('groups'));
  const tagNames = readTagNames(sections.get('tagOwners'));
  const env: Env = {
    groups,
    hosts: readHosts(sections.get('hosts')),
    tagOwners: new Map(),
    users: new Map(users.map(u => [u.loginName.toLowerCase(), u])),
    defaultPosture: false,
  };
  const defaultPosture = sections.get('defaultSrcPosture');
  if (defaultPosture !== undefined)
    env.defaultPosture =
      stringList(defaultPosture, 'defaultSrcPosture').length > 0;
  const tagOwners = sections.get('tagOwners');
  if (tagOwners !== undefined) {
    for (const [tag, owners] of Object.entries(
      objectOf(tagOwners, 'tagOwners'),
    )) {
      const where = `tagOwners[${JSON.stringify(tag)}]`;
      env.tagOwners.set(
        tag,
        stringList(owners, where).map(o =>
          parseOwner(o, where, groups, tagNames),
        ),
      );
    }
  }
  return env;
}

/** Tag names must start with a letter after `tag:` (Tailscale's error, headscale testdata). */
const TAG_NAME = /^tag:[A-Za-z][^\s:]*$/;

function readTagNames(value: unknown): ReadonlySet<string> {
  if (value === undefined) return new Set();
  const names = Object.keys(objectOf(value, 'tagOwners'));
  for (const name of names) {
    if (!TAG_NAME.test(name))
      throw new PolicyError(
        `tagOwners[${JSON.stringify(name)}]: tag names must start with a letter, after 'tag:'`,
      );
  }
  return new Set(names);
}

/**
 * Groups hold users only; a group inside a group is refused with Tailscale's own message
 * ("group members cannot be recursive", headscale testdata ssh-group-nested-*.hujson).
 */
function readGroups(value: unknown): Map<string, ReadonlySet<string>> {
  const groups = new Map<string, ReadonlySet<string>>();
  if (value === undefined) return groups;
  for (const [name, members] of Object.entries(objectOf(value, 'groups'))) {
    const where = `groups[${JSON.stringify(name)}]`;
    if (!/^group:[^\s:]+$/.test(name))
      throw new PolicyError(
        `${where}: group names must look like group:<name>`,
      );
    const logins = stringList(members, where).map(member => {
      if (member.startsWith('group:'))
        throw new PolicyError(
          `${where}: ${JSON.stringify(member)}: group members cannot be recursive`,
        );
      if (!member.includes('@'))
        throw new PolicyError(
          `${where}: ${JSON.stringify(member)}: groups may only contain users`,
        );
      return member.toLowerCase();
    });
    groups.set(name, new Set(logins));
  }
  return groups;
}

/** `hosts` maps a name to one IP address or CIDR (kb/1337, "Hosts"). */
function readHosts(value: unknown): Map<string, Prefix> {
  const hosts = new Map<string, Prefix>();
  if (value === undefined) return hosts;
  for (const [name, address] of Object.entries(objectOf(value, 'hosts'))) {
    const where = `hosts[${JSON.stringify(name)}]`;
    if (name === '' || name.includes(':') || name.includes('@'))
      throw new PolicyError(`${where}: not a valid host name`);
    const prefix =
      typeof address === 'string' ? parsePrefix(address) : undefined;
    if (!prefix)
      throw new PolicyError(`${where}: expected an IP address or CIDR`);
    hosts.set(name, prefix);
  }
  return hosts;
}

// ---------------------------------------------------------------------------------------------
// Addresses

interface Prefix {
  family: 4 | 6;
  list: BlockList;
  bits: number;
}

/** Parses `addr` or `addr/bits` (IPv4 or IPv6, brackets not allowed here). */
function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  const bitsText = slash < 0 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) return undefined;
  const bits = Number(bitsText);
  const list = new BlockList();
  list.addSubnet(address, bits, family === 4 ? 'ipv4' : 'ipv6');
  return { family, list, bits };
}

/**
 * Address selectors match a node if one of its addresses is inside. The family is checked first
 * because BlockList also matches IPv4-mapped IPv6 addresses against IPv4 subnets.
 */
function prefixContainsNode(prefix: Prefix, node: TailnetNode): boolean {
  return [node.ipv4, node.ipv6].some(address => {
    if (address === undefined || isIP(address) !== prefix.family) return false;
    return prefix.list.check(address, prefix.family === 4 ? 'ipv4' : 'ipv6');
  });
}

// ---------------------------------------------------------------------------------------------
// Selectors (https://tailscale.com/kb/1396/targets)

type Selector =
  | { kind: 'any' }
  | { kind: 'user'; login: string }
  | { kind: 'domain'; suffix: string }
  | { kind: 'group'; logins: ReadonlySet<string> }
  | { kind: 'tag'; tag: string }
  | { kind: 'member' }
  | { kind: 'tagged' }
  | { kind: 'role'; role: Role }
  | { kind: 'address'; prefix: Prefix }
  | { kind: 'self' }
  | { kind: 'nothing' };

type Side = 'src' | 'dst';

function parseSelector(
  text: string,
  side: Side,
  where: string,
  env: Env,
): Selector {
  if (text === '*') return { kind: 'any' };
  if (text.startsWith('autogroup:')) return parseAutogroup(text, side, where);
  if (text.startsWith('tag:')) {
    if (!env.tagOwners.has(text))
      throw new PolicyError(`${where}: tag not found: ${JSON.stringify(text)}`);
    return { kind: 'tag', tag: text };
  }
  if (text.startsWith('group:')) {
    const logins = env.groups.get(text);
    if (!logins)
      throw new PolicyError(
        `${where}: group not found: ${JSON.stringify(text)}`,
      );
    return { kind: 'group', logins };
  }
  // IP sets (https://tailscale.com/docs/features/tailnet-policy-file/ip-sets) are not modelled.
  if (text.startsWith('ipset:')) return { kind: 'nothing' };
  if (text.startsWith('user:')) return parseUserDomain(text, where);
  if (text.includes('@')) return { kind: 'user', login: text.toLowerCase() };
  const prefix = parsePrefix(text);
  if (prefix) return { kind: 'address', prefix };
  const host = env.hosts.get(text);
  if (host) return { kind: 'address', prefix: host };
  throw new PolicyError(`${where}: invalid selector ${JSON.stringify(text)}`);
}

/**
 * `user:*@<domain>`: the users whose login is in that domain. headscale lacks it; Tailscale
 * compiles it, in src and in dst, to the untagged devices of those users (headscale testdata
 * grant-k20, grant-k21). Tailscale also refuses a domain not associated with the tailnet; that is
 * not checked here.
 */
function parseUserDomain(text: string, where: string): Selector {
  const match = /^user:\*@([^@\s*]+)$/.exec(text);
  if (!match)
    throw new PolicyError(`${where}: invalid selector ${JSON.stringify(text)}`);
  return { kind: 'domain', suffix: `@${match[1].toLowerCase()}` };
}

/**
 * Autogroups (kb/1396, "Autogroups"). Where an autogroup is refused on one side, the message is the
 * one Tailscale returns (headscale testdata acl-err02, grant-k7). Role autogroups select the
 * untagged devices of users with exactly that role.
 */
function parseAutogroup(text: string, side: Side, where: string): Selector {
  const name = text.slice('autogroup:'.length);
  if (side === 'src' && (name === 'self' || name === 'internet'))
    throw new PolicyError(
      `${where}: ${JSON.stringify(text)} not valid on the src side of a rule`,
    );
  if (side === 'dst' && name === 'danger-all')
    throw new PolicyError(`${where}: cannot use autogroup:danger-all as a dst`);
  if (name === 'member') return { kind: 'member' };
  if (name === 'tagged') return { kind: 'tagged' };
  if (name === 'self') return { kind: 'self' };
  // danger-all: "all devices, even those outside your tailnet" (kb/1396); in src that is every node.
  if (name === 'danger-all') return { kind: 'any' };
  const role = ROLES.find(r => r === name && r !== 'member');
  if (role) return { kind: 'role', role };
  // internet (public addresses via exit nodes), shared, nonroot and unknown names: no tailnet node.
  return { kind: 'nothing' };
}

function isTagged(node: TailnetNode): boolean {
  // kb/1068: "Applying a tag to a device removes any user-based authentication."
  return node.tags.length > 0;
}

/** The login of the user a node is identified by; tagged nodes have none. */
function ownerLogin(node: TailnetNode): string | undefined {
  if (isTagged(node) || node.user === undefined) return undefined;
  return node.user.toLowerCase();
}

function effectiveTags(node: TailnetNode, env: Env): string[] {
  return [...new Set(node.tags)].filter(tag => env.tagOwners.has(tag));
}

function matchesNode(sel: Selector, node: TailnetNode, env: Env): boolean {
  const login = ownerLogin(node);
  switch (sel.kind) {
    case 'any':
      return true;
    case 'user':
      return login === sel.login;
    case 'domain':
      return login !== undefined && login.endsWith(sel.suffix);
    case 'group':
      return login !== undefined && sel.logins.has(login);
    case 'tag':
      return effectiveTags(node, env).includes(sel.tag);
    case 'member':
      return login !== undefined && env.users.has(login);
    case 'tagged':
      return effectiveTags(node, env).length > 0;
    case 'role':
      return login !== undefined && env.users.get(login)?.role === sel.role;
    case 'address':
      return prefixContainsNode(sel.prefix, node);
    case 'self':
    case 'nothing':
      return false;
    default:
      return assertNever(sel);
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected kind ${JSON.stringify(value)}`);
}

/**
 * `autogroup:self`: "devices where the same user is authenticated on both the source and
 * destination", tagged devices excluded (kb/1396; headscale compiled.go compileAutogroupSelf, which
 * also keeps only the sources that match the rule's src). Checked by the caller after src.
 */
function sameUser(src: TailnetNode, dst: TailnetNode): boolean {
  const login = ownerLogin(dst);
  return login !== undefined && ownerLogin(src) === login;
}

/**
 * With `autogroup:self` in dst, Tailscale refuses sources other than users, groups and user
 * autogroups; ACLs also allow `*`, grants do not (headscale testdata acl-a04 accepted vs grant-p04-3
 * and acl-s04..sf08 refused; types.go validateACLSrcDstCombination / validateGrantSrcDstCombination).
 */
function checkSelfSources(
  src: Selector[],
  dst: Selector[],
  allowAny: boolean,
  where: string,
): void {
  if (!dst.some(d => d.kind === 'self')) return;
  const ok = src.every(
    s =>
      s.kind === 'user' ||
      s.kind === 'domain' ||
      s.kind === 'group' ||
      s.kind === 'member' ||
      s.kind === 'role' ||
      (allowAny && s.kind === 'any'),
  );
  if (!ok)
    throw new PolicyError(
      `${where}: autogroup:self can only be used with users, groups, or supported autogroups`,
    );
}

// ---------------------------------------------------------------------------------------------
// Protocols and ports

interface PortRange {
  first: number;
  last: number;
}

const ALL_PORTS: readonly PortRange[] = [{ first: 0, last: 65535 }];

/**
 * Without a protocol a rule covers TCP, UDP, ICMP and ICMPv6: Tailscale sends such rules with an
 * empty IPProto, which the client expands to [6, 17, 1, 58] (headscale testdata grant-j6: `"ip":
 * ["80"]` compiles to IPProto [6, 17, 1, 58]; kb/1337 "proto": optional, default all of these).
 */
const DEFAULT_PROTOCOLS: ReadonlySet<number> = new Set([6, 17, 1, 58]);

/** IANA protocol names Tailscale accepts (headscale types.go, Protocol constants). */
const PROTOCOL_NUMBERS: ReadonlyMap<string, number> = new Map([
  ['icmp', 1],
  ['igmp', 2],
  ['ipv4', 4],
  ['ip-in-ip', 4],
  ['tcp', 6],
  ['egp', 8],
  ['igp', 9],
  ['udp', 17],
  ['gre', 47],
  ['esp', 50],
  ['ah', 51],
  ['ipv6-icmp', 58],
  ['sctp', 132],
  ['fc', 133],
]);

const PROTO_NUMBER: Record<Proto, number> = { tcp: 6, udp: 17 };

/** A protocol name or IANA number 1-255, case-insensitive (headscale types.go Protocol.validate). */
function parseProtocol(value: unknown, where: string): ReadonlySet<number> {
  const text =
    typeof value === 'number' || typeof value === 'string'
      ? String(value).toLowerCase()
      : '';
  const named = PROTOCOL_NUMBERS.get(text);
  if (named !== undefined) return new Set([named]);
  if (/^[1-9]\d{0,2}$/.test(text) && Number(text) <= 255)
    return new Set([Number(text)]);
  throw new PolicyError(
    `${where}: ${JSON.stringify(value)} is not a known protocol name or number 1-255`,
  );
}

/**
 * Ports: `*`, `22`, `80,443`, `1000-2000` and lists of those (kb/1337 "dst"; headscale utils.go
 * parsePortRange). A single port must be above 0 (Tailscale's message, headscale testdata grant-k23).
 */
function parsePorts(text: string, where: string): readonly PortRange[] {
  if (text === '*') return ALL_PORTS;
  return text.split(',').map(part => parsePortPart(part, text, where));
}

function parsePortPart(part: string, text: string, where: string): PortRange {
  const fail = (why: string) =>
    new PolicyError(`${where}: port range ${JSON.stringify(text)}: ${why}`);
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
  if (!match) throw fail(`invalid port ${JSON.stringify(part)}`);
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (first > 65535 || last > 65535) throw fail('ports must be 0-65535');
  if (match[2] === undefined && first === 0)
    throw fail("first port must be >0, or use '*' for wildcard");
  if (first > last) throw fail('the first port is above the last');
  return { first, last };
}

function portIn(ranges: readonly PortRange[], port: number): boolean {
  return ranges.some(r => port >= r.first && port <= r.last);
}

// ---------------------------------------------------------------------------------------------
// Rules

interface NetRule {
  src: Selector[];
  dst: Selector[];
  protocols: ReadonlySet<number>;
  ports: readonly PortRange[];
}

interface AppRule {
  src: Selector[];
  dst: Selector[];
  caps: Array<[string, unknown[]]>;
}

interface CompiledRules {
  netRules: NetRule[];
  appRules: AppRule[];
}

function compileRules(sections: Sections, env: Env): CompiledRules {
  const acls = sections.get('acls');
  const grants = sections.get('grants');
  // A policy with neither section allows everything: Tailscale compiles it to src * -> *:* on
  // every protocol (headscale testdata nodeattrs-attr-c2-randomize.hujson and the other captures of
  // policies without acls/grants; headscale docs/ref/policy.md "Allow All"). An empty
  // `"grants": []` or `"acls": []` denies everything.
  if (acls === undefined && grants === undefined)
    return {
      netRules: [
        {
          src: [{ kind: 'any' }],
          dst: [{ kind: 'any' }],
          protocols: DEFAULT_PROTOCOLS,
          ports: ALL_PORTS,
        },
      ],
      appRules: [],
    };
  const out: CompiledRules = { netRules: [], appRules: [] };
  if (grants !== undefined)
    arrayOf(grants, 'grants').forEach((g, i) =>
      compileGrant(g, `grants[${i}]`, env, out),
    );
  if (acls !== undefined)
    arrayOf(acls, 'acls').forEach((a, i) =>
      compileAcl(a, `acls[${i}]`, env, out),
    );
  return out;
}

/**
 * Device posture cannot be satisfied here (no node attributes), so a posture-conditioned rule
 * matches nothing. Without its own srcPosture a rule inherits defaultSrcPosture
 * (https://tailscale.com/kb/1288/device-posture).
 */
function postureConditioned(value: unknown, where: string, env: Env): boolean {
  if (value === undefined) return env.defaultPosture;
  const postures = stringList(value, `${where}.srcPosture`);
  return postures.length > 0 || env.defaultPosture;
}

/** An empty list is accepted and matches nothing, as by Tailscale (headscale testdata grant-h4, h5). */
function selectors(
  value: unknown,
  side: Side,
  where: string,
  env: Env,
): Selector[] {
  return stringList(value, where).map((text, i) =>
    parseSelector(text, side, `${where}[${i}]`, env),
  );
}

const GRANT_FIELDS = ['src', 'dst', 'ip', 'app', 'srcPosture', 'via'] as const;

/** One grant (kb/1538): src, dst, `ip` and/or `app`, optional srcPosture and via. */
function compileGrant(
  value: unknown,
  where: string,
  env: Env,
  out: CompiledRules,
): void {
  const f = readFields(objectOf(value, where), where, GRANT_FIELDS);
  const src = selectors(f.get('src'), 'src', `${where}.src`, env);
  const dstTexts = stringList(f.get('dst'), `${where}.dst`);
  checkGrantDstNotAll(dstTexts, where);
  const dst = selectors(f.get('dst'), 'dst', `${where}.dst`, env);
  checkSelfSources(src, dst, false, where);
  const ip = readGrantIp(f.get('ip'), `${where}.ip`);
  const caps = readGrantApp(f.get('app'), `${where}.app`);
  // Tailscale's message (headscale testdata grant-v01, v22): capabilities are for tailnet nodes.
  if (caps.length > 0 && dstTexts.includes('autogroup:internet'))
    throw new PolicyError(
      `${where}: cannot use app grants with autogroup:internet`,
    );
  // Tailscale's own message for a grant with neither (headscale testdata grant-h1, h3, h8).
  if (ip.length === 0 && caps.length === 0)
    throw new PolicyError(`${where}: ip and app can not both be empty`);
  const via = readVia(f.get('via'), `${where}.via`, env);
  // via grants route to subnets through the named routers; they give no node-to-node access.
  if (postureConditioned(f.get('srcPosture'), where, env) || via) return;
  for (const { protocols, ports } of ip)
    out.netRules.push({ src, dst, protocols, ports });
  if (caps.length > 0) out.appRules.push({ src, dst, caps });
}

/** Tailscale refuses /0 destinations in grants (headscale testdata grant-v04, v05, v08). */
function checkGrantDstNotAll(dst: string[], where: string): void {
  for (const text of dst) {
    const prefix = parsePrefix(text);
    if (prefix && prefix.bits === 0)
      throw new PolicyError(
        `${where}: dst ${JSON.stringify(text)}: to allow all IP addresses, use "*" or "autogroup:internet"`,
      );
  }
}

/**
 * Grant `ip` entries (kb/1538 "Network layer capabilities"): `*`, a port list without protocol
 * (TCP, UDP and ICMP: see DEFAULT_PROTOCOLS), or `<proto>:<ports>` such as `tcp:443`, `udp:53`,
 * `icmp:*`. A bare protocol such as `icmp` is refused, as by Tailscale (headscale testdata grant-j7).
 */
function readGrantIp(
  value: unknown,
  where: string,
): Array<{ protocols: ReadonlySet<number>; ports: readonly PortRange[] }> {
  if (value === undefined) return [];
  return stringList(value, where).map((entry, i) => {
    const at = `${where}[${i}]`;
    if (entry === '*')
      return { protocols: DEFAULT_PROTOCOLS, ports: ALL_PORTS };
    const parts = entry.split(':');
    if (parts.length === 1)
      return { protocols: DEFAULT_PROTOCOLS, ports: parsePorts(entry, at) };
    if (parts.length !== 2)
      throw new PolicyError(
        `${at}: want "<proto>:<ports>", got ${JSON.stringify(entry)}`,
      );
    return {
      protocols: parseProtocol(parts[0], at),
      ports: parsePorts(parts[1], at),
    };
  });
}

/**
 * Capabilities the control plane generates itself and refuses in a policy file ("capability name
 * must not be in the tailscale.com domain", headscale testdata grant-a5, k9, k10; the companion caps
 * in headscale filter.go). Other tailscale.com/cap/* names, such as kubernetes, drive or tailsql,
 * are grantable.
 */
const RESERVED_CAPABILITIES: ReadonlySet<string> = new Set([
  'tailscale.com/cap/drive-sharer',
  'tailscale.com/cap/relay-target',
  'tailscale.com/cap/ingress',
  'tailscale.com/cap/funnel',
]);

/**
 * Grant `app`: capability name -> array of JSON objects (kb/1538 "Application layer
 * capabilities"). Names must have the form {domain}/{path} (Tailscale's message, headscale testdata
 * grant-a2). Values are kept in order for capabilities().
 */
function readGrantApp(
  value: unknown,
  where: string,
): Array<[string, unknown[]]> {
  if (value === undefined) return [];
  return Object.entries(objectOf(value, where)).map(([name, values]) => {
    const at = `${where}[${JSON.stringify(name)}]`;
    if (name.includes('://') || !/^[^/\s]+\/\S+$/.test(name))
      throw new PolicyError(
        `${at}: capability name must have the form {domain}/{path}`,
      );
    if (RESERVED_CAPABILITIES.has(name))
      throw new PolicyError(
        `${at}: capability name must not be in the tailscale.com domain`,
      );
    const list = arrayOf(values, at);
    list.forEach((item, i) => objectOf(item, `${at}[${i}]`));
    return [name, list];
  });
}

/** `via` must name defined tags (Tailscale: "via can only be a tag", headscale testdata grant-i4). */
function readVia(value: unknown, where: string, env: Env): boolean {
  if (value === undefined) return false;
  const tags = stringList(value, where);
  for (const tag of tags) {
    if (!tag.startsWith('tag:'))
      throw new PolicyError(`${where}: via can only be a tag`);
    if (!env.tagOwners.has(tag))
      throw new PolicyError(`${where}: tag ${JSON.stringify(tag)} not found`);
  }
  return tags.length > 0;
}

const ACL_FIELDS = [
  'action',
  'src',
  'dst',
  'users',
  'ports',
  'proto',
  'srcPosture',
] as const;

/**
 * One legacy ACL row (kb/1337 "Access rules"): action "accept", src (or legacy `users`), dst (or
 * legacy `ports`) entries `<selector>:<ports>`, optional proto. Each dst entry becomes its own rule
 * with its own ports, as in headscale's aclToGrants (types.go).
 */
function compileAcl(
  value: unknown,
  where: string,
  env: Env,
  out: CompiledRules,
): void {
  const f = readFields(objectOf(value, where), where, ACL_FIELDS);
  const action = f.get('action');
  if (action !== 'accept')
    throw new PolicyError(
      `${where}: action=${JSON.stringify(action ?? '')} is not supported`,
    );
  const srcField = pickLegacy(f, 'src', 'users', where);
  const dstField = pickLegacy(f, 'dst', 'ports', where);
  const src = selectors(f.get(srcField), 'src', `${where}.${srcField}`, env);
  const protoValue = f.get('proto');
  const protocols =
    protoValue === undefined
      ? DEFAULT_PROTOCOLS
      : parseProtocol(protoValue, `${where}.proto`);
  const dsts = stringList(f.get(dstField), `${where}.${dstField}`).map(
    (entry, i) => parseAclDst(entry, `${where}.${dstField}[${i}]`, env),
  );
  checkSelfSources(
    src,
    dsts.map(d => d.selector),
    true,
    where,
  );
  if (postureConditioned(f.get('srcPosture'), where, env)) return;
  for (const { selector, ports } of dsts)
    out.netRules.push({ src, dst: [selector], protocols, ports });
}

function pickLegacy(
  f: Map<string, unknown>,
  modern: string,
  legacy: string,
  where: string,
): string {
  if (f.has(modern) && f.has(legacy))
    throw new PolicyError(
      `${where}: use either "${modern}" or the legacy "${legacy}", not both`,
    );
  if (!f.has(modern) && !f.has(legacy))
    throw new PolicyError(`${where}: missing "${modern}"`);
  return f.has(modern) ? modern : legacy;
}

/**
 * `<selector>:<ports>`, split at the last colon so IPv6 addresses and `tag:x:22` work; `[v6]:port`
 * brackets are accepted (headscale utils.go splitDestinationAndPort). The ports are read first, so
 * `autogroup:self` without ports fails the way Tailscale's does (headscale testdata acl-err03).
 */
function parseAclDst(
  entry: string,
  where: string,
  env: Env,
): { selector: Selector; ports: readonly PortRange[] } {
  const text = unbracket(entry, where);
  const colon = text.lastIndexOf(':');
  if (colon <= 0 || colon === text.length - 1)
    throw new PolicyError(
      `${where}: dst=${JSON.stringify(entry)}: want "<selector>:<ports>"`,
    );
  const at = `${where}: dst=${JSON.stringify(entry)}`;
  const ports = parsePorts(text.slice(colon + 1), at);
  const selector = parseSelector(text.slice(0, colon), 'dst', where, env);
  return { selector, ports };
}

function unbracket(entry: string, where: string): string {
  if (!entry.startsWith('[')) return entry;
  const close = entry.indexOf(']');
  const inner = close < 0 ? '' : entry.slice(1, close);
  if (isIP(inner) !== 6)
    throw new PolicyError(
      `${where}: brackets are only for IPv6 addresses: ${JSON.stringify(entry)}`,
    );
  return inner + entry.slice(close + 1);
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/**
 * Union of every rule whose src matches `src` and whose dst matches `dst`; grants and ACLs add up
 * and none can narrow another (kb/1538 "Core concepts").
 */
function pairMatches(
  rule: { src: Selector[]; dst: Selector[] },
  env: Env,
  src: TailnetNode,
  dst: TailnetNode,
): boolean {
  if (!rule.src.some(s => matchesNode(s, src, env))) return false;
  return rule.dst.some(d =>
    d.kind === 'self' ? sameUser(src, dst) : matchesNode(d, dst, env),
  );
}

function allows(
  rules: NetRule[],
  env: Env,
  src: TailnetNode,
  dst: TailnetNode,
  proto: Proto,
  port: number,
): boolean {
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new RangeError(`port must be an integer 0-65535, got ${port}`);
  const number = PROTO_NUMBER[proto];
  if (number === undefined)
    throw new RangeError(`proto must be "tcp" or "udp", got ${String(proto)}`);
  return rules.some(
    r =>
      r.protocols.has(number) &&
      portIn(r.ports, port) &&
      pairMatches(r, env, src, dst),
  );
}

/**
 * Concatenates each matching grant's values per capability name, in policy order, as the client's
 * Filter.CapsWithValues does (tailscale/tailscale wgengine/filter/filter.go); headscale testdata
 * grant-g2/g3/g6 show the WhoIs CapMap of a destination listing the values of both matching grants.
 * A grant counts once per pair even if several of its dst selectors match. Capabilities do not
 * depend on `ip` access: an app-only grant yields a CapGrant without any DstPorts (headscale
 * testdata grant-v20), though without network access the source cannot reach the application.
 */
function capabilities(
  rules: AppRule[],
  env: Env,
  src: TailnetNode,
  dst: TailnetNode,
): Record<string, unknown[]> {
  const merged = new Map<string, unknown[]>();
  for (const rule of rules) {
    if (!pairMatches(rule, env, src, dst)) continue;
    for (const [name, values] of rule.caps)
      merged.set(name, [
        ...(merged.get(name) ?? []),
        ...structuredClone(values),
      ]);
  }
  return Object.fromEntries(merged);
}

// ---------------------------------------------------------------------------------------------
// Tag ownership (https://tailscale.com/kb/1068/tags)

type Owner =
  | { kind: 'user'; login: string }
  | { kind: 'group'; logins: ReadonlySet<string> }
  | { kind: 'tag'; tag: string }
  | { kind: 'member' }
  | { kind: 'role'; role: Role }
  | { kind: 'nothing' };

/** Owners may be users, groups, tags and user autogroups (kb/1068 "Define a tag"). */
function parseOwner(
  text: string,
  where: string,
  groups: Map<string, ReadonlySet<string>>,
  tagNames: ReadonlySet<string>,
): Owner {
  if (text.startsWith('tag:')) {
    if (!tagNames.has(text))
      throw new PolicyError(`${where}: tag not found: ${JSON.stringify(text)}`);
    return { kind: 'tag', tag: text };
  }
  if (text.startsWith('group:')) {
    const logins = groups.get(text);
    if (!logins)
      throw new PolicyError(
        `${where}: group not found: ${JSON.stringify(text)}`,
      );
    return { kind: 'group', logins };
  }
  if (text === 'autogroup:member') return { kind: 'member' };
  if (text.startsWith('autogroup:')) {
    const role = ROLES.find(r => `autogroup:${r}` === text);
    return role ? { kind: 'role', role } : { kind: 'nothing' };
  }
  if (text.includes('@')) return { kind: 'user', login: text.toLowerCase() };
  throw new PolicyError(`${where}: invalid tag owner ${JSON.stringify(text)}`);
}

/** kb/1068 "Requirements": "Owner, Admin, or Network admin can apply any tag, even if they don't own the tag." */
const ROLES_APPLYING_ANY_TAG: ReadonlySet<Role> = new Set([
  'owner',
  'admin',
  'network-admin',
]);

/**
 * The tag must be defined in tagOwners. A credential may apply the tags it holds and the tags they
 * own; ownership through tags is followed transitively, for users as for tags (headscale policy.go
 * TagOwnedByTags and flattenTags). An empty owner list leaves the tag to the roles above ("makes
 * tag:k8s-operator owned by tailnet admins", Tailscale's operator tag docs).
 */
function mayApplyTag(
  env: Env,
  tag: string,
  by: { tags?: string[]; user?: TailnetUser },
): boolean {
  if (!env.tagOwners.has(tag)) return false;
  if (by.user && ROLES_APPLYING_ANY_TAG.has(by.user.role)) return true;
  const held = new Set((by.tags ?? []).filter(t => env.tagOwners.has(t)));
  return ownedBy(env, tag, held, by.user, new Set());
}

function ownedBy(
  env: Env,
  tag: string,
  held: ReadonlySet<string>,
  user: TailnetUser | undefined,
  visiting: Set<string>,
): boolean {
  if (held.has(tag)) return true;
  if (visiting.has(tag)) return false;
  visiting.add(tag);
  return (env.tagOwners.get(tag) ?? []).some(owner =>
    owner.kind === 'tag'
      ? ownedBy(env, owner.tag, held, user, visiting)
      : user !== undefined && userIsOwner(owner, user),
  );
}

function userIsOwner(owner: Owner, user: TailnetUser): boolean {
  const login = user.loginName.toLowerCase();
  switch (owner.kind) {
    case 'user':
      return owner.login === login;
    case 'group':
      return owner.logins.has(login);
    case 'member':
      // Every user of the tailnet has some role and is a member; shared-in users are not modelled.
      return true;
    case 'role':
      return owner.role === user.role;
    case 'tag':
    case 'nothing':
      return false;
    default:
      return assertNever(owner);
  }
}
