/*
 * Local stand-in for the parts of Tailscale's control-plane API that Tailmesh and the test bed's
 * tailnet model use: the OAuth client-credentials token endpoint, the tailnet policy file (get,
 * replace, validate), the tailnet settings (get, update; `httpsEnabled` is what the tailnet model
 * acts on) and the device list (read-only, from the test bed's tailnet model).
 * It follows Tailscale's documented contract; it is not a re-implementation of Tailscale's policy
 * engine.
 *
 * Sources checked (stored copies read through the project's `search` tool):
 *  - tailscale/tailscale `publicapi/tailnet.md` (Get policy file, Update policy file, Validate and test
 *    policy file, the `{tailnet}` path element) and `publicapi/overview.md` (authentication, error body
 *    `{"message": ...}`);
 *  - tailscale/tailscale `api.md` (older revision, same contract: HuJSON default, `If-Match: ts-default`,
 *    `?details=1`, validate semantics);
 *  - tailscale/tailscale `client/tailscale/acl.go` (`ACL`, `ACLHuJSON` which sends `?details=1` with
 *    `Accept: application/hujson`, `SetACL`/`SetACLHuJSON` which send `Content-Type: application/hujson`
 *    and the ETag as `If-Match`, `ValidateACLJSON` which treats an empty 200 body as success);
 *  - tailscale.com/kb/1215 (OAuth clients: client-credentials flow of OAuth 2.0, access tokens expire
 *    after one hour) and kb/1623 (trust-credential scopes, incl. `all` / `all:read`); scope names
 *    `policy_file` and `policy_file:read` as used by public clients of the API;
 *  - tailscale.com/kb/1337 (policy syntax: sections, `acls` rows with `action: "accept"` and the legacy
 *    `users`/`ports`), kb/1395 (tailnet policy file sections), kb/1538 (grants: `src`, `dst` and `ip`
 *    and/or `app`; `app` maps capability names to arrays of objects);
 *  - tailscale/tailscale-client-go-v2 `tailnet_settings.go` (`TailnetSettings`, the GET body, and
 *    `UpdateTailnetSettingsRequest`, the PATCH body: every field optional, null meaning "leave
 *    unchanged" — the client always sends `aclsExternallyManagedOn` and `aclsExternalLink`, null when
 *    unset —, `regionalRoutingOn` deprecated in favour of `routeSelection` and mirrored from it, the
 *    two not to be sent together) and tailscale.com/kb/1153 (HTTPS certificates, the `httpsEnabled`
 *    switch);
 *  - tailscale/tailscale `publicapi/tailnet.md` (List tailnet devices, `fields=default|all`) and
 *    `publicapi/device.md` (the device attributes), with tailscale-client-go-v2 `devices.go`
 *    (`Device`, and the list body `{"devices": [...]}` it decodes; the prose says "a JSON array");
 *  - tailscale/terraform-provider-tailscale `docs/resources/oauth_client.md` (an OAuth client carries
 *    `tags`, "mandatory if the scopes include devices:core or auth_keys").
 *
 * Where the docs disagree with common readings of them (the docs win):
 *  1. Response format of GET/POST `/acl`: HuJSON is the DEFAULT; JSON only when the `Accept` header
 *     names `application/json` (not JSON unless `application/hujson` is asked for).
 *  2. POST body: both HuJSON and JSON are accepted whatever the Content-Type; the docs' own example
 *     sends HuJSON with comments as `Content-Type: application/json`. So the body is always parsed as
 *     HuJSON (JSON is a subset) and stored byte-for-byte.
 *  3. `POST /acl/validate` answers 200 whenever the request itself is well formed, "even in the case
 *     of failing tests or an invalid ACL": a problem is reported as `{"message": ..., "data"?: ...}`
 *     with a non-empty message (this stand-in sends only `message`, with `line:column` positions); a
 *     valid policy gets an empty body (the docs allow an empty body or an
 *     object without `message`; the Go client treats any non-empty body as a test error, so empty it
 *     is). A JSON *array* body is the documented "run ACL tests against the current policy" mode.
 *  4. Authentication: the docs accept the access token as a Bearer token OR as the username of HTTP
 *     Basic auth with a blank password; both are accepted here (not Bearer only).
 *  5. `If-Match: ts-default` (quoted or not) replaces the policy only while it is still the untouched
 *     default the tailnet was created with. Here the initial policy counts as that default until the
 *     first successful write (option `initialPolicyIsDefault`, default true).
 *  6. `{tailnet}`: the docs say `-` (the token's own tailnet, recommended) or the organisation name from
 *     General settings, "not to be confused with the tailnet name found in the DNS tab". The stand-in
 *     accepts `-` and the configured `tailnet` string; product code should use `-`.
 *  7. `acls` rows may use the legacy `users`/`ports` instead of `src`/`dst` (not both).
 *  8. Grant `app` values must be arrays of objects (not arrays of strings).
 *  9. `GET /acl?details=1` returns `{"acl": <base64 HuJSON>, "warnings": [], "errors": null}`; the Go
 *     client's `ACLHuJSON` depends on it.
 * 10. Scopes: `all` covers everything, `all:read` every `*:read`, and a write scope covers its own
 *     `:read` scope (so `policy_file` can read and can request `policy_file:read`).
 * 11. The token endpoint follows RFC 6749 (client credentials in the form body or via HTTP Basic, which
 *     §2.3.1 requires servers to support; errors `invalid_client` 401, `invalid_scope` /
 *     `unsupported_grant_type` / `invalid_request` 400). Default token lifetime is one hour.
 * 12. Tailnet settings: `GET /settings` needs `feature_settings:read`, `PATCH /settings` needs
 *     `feature_settings` and answers 200 with the whole settings object (the Go client ignores the
 *     body). `httpsEnabled` starts from option `initialSettings` (default true, so that the test
 *     bed's API server proxies can get certificates); listeners registered with `onSettingsChange`
 *     hear of every effective change, so the test bed's supervisor can act on it.
 * 13. Devices: `GET /devices` needs `devices:core:read` (or `devices:core`); the list comes from option
 *     `devices` (empty without it). Fields the caller leaves out get stable stand-in values
 *     (`nodeId` from `id`, keys derived from `id`, `created` = first listed, `lastSeen` = now,
 *     tagged devices with key expiry disabled and `expires` the zero time, others 180 days).
 *     `fields=all` adds `enabledRoutes` / `advertisedRoutes`; `clientConnectivity` is not modeled.
 *
 * Not verified against a source, or simplified on purpose:
 *  - the exact text of Tailscale's error messages (only status codes and body shapes follow the docs);
 *  - that `acl/validate` needs `policy_file` rather than `policy_file:read` (kb/1623's row for it could
 *    not be read); here it needs `policy_file`;
 *  - ACL tests (`tests`, `sshTests`, array mode of validate) are checked for shape but NOT evaluated;
 *  - top-level keys are matched case-sensitively (Tailscale's Go decoding may be more lenient);
 *  - when both a precondition and the body are wrong, 412 wins (RFC 9110 §13.2.2 order);
 *  - the scope names `feature_settings` / `feature_settings:read` (kb/1623's scope table could not be
 *    read in full from the stored copy; the names follow the newer scope scheme);
 *  - the defaults of the settings other than `httpsEnabled` (those of a fresh tailnet as far as
 *    known: approvals and logging off, key expiry 180 days, `member`, `active-passive-failover`);
 *  - PATCH strictness: an unknown field, a wrong type or an out-of-range value is answered 400 and
 *    nothing is changed (the real API's handling of unknown fields is not documented);
 *  - an OAuth client's `tags` are recorded and reported (`oauthClient`) but not enforced: Tailscale
 *    requires them for `devices:core` / `auth_keys` clients, which this stand-in does not check.
 *
 * Secrets: client secrets and access tokens are never logged nor put in any response other than the
 * token response itself; tokens are kept only as SHA-256 digests.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  getNodeValue,
  parseTree,
  printParseErrorCode,
  type Node as JsonNode,
  type ParseError,
} from 'jsonc-parser';

export interface TailscaleApiOptions {
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Port to listen on; 0 = any free port. */
  port: number;
  /** The tailnet name accepted in paths besides `-`, e.g. 'tailmesh-test.ts.net'. */
  tailnet: string;
  oauthClients: Array<{
    clientId: string;
    clientSecret: string;
    scopes: string[];
    /** Tags the client's tokens may give devices (tailscale_oauth_client `tags`). */
    tags?: string[];
  }>;
  /** The starting policy file, HuJSON text. Must be valid. */
  initialPolicy: string;
  /** Lifetime of issued access tokens; default 3600 (Tailscale: one hour). */
  tokenTtlSeconds?: number;
  /** Whether the initial policy counts as the tailnet's untouched default for `If-Match: ts-default`; default true. */
  initialPolicyIsDefault?: boolean;
  /** Starting tailnet settings; `httpsEnabled` defaults to true. */
  initialSettings?: { httpsEnabled?: boolean };
  /** The tailnet's devices, asked for on every `GET /devices`; none without it. */
  devices?: () => ApiDevice[];
}

export interface TailscaleApi {
  /** Base URL, e.g. http://127.0.0.1:41234 (the API lives under /api/v2). */
  url: string;
  close(): Promise<void>;
  /** The current policy file text exactly as stored (for tests). */
  policy(): string;
  /** The current tailnet settings (a copy). */
  settings(): TailnetSettings;
  /** Calls `listener` after every effective settings change; returns a function that unsubscribes. */
  onSettingsChange(
    listener: (settings: TailnetSettings, previous: TailnetSettings) => void,
  ): () => void;
  /** The OAuth client with this id, if `clientSecret` is its secret (compared in constant time). */
  oauthClient(
    clientId: string,
    clientSecret: string,
  ): { scopes: string[]; tags: string[] } | undefined;
}

/** tailscale-client-go-v2 `TailnetSettings`. */
export interface TailnetSettings {
  aclsExternallyManagedOn: boolean;
  aclsExternalLink: string;
  devicesApprovalOn: boolean;
  devicesAutoUpdatesOn: boolean;
  /** Days before a device key expires. */
  devicesKeyDurationDays: number;
  usersApprovalOn: boolean;
  usersRoleAllowedToJoinExternalTailnets: 'none' | 'admin' | 'member';
  networkFlowLoggingOn: boolean;
  /** Deprecated mirror of `routeSelection === 'regional-routing'`. */
  regionalRoutingOn: boolean;
  postureIdentityCollectionOn: boolean;
  httpsEnabled: boolean;
  routeSelection:
    | 'active-passive-failover'
    | 'regional-routing'
    | 'regional-routing-failover'
    | 'magicroute';
}

/**
 * A device as the test bed's tailnet model describes it (publicapi/device.md attributes). Only the
 * identifying fields are required; the rest get stand-in values when listed.
 */
export interface ApiDevice {
  /** Legacy numeric id, as a string. */
  id: string;
  /** Preferred id; default `n<id>CNTRL`. */
  nodeId?: string;
  /** MagicDNS name (FQDN; a trailing dot is dropped). */
  name: string;
  /** Machine name. */
  hostname: string;
  /** Tailscale IPs, IPv4 (100.64.0.0/10) first. */
  addresses: string[];
  /** The user who registered the node (the owner, for untagged nodes). */
  user: string;
  tags?: string[];
  /** Default true. */
  authorized?: boolean;
  os?: string;
  clientVersion?: string;
  created?: string;
  lastSeen?: string;
  expires?: string;
  keyExpiryDisabled?: boolean;
  isExternal?: boolean;
  blocksIncomingConnections?: boolean;
  updateAvailable?: boolean;
  machineKey?: string;
  nodeKey?: string;
  tailnetLockKey?: string;
  tailnetLockError?: string;
  enabledRoutes?: string[];
  advertisedRoutes?: string[];
}

/** One problem found in a candidate policy file, with a 1-based position in its text. */
export interface PolicyProblem {
  line: number;
  column: number;
  message: string;
}

export type PolicyValidation =
  { ok: true; value: unknown } | { ok: false; problems: PolicyProblem[] };

const API_PREFIX = '/api/v2/';
const TOKEN_PATH = '/api/v2/oauth/token';
const TAILNET_PATH =
  /^\/api\/v2\/tailnet\/([^/]+)\/(acl\/validate|acl|settings|devices)\/?$/;
const MAX_BODY_BYTES = 4 * 1024 * 1024;
const DEFAULT_TTL_SECONDS = 3600;

const SCOPE_READ_POLICY = 'policy_file:read';
const SCOPE_WRITE_POLICY = 'policy_file';
const SCOPE_READ_SETTINGS = 'feature_settings:read';
const SCOPE_WRITE_SETTINGS = 'feature_settings';
const SCOPE_READ_DEVICES = 'devices:core:read';

const ROLES_JOIN_EXTERNAL = ['none', 'admin', 'member'] as const;
const ROUTE_SELECTIONS = [
  'active-passive-failover',
  'regional-routing',
  'regional-routing-failover',
  'magicroute',
] as const;
/** Tailscale's device key expiry is 1 to 180 days; 180 is the default. */
const MAX_KEY_DURATION_DAYS = 180;
/** Go's zero time.Time, as the API reports the expiry of a device whose key does not expire. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Top-level sections documented in kb/1337, kb/1395 and the policy syntax reference. */
const KNOWN_TOP_LEVEL_KEYS = new Set([
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
]);

const TAG_NAME = /^tag:[A-Za-z0-9][A-Za-z0-9_-]*$/;
const GROUP_NAME = /^group:[^\s:]+$/;
const POSTURE_NAME = /^posture:[^\s:]+$/;
/** A tag reference at the start of a selector, with an optional `:ports` suffix (acls `dst`). */
const TAG_REFERENCE = /^(tag:[^:]*)(?::.*)?$/;

// ---------------------------------------------------------------------------------------------
// Policy validation

/** Parses `text` as HuJSON and applies the structural checks a real tailnet would reject on. */
export function validatePolicy(text: string): PolicyValidation {
  const locate = locator(text);
  const parsed = parseHuJson(text, locate);
  if (!parsed.ok) return parsed;
  const root = parsed.root;
  const problems: PolicyProblem[] = [];
  const report = (node: JsonNode, message: string) =>
    problems.push({ ...locate(node.offset), message });

  if (root.type !== 'object') {
    report(root, 'the policy file must be a JSON object');
    return { ok: false, problems };
  }

  const sections = new Map<string, JsonNode>();
  for (const { key, keyNode, value } of properties(root)) {
    if (!KNOWN_TOP_LEVEL_KEYS.has(key)) {
      report(keyNode, `unknown top-level section ${JSON.stringify(key)}`);
      continue;
    }
    if (sections.has(key))
      report(keyNode, `duplicate top-level section ${JSON.stringify(key)}`);
    sections.set(key, value);
  }

  const definedTags = new Set<string>();
  const usedTags: Array<{ tag: string; node: JsonNode; where: string }> = [];
  const useTags = (list: JsonNode, where: string) => {
    for (const [i, selector] of (list.children ?? []).entries()) {
      if (selector.type !== 'string') continue;
      const match = TAG_REFERENCE.exec(String(selector.value));
      if (match)
        usedTags.push({
          tag: match[1],
          node: selector,
          where: `${where}[${i}]`,
        });
    }
  };

  const tagOwners = sections.get('tagOwners');
  if (tagOwners) {
    if (expectType(tagOwners, 'object', 'tagOwners', report)) {
      for (const { key, keyNode, value } of properties(tagOwners)) {
        if (!TAG_NAME.test(key)) {
          report(
            keyNode,
            `tagOwners: ${JSON.stringify(key)} is not a valid tag name (want "tag:<name>")`,
          );
          continue;
        }
        definedTags.add(key);
        if (
          expectStringArray(
            value,
            `tagOwners[${JSON.stringify(key)}]`,
            report,
            false,
          )
        ) {
          useTags(value, `tagOwners[${JSON.stringify(key)}]`);
        }
      }
    }
  }

  const groups = sections.get('groups');
  if (groups && expectType(groups, 'object', 'groups', report)) {
    for (const { key, keyNode, value } of properties(groups)) {
      if (!GROUP_NAME.test(key)) {
        report(
          keyNode,
          `groups: ${JSON.stringify(key)} is not a valid group name (want "group:<name>")`,
        );
        continue;
      }
      expectStringArray(value, `groups[${JSON.stringify(key)}]`, report, false);
    }
  }

  const hosts = sections.get('hosts');
  if (hosts && expectType(hosts, 'object', 'hosts', report)) {
    for (const { key, value } of properties(hosts)) {
      expectType(value, 'string', `hosts[${JSON.stringify(key)}]`, report);
    }
  }

  const postures = sections.get('postures');
  if (postures && expectType(postures, 'object', 'postures', report)) {
    for (const { key, keyNode, value } of properties(postures)) {
      if (!POSTURE_NAME.test(key)) {
        report(
          keyNode,
          `postures: ${JSON.stringify(key)} is not a valid posture name (want "posture:<name>")`,
        );
        continue;
      }
      expectStringArray(
        value,
        `postures[${JSON.stringify(key)}]`,
        report,
        false,
      );
    }
  }

  const acls = sections.get('acls');
  if (acls && expectType(acls, 'array', 'acls', report)) {
    for (const [i, rule] of (acls.children ?? []).entries()) {
      const where = `acls[${i}]`;
      if (!expectType(rule, 'object', where, report)) continue;
      const fields = fieldMap(rule);
      const action = fields.get('action');
      if (!action) report(rule, `${where}: missing "action"`);
      else if (action.type !== 'string' || action.value !== 'accept') {
        report(action, `${where}.action: the only valid action is "accept"`);
      }
      for (const [modern, legacy] of [
        ['src', 'users'],
        ['dst', 'ports'],
      ] as const) {
        const modernNode = fields.get(modern);
        const legacyNode = fields.get(legacy);
        if (modernNode && legacyNode) {
          report(
            legacyNode,
            `${where}: use either "${modern}" or the legacy "${legacy}", not both`,
          );
          continue;
        }
        const node = modernNode ?? legacyNode;
        const name = modernNode ? modern : legacy;
        if (!node) {
          report(rule, `${where}: missing "${modern}"`);
          continue;
        }
        if (expectStringArray(node, `${where}.${name}`, report, true)) {
          useTags(node, `${where}.${name}`);
        }
      }
      const proto = fields.get('proto');
      if (proto) expectType(proto, 'string', `${where}.proto`, report);
      const srcPosture = fields.get('srcPosture');
      if (srcPosture)
        expectStringArray(srcPosture, `${where}.srcPosture`, report, false);
    }
  }

  const grants = sections.get('grants');
  if (grants && expectType(grants, 'array', 'grants', report)) {
    for (const [i, grant] of (grants.children ?? []).entries()) {
      const where = `grants[${i}]`;
      if (!expectType(grant, 'object', where, report)) continue;
      const fields = fieldMap(grant);
      for (const name of ['src', 'dst'] as const) {
        const node = fields.get(name);
        if (!node) report(grant, `${where}: missing "${name}"`);
        else if (expectStringArray(node, `${where}.${name}`, report, true)) {
          useTags(node, `${where}.${name}`);
        }
      }
      const ip = fields.get('ip');
      const app = fields.get('app');
      if (!ip && !app)
        report(grant, `${where}: a grant needs "ip" and/or "app"`);
      if (ip) expectStringArray(ip, `${where}.ip`, report, true);
      if (app && expectType(app, 'object', `${where}.app`, report)) {
        for (const { key, value } of properties(app)) {
          const capWhere = `${where}.app[${JSON.stringify(key)}]`;
          if (!expectType(value, 'array', capWhere, report)) continue;
          for (const [j, item] of (value.children ?? []).entries()) {
            expectType(item, 'object', `${capWhere}[${j}]`, report);
          }
        }
      }
      for (const optional of ['srcPosture', 'via'] as const) {
        const node = fields.get(optional);
        if (node)
          expectStringArray(node, `${where}.${optional}`, report, false);
      }
    }
  }

  const ssh = sections.get('ssh');
  if (ssh && expectType(ssh, 'array', 'ssh', report)) {
    for (const [i, rule] of (ssh.children ?? []).entries()) {
      const where = `ssh[${i}]`;
      if (!expectType(rule, 'object', where, report)) continue;
      const action = fieldMap(rule).get('action');
      if (!action) report(rule, `${where}: missing "action"`);
      else if (
        action.type !== 'string' ||
        (action.value !== 'accept' && action.value !== 'check')
      ) {
        report(action, `${where}.action: must be "accept" or "check"`);
      }
    }
  }

  for (const name of [
    'nodeAttrs',
    'tests',
    'sshTests',
    'extraDNSRecords',
  ] as const) {
    const node = sections.get(name);
    if (node && expectType(node, 'array', name, report)) {
      for (const [i, item] of (node.children ?? []).entries())
        expectType(item, 'object', `${name}[${i}]`, report);
    }
  }
  for (const name of ['autoApprovers', 'ipsets', 'derpMap'] as const) {
    const node = sections.get(name);
    if (node) expectType(node, 'object', name, report);
  }
  for (const name of ['disableIPv4', 'randomizeClientPort'] as const) {
    const node = sections.get(name);
    if (node) expectType(node, 'boolean', name, report);
  }
  const defaultSrcPosture = sections.get('defaultSrcPosture');
  if (defaultSrcPosture)
    expectStringArray(defaultSrcPosture, 'defaultSrcPosture', report, false);

  for (const { tag, node, where } of usedTags) {
    if (!TAG_NAME.test(tag))
      report(node, `${where}: ${JSON.stringify(tag)} is not a valid tag name`);
    else if (!definedTags.has(tag))
      report(
        node,
        `${where}: tag ${JSON.stringify(tag)} is not defined in tagOwners`,
      );
  }

  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line || a.column - b.column);
    return { ok: false, problems };
  }
  const value: unknown = getNodeValue(root);
  return { ok: true, value };
}

/** One line per problem, `line:column: message`. */
export function formatProblems(problems: PolicyProblem[]): string {
  return problems.map(p => `${p.line}:${p.column}: ${p.message}`).join('\n');
}

type Report = (node: JsonNode, message: string) => void;

function parseHuJson(
  text: string,
  locate: (offset: number) => { line: number; column: number },
): { ok: true; root: JsonNode } | { ok: false; problems: PolicyProblem[] } {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, {
    allowTrailingComma: true,
    disallowComments: false,
    allowEmptyContent: false,
  });
  if (errors.length > 0) {
    return {
      ok: false,
      problems: errors.map(e => ({
        ...locate(e.offset),
        message: `syntax error: ${printParseErrorCode(e.error)}`,
      })),
    };
  }
  if (!root)
    return {
      ok: false,
      problems: [
        { line: 1, column: 1, message: 'syntax error: empty document' },
      ],
    };
  return { ok: true, root };
}

/** Maps a UTF-16 offset into `text` to a 1-based line and column. */
function locator(
  text: string,
): (offset: number) => { line: number; column: number } {
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 13 /* \r */) {
      if (text.charCodeAt(i + 1) === 10) i++;
      lineStarts.push(i + 1);
    } else if (ch === 10 /* \n */) {
      lineStarts.push(i + 1);
    }
  }
  return offset => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - lineStarts[lo] + 1 };
  };
}

function properties(
  object: JsonNode,
): Array<{ key: string; keyNode: JsonNode; value: JsonNode }> {
  const out: Array<{ key: string; keyNode: JsonNode; value: JsonNode }> = [];
  for (const property of object.children ?? []) {
    const [keyNode, value] = property.children ?? [];
    if (keyNode && value)
      out.push({ key: String(keyNode.value), keyNode, value });
  }
  return out;
}

function fieldMap(object: JsonNode): Map<string, JsonNode> {
  return new Map(properties(object).map(p => [p.key, p.value]));
}

function expectType(
  node: JsonNode,
  type: JsonNode['type'],
  where: string,
  report: Report,
): boolean {
  if (node.type === type) return true;
  report(
    node,
    `${where}: expected ${type === 'array' || type === 'object' ? 'an' : 'a'} ${type}, got ${node.type}`,
  );
  return false;
}

function expectStringArray(
  node: JsonNode,
  where: string,
  report: Report,
  nonEmpty: boolean,
): boolean {
  if (!expectType(node, 'array', where, report)) return false;
  const items = node.children ?? [];
  if (nonEmpty && items.length === 0) {
    report(node, `${where}: must not be empty`);
    return false;
  }
  let ok = true;
  for (const [i, item] of items.entries()) {
    if (item.type !== 'string') {
      report(item, `${where}[${i}]: expected a string, got ${item.type}`);
      ok = false;
    } else if (nonEmpty && item.value === '') {
      report(item, `${where}[${i}]: must not be an empty string`);
      ok = false;
    }
  }
  return ok;
}

// ---------------------------------------------------------------------------------------------
// The server

interface TokenRecord {
  scopes: string[];
  expiresAt: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body.message === 'string' ? body.message : `HTTP ${status}`);
  }
}

/** Runs tasks one after another: the If-Match check and the write happen as one step. */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export async function startTailscaleApi(
  options: TailscaleApiOptions,
): Promise<TailscaleApi> {
  const host = options.host ?? '127.0.0.1';
  const ttlSeconds = options.tokenTtlSeconds ?? DEFAULT_TTL_SECONDS;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0)
    throw new Error('tokenTtlSeconds must be a positive integer');
  if (!options.tailnet || options.tailnet === '-')
    throw new Error('tailnet must be a name other than "-"');
  const clientIds = new Set<string>();
  for (const client of options.oauthClients) {
    if (!client.clientId || !client.clientSecret)
      throw new Error('every OAuth client needs an id and a secret');
    if (clientIds.has(client.clientId))
      throw new Error(`duplicate OAuth client id ${client.clientId}`);
    clientIds.add(client.clientId);
    for (const tag of client.tags ?? []) {
      if (!TAG_NAME.test(tag))
        throw new Error(
          `OAuth client ${client.clientId}: ${JSON.stringify(tag)} is not a valid tag name`,
        );
    }
  }
  const initial = validatePolicy(options.initialPolicy);
  if (!initial.ok)
    throw new Error(
      `initialPolicy is not a valid policy file:\n${formatProblems(initial.problems)}`,
    );

  const clients = options.oauthClients.map(c => ({
    clientId: c.clientId,
    secretDigest: sha256(c.clientSecret),
    scopes: [...c.scopes],
    tags: [...(c.tags ?? [])],
  }));
  const tokens = new Map<string, TokenRecord>();
  const writes = new SerialQueue();
  const state = {
    text: options.initialPolicy,
    isDefault: options.initialPolicyIsDefault ?? true,
  };
  const etag = () => `"${sha256(state.text).toString('hex')}"`;
  let settings: TailnetSettings = {
    aclsExternallyManagedOn: false,
    aclsExternalLink: '',
    devicesApprovalOn: false,
    devicesAutoUpdatesOn: false,
    devicesKeyDurationDays: MAX_KEY_DURATION_DAYS,
    usersApprovalOn: false,
    usersRoleAllowedToJoinExternalTailnets: 'member',
    networkFlowLoggingOn: false,
    regionalRoutingOn: false,
    postureIdentityCollectionOn: false,
    httpsEnabled: options.initialSettings?.httpsEnabled ?? true,
    routeSelection: 'active-passive-failover',
  };
  const settingsListeners = new Set<
    (current: TailnetSettings, previous: TailnetSettings) => void
  >();
  /** When each device id was first listed: its stand-in `created`. */
  const firstListed = new Map<string, string>();

  /** Finds a client by id and secret, comparing secret digests in constant time. */
  function findClient(
    clientId: string,
    clientSecret: string,
  ): (typeof clients)[number] | undefined {
    const client = clients.find(c => c.clientId === clientId);
    const secretOk = crypto.timingSafeEqual(
      client?.secretDigest ?? sha256('\0'),
      sha256(clientSecret),
    );
    return client && secretOk ? client : undefined;
  }

  async function handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in.invalid');
    const method = req.method ?? 'GET';

    if (url.pathname === TOKEN_PATH) {
      if (method !== 'POST')
        throw new HttpError(
          405,
          { message: 'method not allowed' },
          { Allow: 'POST' },
        );
      return issueToken(req, res);
    }
    if (!url.pathname.startsWith(API_PREFIX))
      throw new HttpError(404, { message: 'not found' });

    const token = authenticate(req);
    const route = TAILNET_PATH.exec(url.pathname);
    if (!route) throw new HttpError(404, { message: 'not found' });
    let tailnet: string;
    try {
      tailnet = decodeURIComponent(route[1]);
    } catch {
      throw new HttpError(404, { message: 'tailnet not found' });
    }
    if (
      tailnet !== '-' &&
      tailnet.toLowerCase() !== options.tailnet.toLowerCase()
    ) {
      throw new HttpError(404, { message: 'tailnet not found' });
    }

    if (route[2] === 'settings') {
      if (method === 'GET') {
        requireScope(token, SCOPE_READ_SETTINGS);
        sendJson(res, 200, { ...settings });
        return;
      }
      if (method === 'PATCH') {
        requireScope(token, SCOPE_WRITE_SETTINGS);
        return updateSettings(req, res);
      }
      throw new HttpError(
        405,
        { message: 'method not allowed' },
        { Allow: 'GET, PATCH' },
      );
    }
    if (route[2] === 'devices') {
      if (method !== 'GET')
        throw new HttpError(
          405,
          { message: 'method not allowed' },
          { Allow: 'GET' },
        );
      requireScope(token, SCOPE_READ_DEVICES);
      return listDevices(res, url);
    }
    if (route[2] === 'acl/validate') {
      if (method !== 'POST')
        throw new HttpError(
          405,
          { message: 'method not allowed' },
          { Allow: 'POST' },
        );
      requireScope(token, SCOPE_WRITE_POLICY);
      return validateCandidate(req, res);
    }
    if (method === 'GET') {
      requireScope(token, SCOPE_READ_POLICY);
      return getPolicy(req, res, url);
    }
    if (method === 'POST') {
      requireScope(token, SCOPE_WRITE_POLICY);
      return setPolicy(req, res);
    }
    throw new HttpError(
      405,
      { message: 'method not allowed' },
      { Allow: 'GET, POST' },
    );
  }

  async function issueToken(
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    const oauthError = (
      status: number,
      error: string,
      description: string,
      headers: Record<string, string> = {},
    ) =>
      new HttpError(
        status,
        { error, error_description: description },
        { 'Cache-Control': 'no-store', ...headers },
      );

    if (
      mediaType(req.headers['content-type']) !==
      'application/x-www-form-urlencoded'
    ) {
      throw oauthError(
        400,
        'invalid_request',
        'the body must be application/x-www-form-urlencoded',
      );
    }
    const form = new URLSearchParams((await readBody(req)).toString('utf8'));
    const basic = parseBasic(req.headers.authorization);
    if (req.headers.authorization !== undefined && !basic) {
      throw oauthError(
        400,
        'invalid_request',
        'unsupported client authentication scheme',
      );
    }
    if (basic && form.has('client_secret')) {
      throw oauthError(
        400,
        'invalid_request',
        'use only one client authentication method',
      );
    }
    // RFC 6749 §2.3.1: with HTTP Basic, the id and secret are form-urlencoded first.
    const clientId = basic ? formDecode(basic.user) : form.get('client_id');
    const clientSecret = basic
      ? formDecode(basic.password)
      : form.get('client_secret');

    const grantType = form.get('grant_type');
    if (!grantType)
      throw oauthError(400, 'invalid_request', 'missing grant_type');
    if (grantType !== 'client_credentials') {
      throw oauthError(
        400,
        'unsupported_grant_type',
        'only client_credentials is supported',
      );
    }
    if (!clientId || !clientSecret)
      throw oauthError(400, 'invalid_request', 'missing client credentials');

    const client = findClient(clientId, clientSecret);
    if (!client) {
      throw oauthError(
        401,
        'invalid_client',
        'client authentication failed',
        basic ? { 'WWW-Authenticate': 'Basic realm="tailscale-oauth"' } : {},
      );
    }

    const requested = (form.get('scope') ?? '')
      .split(/\s+/)
      .filter(s => s !== '');
    const missing = requested.filter(
      wanted => !client.scopes.some(held => scopeCovers(held, wanted)),
    );
    if (missing.length > 0) {
      throw oauthError(
        400,
        'invalid_scope',
        `the client may not request: ${missing.join(' ')}`,
      );
    }
    const scopes =
      requested.length > 0 ? [...new Set(requested)] : [...client.scopes];

    const accessToken = `tskey-api-${crypto.randomBytes(32).toString('base64url')}`;
    tokens.set(sha256(accessToken).toString('hex'), {
      scopes,
      expiresAt: Date.now() + ttlSeconds * 1000,
    });
    sendJson(
      res,
      200,
      {
        access_token: accessToken,
        token_type: 'Bearer',
        expires_in: ttlSeconds,
        scope: scopes.join(' '),
      },
      { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
    );
  }

  function authenticate(req: http.IncomingMessage): TokenRecord {
    const header = req.headers.authorization;
    const unauthorized = (message: string) =>
      new HttpError(
        401,
        { message },
        { 'WWW-Authenticate': 'Bearer realm="tailscale-api"' },
      );
    if (!header) throw unauthorized('missing API access token');
    let presented: string | undefined;
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (bearer) presented = bearer[1];
    else presented = parseBasic(header)?.user; // docs: the token as the Basic username, blank password
    if (!presented) throw unauthorized('unsupported Authorization scheme');
    const key = sha256(presented).toString('hex');
    const record = tokens.get(key);
    if (!record) throw unauthorized('API access token invalid');
    if (Date.now() >= record.expiresAt) {
      tokens.delete(key);
      throw unauthorized('API access token expired');
    }
    return record;
  }

  function requireScope(token: TokenRecord, needed: string): void {
    if (!token.scopes.some(held => scopeCovers(held, needed))) {
      throw new HttpError(403, {
        message: `the access token lacks the scope this call needs (${needed})`,
      });
    }
  }

  function getPolicy(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
  ): void {
    const details = url.searchParams.get('details');
    if (details === '1' || details === 'true') {
      sendJson(
        res,
        200,
        {
          acl: Buffer.from(state.text, 'utf8').toString('base64'),
          warnings: [],
          errors: null,
        },
        { ETag: etag() },
      );
      return;
    }
    sendPolicy(req, res);
  }

  /** Writes the current policy as HuJSON (stored text) or, when asked for application/json, as JSON. */
  function sendPolicy(
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): void {
    if (acceptsJson(req.headers.accept)) {
      const parsed = validatePolicy(state.text);
      const value = parsed.ok ? parsed.value : null;
      send(res, 200, `${JSON.stringify(value, null, 2)}\n`, {
        'Content-Type': 'application/json',
        ETag: etag(),
      });
    } else {
      send(res, 200, state.text, {
        'Content-Type': 'application/hujson',
        ETag: etag(),
      });
    }
  }

  async function setPolicy(
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    const body = (await readBody(req)).toString('utf8');
    const ifMatch = req.headers['if-match'];
    await writes.run(() => {
      if (ifMatch !== undefined && !preconditionHolds(ifMatch)) {
        throw new HttpError(412, {
          message:
            'precondition failed: the policy file has changed (ETag mismatch)',
        });
      }
      const checked = validatePolicy(body);
      if (!checked.ok) {
        throw new HttpError(400, {
          message: `invalid policy file:\n${formatProblems(checked.problems)}`,
        });
      }
      state.text = body;
      state.isDefault = false;
    });
    sendPolicy(req, res);
  }

  function preconditionHolds(ifMatch: string): boolean {
    const wanted = ifMatch.trim();
    if (wanted === '*') return true; // RFC 9110: any current representation
    const bare = unquote(wanted);
    if (bare === 'ts-default') return state.isDefault;
    return bare === unquote(etag());
  }

  async function validateCandidate(
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    const body = (await readBody(req)).toString('utf8');
    const locate = locator(body);
    const parsed = parseHuJson(body, locate);
    let problems: PolicyProblem[] = [];
    if (!parsed.ok) problems = parsed.problems;
    else if (parsed.root.type === 'array')
      problems = checkTests(parsed.root, locate);
    else {
      const checked = validatePolicy(body);
      if (!checked.ok) problems = checked.problems;
    }
    if (problems.length === 0) {
      send(res, 200, '', {});
      return;
    }
    sendJson(res, 200, {
      message: `invalid policy file:\n${formatProblems(problems)}`,
    });
  }

  async function updateSettings(
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse((await readBody(req)).toString('utf8'));
    } catch {
      throw new HttpError(400, { message: 'the body must be a JSON object' });
    }
    const next = applySettingsUpdate(settings, body);
    const previous = settings;
    settings = next;
    if (JSON.stringify(next) !== JSON.stringify(previous)) {
      for (const listener of [...settingsListeners]) {
        try {
          listener({ ...next }, { ...previous });
        } catch {
          // A listener's failure is the test bed's to report; the API call itself succeeded.
        }
      }
    }
    sendJson(res, 200, { ...settings });
  }

  function listDevices(res: http.ServerResponse, url: URL): void {
    const all = url.searchParams.get('fields') === 'all';
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const devices = (options.devices?.() ?? []).map(d => {
      if (!firstListed.has(d.id)) firstListed.set(d.id, now);
      const created = d.created ?? firstListed.get(d.id) ?? now;
      const tags = [...(d.tags ?? [])];
      const keyExpiryDisabled = d.keyExpiryDisabled ?? tags.length > 0;
      const keySeed = sha256(`${options.tailnet}/${d.id}`).toString('hex');
      const device: Record<string, unknown> = {
        addresses: [...d.addresses],
        id: d.id,
        nodeId: d.nodeId ?? `n${d.id}CNTRL`,
        user: d.user,
        name: d.name.replace(/\.$/, ''),
        hostname: d.hostname,
        clientVersion: d.clientVersion ?? '',
        updateAvailable: d.updateAvailable ?? false,
        os: d.os ?? 'linux',
        created,
        lastSeen: d.lastSeen ?? now,
        keyExpiryDisabled,
        expires:
          d.expires ??
          (keyExpiryDisabled
            ? ZERO_TIME
            : new Date(
                Date.parse(created) + MAX_KEY_DURATION_DAYS * 24 * 3600 * 1000,
              )
                .toISOString()
                .replace(/\.\d{3}Z$/, 'Z')),
        authorized: d.authorized ?? true,
        isExternal: d.isExternal ?? false,
        machineKey: d.machineKey ?? `mkey:${keySeed}`,
        nodeKey: d.nodeKey ?? `nodekey:${sha256(keySeed).toString('hex')}`,
        blocksIncomingConnections: d.blocksIncomingConnections ?? false,
        tags,
        tailnetLockError: d.tailnetLockError ?? '',
        tailnetLockKey:
          d.tailnetLockKey ??
          `tlpub:${sha256(`tl/${keySeed}`).toString('hex')}`,
      };
      if (all) {
        device.enabledRoutes = [...(d.enabledRoutes ?? [])];
        device.advertisedRoutes = [...(d.advertisedRoutes ?? [])];
      }
      return device;
    });
    sendJson(res, 200, { devices });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError)
        sendJson(res, err.status, err.body, err.headers);
      else
        sendJson(res, 500, {
          message: 'internal error in the Tailscale API stand-in',
        });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: options.port, host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.address.includes(':')
    ? `[${address.address}]`
    : address.address;

  return {
    url: `http://${urlHost}:${address.port}`,
    policy: () => state.text,
    settings: () => ({ ...settings }),
    onSettingsChange: listener => {
      settingsListeners.add(listener);
      return () => {
        settingsListeners.delete(listener);
      };
    },
    oauthClient: (clientId, clientSecret) => {
      const client = findClient(clientId, clientSecret);
      return client
        ? { scopes: [...client.scopes], tags: [...client.tags] }
        : undefined;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        tokens.clear();
        server.close(err => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/**
 * Applies an UpdateTailnetSettingsRequest to `current`: every field optional, null = unchanged.
 * Throws a 400 HttpError (and changes nothing) for an unknown field, a wrong type or a bad value.
 */
function applySettingsUpdate(
  current: TailnetSettings,
  body: unknown,
): TailnetSettings {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, { message: 'the body must be a JSON object' });
  const next: TailnetSettings = { ...current };
  const bad = (message: string) => new HttpError(400, { message });
  const fields = new Map(Object.entries(body));
  const booleans = [
    'aclsExternallyManagedOn',
    'devicesApprovalOn',
    'devicesAutoUpdatesOn',
    'usersApprovalOn',
    'networkFlowLoggingOn',
    'postureIdentityCollectionOn',
    'httpsEnabled',
  ] as const;
  const known = new Set<string>([
    ...booleans,
    'aclsExternalLink',
    'devicesKeyDurationDays',
    'usersRoleAllowedToJoinExternalTailnets',
    'regionalRoutingOn',
    'routeSelection',
  ]);
  for (const key of fields.keys()) {
    if (!known.has(key)) throw bad(`unknown setting ${JSON.stringify(key)}`);
  }
  const given = (key: string): unknown =>
    fields.get(key) === null ? undefined : fields.get(key);

  for (const key of booleans) {
    const value = given(key);
    if (value === undefined) continue;
    if (typeof value !== 'boolean') throw bad(`${key} must be a boolean`);
    next[key] = value;
  }
  const link = given('aclsExternalLink');
  if (link !== undefined) {
    if (typeof link !== 'string')
      throw bad('aclsExternalLink must be a string');
    next.aclsExternalLink = link;
  }
  const days = given('devicesKeyDurationDays');
  if (days !== undefined) {
    if (
      typeof days !== 'number' ||
      !Number.isInteger(days) ||
      days < 1 ||
      days > MAX_KEY_DURATION_DAYS
    )
      throw bad(
        `devicesKeyDurationDays must be a whole number of days from 1 to ${MAX_KEY_DURATION_DAYS}`,
      );
    next.devicesKeyDurationDays = days;
  }
  const role = given('usersRoleAllowedToJoinExternalTailnets');
  if (role !== undefined) {
    const valid = ROLES_JOIN_EXTERNAL.find(r => r === role);
    if (!valid)
      throw bad(
        `usersRoleAllowedToJoinExternalTailnets must be one of ${ROLES_JOIN_EXTERNAL.join(', ')}`,
      );
    next.usersRoleAllowedToJoinExternalTailnets = valid;
  }
  const regional = given('regionalRoutingOn');
  const selection = given('routeSelection');
  if (regional !== undefined && selection !== undefined)
    throw bad('specify either routeSelection or regionalRoutingOn, not both');
  if (selection !== undefined) {
    const valid = ROUTE_SELECTIONS.find(r => r === selection);
    if (!valid)
      throw bad(`routeSelection must be one of ${ROUTE_SELECTIONS.join(', ')}`);
    next.routeSelection = valid;
  }
  if (regional !== undefined) {
    if (typeof regional !== 'boolean')
      throw bad('regionalRoutingOn must be a boolean');
    if (regional) next.routeSelection = 'regional-routing';
    else if (next.routeSelection === 'regional-routing')
      next.routeSelection = 'active-passive-failover';
  }
  next.regionalRoutingOn = next.routeSelection === 'regional-routing';
  return next;
}

/** The documented "run ACL tests" mode of acl/validate: shapes only, the tests are not evaluated. */
function checkTests(
  root: JsonNode,
  locate: (offset: number) => { line: number; column: number },
): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const report: Report = (node, message) =>
    problems.push({ ...locate(node.offset), message });
  for (const [i, test] of (root.children ?? []).entries()) {
    const where = `tests[${i}]`;
    if (!expectType(test, 'object', where, report)) continue;
    const fields = fieldMap(test);
    const src = fields.get('src') ?? fields.get('user');
    if (!src) report(test, `${where}: missing "src"`);
    else expectType(src, 'string', `${where}.src`, report);
    for (const name of ['accept', 'deny', 'allow'] as const) {
      const node = fields.get(name);
      if (node) expectStringArray(node, `${where}.${name}`, report, false);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function sha256(text: string): Buffer {
  return crypto.createHash('sha256').update(text, 'utf8').digest();
}

/** `held` grants `wanted`: equal, `all`, `all:read` for any read scope, or a write scope for its own read scope. */
function scopeCovers(held: string, wanted: string): boolean {
  if (held === wanted || held === 'all') return true;
  if (held === 'all:read') return wanted.endsWith(':read');
  return wanted === `${held}:read`;
}

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0].trim().toLowerCase();
}

/** Docs: JSON only if `application/json` is requested; otherwise HuJSON. */
function acceptsJson(accept: string | undefined): boolean {
  return (accept ?? '')
    .split(',')
    .some(part => mediaType(part) === 'application/json');
}

function unquote(value: string): string {
  const weakless = value.startsWith('W/') ? value.slice(2) : value;
  return weakless.length >= 2 &&
    weakless.startsWith('"') &&
    weakless.endsWith('"')
    ? weakless.slice(1, -1)
    : weakless;
}

function parseBasic(
  header: string | undefined,
): { user: string; password: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function formDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        failed = true;
        reject(new HttpError(413, { message: 'request body too large' }));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', err => {
      if (!failed) {
        failed = true;
        reject(err);
      }
    });
  });
}

function send(
  res: http.ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string>,
): void {
  res.writeHead(status, {
    ...headers,
    'Content-Length': String(Buffer.byteLength(body, 'utf8')),
  });
  res.end(body);
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  send(res, status, JSON.stringify(value), {
    ...headers,
    'Content-Type': 'application/json',
  });
}
