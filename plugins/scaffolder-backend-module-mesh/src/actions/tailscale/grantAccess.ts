import { LoggerService } from '@backstage/backend-plugin-api';
import { Config } from '@backstage/config';
import { ConflictError, InputError } from '@backstage/errors';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import { ISTIO_REMOTE_READERS_GROUP } from '@tailmesh/plugin-mesh-common';
import {
  PolicyChangedError,
  PolicyFile,
  PolicyValidation,
} from '@tailmesh/plugin-mesh-node';
import { MeshActionDeps } from '../../service/MeshActionDeps';
import { checkInputs } from '../inputs';
import { examples } from './grantAccess.examples';
import {
  addMeshPolicy,
  meshPolicy,
  PolicyEditResult,
  unifiedDiff,
} from './policyEdit';
import { tailscaleClient } from './tailscaleInputs';

/** @public */
export const TAILSCALE_GRANT_ACCESS_ACTION_ID = 'mesh:tailscale:grant-access';

export const DEFAULT_TAG_OWNERS = ['autogroup:admin'];

/** How often a write that lost a race (HTTP 412) is re-read and re-applied before giving up. */
export const MAX_POLICY_ATTEMPTS = 5;

/** Config key: owners besides tags that may own the mesh tags (default ["autogroup:admin"]). */
export const TAG_OWNER_ALLOW_LIST_KEY = 'mesh.tailscale.tagOwnerAllowList';

// Tags as tailcfg.CheckTag accepts them (tailscale tailcfg/tailcfg.go): `tag:`, a letter, then
// letters, digits and dashes.
const TAG_PATTERN = /^tag:[A-Za-z][A-Za-z0-9-]*$/;
// Groups and user logins by their grammar, not only escaped into the file: a name of letters,
// digits and . _ - (groups), a login as an address (name@domain).
const OWNER_PATTERN =
  /^(autogroup:[a-z-]+|group:[A-Za-z0-9][A-Za-z0-9._-]*|tag:[A-Za-z][A-Za-z0-9-]*|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})$/;
// Owners that make a mesh tag appliable by every user of the tailnet: such a user's laptop could
// then carry tag:tailmesh-egress and reach every member's API server proxy.
const EVERY_USER = new Set(['autogroup:member', 'autogroup:tagged', '*']);

/** Checks the grammar of a tag owner (a tag, an autogroup, a group or a user login). */
export function validateTagOwner(value: string): string | undefined {
  return OWNER_PATTERN.test(value)
    ? undefined
    : 'must be a tag owner: autogroup:<name>, group:<name>, tag:<name> or a user login (name@example.com)';
}

/**
 * The owners the mesh tags may have: tags (devices that already carry them), and only those other
 * owners that configuration lists, since a group or autogroup here lets its people mark their own
 * devices as mesh proxies. Never an owner that stands for every user.
 */
export function tagOwnerValidator(
  config: Config,
): (value: string) => string | undefined {
  const configured = config.getOptionalStringArray(TAG_OWNER_ALLOW_LIST_KEY);
  for (const owner of configured ?? []) {
    const problem =
      validateTagOwner(owner) ??
      (EVERY_USER.has(owner)
        ? 'stands for every user of the tailnet'
        : undefined);
    if (problem)
      throw new InputError(
        `${TAG_OWNER_ALLOW_LIST_KEY} lists "${owner}", which ${problem}`,
      );
  }
  const allowed = new Set(configured ?? DEFAULT_TAG_OWNERS);
  return value => {
    const problem = validateTagOwner(value);
    if (problem) return problem;
    if (EVERY_USER.has(value))
      return 'stands for every user of the tailnet, who could then mark any device as a mesh proxy';
    if (TAG_PATTERN.test(value) || allowed.has(value)) return undefined;
    return `must be a tag, or an owner listed in ${TAG_OWNER_ALLOW_LIST_KEY} (${[...allowed].join(', ')})`;
  };
}

/** The parts of the Tailscale API the edit needs; TailscaleClient in production. */
export interface PolicyStore {
  getPolicy(): Promise<PolicyFile>;
  validatePolicy(text: string): Promise<PolicyValidation>;
  setPolicy(text: string, etag: string): Promise<PolicyFile>;
}

export interface PolicyUpdate {
  changes: string[];
  diff: string;
}

/**
 * Read-edit-write of the policy file with its ETag: the write only lands on the version the edit
 * was computed from, so a concurrent change by an admin or another run is never overwritten; on
 * 412 the file is read again and the edit recomputed (it skips what the other writer added).
 */
export async function updatePolicy(
  store: PolicyStore,
  edit: (text: string) => PolicyEditResult,
  opts: { dryRun: boolean; logger: LoggerService; maxAttempts?: number },
): Promise<PolicyUpdate> {
  const maxAttempts = opts.maxAttempts ?? MAX_POLICY_ATTEMPTS;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const current = await store.getPolicy();
    const next = edit(current.text);
    const diff = unifiedDiff(
      current.text,
      next.text,
      'policy.hujson (current)',
      "policy.hujson (with the mesh's entries)",
    );
    if (next.changes.length === 0) {
      opts.logger.info(
        'tailnet policy file: unchanged, it already has the tag owners and grants the mesh needs',
      );
      return { changes: [], diff };
    }
    if (opts.dryRun) {
      for (const line of next.changes)
        opts.logger.info(`tailnet policy file: would ${line} (dry run)`);
      return { changes: next.changes, diff };
    }
    const { errors, warnings } = await store.validatePolicy(next.text);
    if (errors.length) {
      throw new InputError(
        `Tailscale rejects the edited policy file, nothing was written: ${errors.join('; ')}`,
      );
    }
    // Warnings (say, groups synced by SCIM) are the admin's to read; Tailscale accepts the file.
    for (const w of warnings)
      opts.logger.warn(`tailnet policy file: Tailscale warns: ${w}`);
    try {
      await store.setPolicy(next.text, current.etag);
    } catch (e) {
      if (!(e instanceof PolicyChangedError)) throw e;
      opts.logger.info(
        `tailnet policy file changed while it was being edited (attempt ${attempt}/${maxAttempts}): reading it again`,
      );
      continue;
    }
    for (const line of next.changes)
      opts.logger.info(`tailnet policy file: ${line}`);
    return { changes: next.changes, diff };
  }
  throw new ConflictError(
    `The tailnet policy file kept changing while Tailmesh edited it (${maxAttempts} attempts); nothing of this run was written, run it again`,
  );
}

/**
 * Step 2 of the recipe: the tailnet policy entries the mesh needs, merged into the admin's file.
 *
 * @public
 */
export function createTailscaleGrantAccessAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: TAILSCALE_GRANT_ACCESS_ACTION_ID,
    description:
      'Adds to the tailnet policy file what the mesh needs, keeping every comment and entry already there: ' +
      'tag owners for tag:k8s-operator, tag:k8s and tag:tailmesh-egress (both owned by tag:k8s-operator, as the operator may only create devices with tags it owns) ' +
      'and tag:istio-eastwestgateway (also owned by tag:k8s-operator, which creates the gateways); ' +
      "a grant from tag:tailmesh-egress (Tailmesh's egress proxies: a cluster's istiod reaches a peer's API server proxy through its own egress proxy) to tag:k8s-operator " +
      `with network access to tcp:443 and the Kubernetes capability impersonating only the group ${ISTIO_REMOTE_READERS_GROUP}, bound in each cluster to Istio's reader ClusterRole ` +
      "(the recipe's system:masters made every cluster an admin of every other); " +
      "and a grant from tag:tailmesh-egress to tag:istio-eastwestgateway on tcp:15443 only (pods reach peers' gateways through their egress proxy). " +
      'Grants an earlier Tailmesh wrote that these replace are removed when found exactly as written; nothing else is. ' +
      'Writes with the ETag it read, re-reading on a concurrent change. Needs an OAuth client with the policy_file scope ' +
      '(task secrets tailscaleClientId / tailscaleClientSecret, else mesh.tailscale.oauth).',
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        owners: z =>
          z
            .array(z.string().min(1))
            .min(1)
            .default(DEFAULT_TAG_OWNERS)
            .describe(
              `Who may apply tag:k8s-operator and tag:istio-eastwestgateway (default ["autogroup:admin"]): tags, or owners listed in ${TAG_OWNER_ALLOW_LIST_KEY}; added to owners already in the file, never replacing them`,
            ),
      },
      output: {
        changed: z =>
          z
            .boolean()
            .describe(
              'Whether the policy file was (or in a dry run would be) changed',
            ),
        changes: z =>
          z.array(z.string()).describe('One line per tag owner or grant added'),
        policyDiff: z =>
          z
            .string()
            .describe(
              'Unified diff of the policy file, current to edited; empty when unchanged',
            ),
      },
    },
    async handler(ctx) {
      const owners = ctx.input.owners ?? DEFAULT_TAG_OWNERS;
      checkInputs({ owners }, { owners: tagOwnerValidator(deps.config) });
      const client = tailscaleClient(deps.config, ctx.secrets);
      const wanted = meshPolicy(owners);
      const result = await updatePolicy(
        client,
        text => addMeshPolicy(text, wanted),
        {
          dryRun: ctx.isDryRun ?? false,
          logger: ctx.logger,
        },
      );
      ctx.output('changed', result.changes.length > 0);
      ctx.output('changes', result.changes);
      ctx.output('policyDiff', result.diff);
    },
  });
}
