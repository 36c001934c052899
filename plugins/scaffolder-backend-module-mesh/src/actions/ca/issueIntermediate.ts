import { LoggerService } from '@backstage/backend-plugin-api';
import { InputError, NotAllowedError } from '@backstage/errors';
import {
  ActionContext,
  createTemplateAction,
} from '@backstage/plugin-scaffolder-node';
import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  V1Secret,
} from '@kubernetes/client-node';
import {
  ANNOTATION_ROOT_FINGERPRINT,
  CACERTS_KEYS,
  CACERTS_SECRET,
  ISTIO_NAMESPACE,
  LABEL_MANAGED_BY,
  MANAGED_BY_TAILMESH,
  validateClusterName,
} from '@tailmesh/plugin-mesh-common';
import { applyObject, isOurs } from '../../service/apply';
import { ChangeSet } from '../../service/changes';
import {
  clusterFailure,
  isConflict,
  isNotFound,
} from '../../service/kubeErrors';
import {
  MeshActionDeps,
  TargetCluster,
  targetCluster,
} from '../../service/MeshActionDeps';
import { adoptInput, checkInputs, clusterInput } from '../inputs';
import { changeOutputs } from '../outputs';
import {
  assessCacerts,
  cacertsData,
  cacertsSecret,
  decodeSecretData,
  namespaceManifest,
} from './cacerts';
import {
  DAY_MS,
  fingerprintOf,
  generateRootCa,
  INTERMEDIATE_CA_DAYS,
  issueIntermediateCa,
  LoadedCa,
  loadCa,
  parseCertificate,
} from './certificates';
import { examples } from './issueIntermediate.examples';
import { RootCaStore, rootCaStoreFromConfig } from './rootCaStore';

/** @public */
export const CA_ISSUE_INTERMEDIATE_ACTION_ID = 'mesh:ca:issue-intermediate';

const DEFAULT_RENEW_BEFORE_DAYS = 30;
/** Half an intermediate's life: a larger threshold would renew on every run. */
const MAX_RENEW_BEFORE_DAYS = 365;
const CACERTS = `Secret ${ISTIO_NAMESPACE}/${CACERTS_SECRET}`;

/** What a checkpoint records about a created root: public facts only, it lands in the task database. */
type RootCheckpoint = {
  created: boolean;
  fingerprint: string | null;
};

/** What a checkpoint records about an issued intermediate: never its key. */
type IntermediateCheckpoint = {
  serialNumber: string;
  fingerprint: string;
  notAfter: string;
  outcome: string;
};

/** The parts of the action context the helpers below use; none depends on the input. */
type Ctx = Pick<ActionContext<Record<string, never>>, 'checkpoint' | 'logger'>;

async function readCacerts(
  target: TargetCluster,
): Promise<V1Secret | undefined> {
  try {
    return await target.kc.makeApiClient(CoreV1Api).readNamespacedSecret({
      name: CACERTS_SECRET,
      namespace: ISTIO_NAMESPACE,
    });
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw clusterFailure(
      target.name,
      target.connection.url,
      `Reading ${CACERTS}`,
      e,
    );
  }
}

/** Annotation on a kept cacerts: which Secret (and resourceVersion) it is a copy of. */
const ANNOTATION_REPLACED_FROM = 'tailmesh.dev/replaced-from';

/**
 * Keeps a cacerts Tailmesh is about to replace under adopt, as a Secret of its own: its CA key is
 * not the mesh's to lose. Named by the time, created (never overwritten).
 */
async function keepReplacedCacerts(
  target: TargetCluster,
  existing: V1Secret,
  now: Date,
  dryRun: boolean,
): Promise<string> {
  const name = `${CACERTS_SECRET}-replaced-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\..*$/, '')
    .replace('T', '-')
    .toLowerCase()}`;
  if (dryRun) return name;
  try {
    await target.kc.makeApiClient(CoreV1Api).createNamespacedSecret({
      namespace: ISTIO_NAMESPACE,
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name,
          namespace: ISTIO_NAMESPACE,
          labels: { [LABEL_MANAGED_BY]: MANAGED_BY_TAILMESH },
          annotations: {
            [ANNOTATION_REPLACED_FROM]: `${ISTIO_NAMESPACE}/${CACERTS_SECRET}@${existing.metadata?.resourceVersion ?? ''}`,
          },
        },
        type: existing.type ?? 'Opaque',
        data: existing.data,
      },
    });
  } catch (e) {
    if (!isConflict(e))
      throw clusterFailure(
        target.name,
        target.connection.url,
        `Keeping the old ${CACERTS} as ${ISTIO_NAMESPACE}/${name}`,
        e,
      );
  }
  return name;
}

async function annotateRootFingerprint(
  target: TargetCluster,
  fingerprint: string,
): Promise<void> {
  try {
    await target.kc.makeApiClient(CoreV1Api).patchNamespacedSecret(
      {
        name: CACERTS_SECRET,
        namespace: ISTIO_NAMESPACE,
        body: {
          metadata: {
            annotations: { [ANNOTATION_ROOT_FINGERPRINT]: fingerprint },
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  } catch (e) {
    throw clusterFailure(
      target.name,
      target.connection.url,
      `Annotating ${CACERTS} with its root's fingerprint`,
      e,
    );
  }
}

async function namespaceExists(target: TargetCluster): Promise<boolean> {
  try {
    await target.kc
      .makeApiClient(CoreV1Api)
      .readNamespace({ name: ISTIO_NAMESPACE });
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw clusterFailure(
      target.name,
      target.connection.url,
      `Reading namespace ${ISTIO_NAMESPACE}`,
      e,
    );
  }
}

/**
 * Creates the mesh root once per task: the checkpoint makes a retried task re-read the store
 * instead of generating again, and the store itself refuses to replace a root, so a concurrent
 * creator's root wins and there are never two.
 */
async function createRoot(
  store: RootCaStore,
  ctx: Ctx,
): Promise<RootCheckpoint> {
  return ctx.checkpoint<RootCheckpoint>({
    key: `mesh-ca-root-${store.id}`,
    fn: async () => {
      ctx.logger.info(
        `${store.description}: no root CA; creating one (RSA 4096, O=Istio, CN=Root CA)`,
      );
      const root = await generateRootCa();
      const written = await store.createIfAbsent(root, ctx.logger);
      if (!written)
        ctx.logger.info(
          `${store.description}: another run created the root first; using that one`,
        );
      return {
        created: written,
        fingerprint: written
          ? fingerprintOf(parseCertificate(root.certPem, 'the new root'))
          : null,
      };
    },
  });
}

function checkRootLifetime(
  root: LoadedCa,
  what: string,
  renewBeforeDays: number,
  now: Date,
) {
  const notAfter = new Date(root.cert.validTo);
  if (notAfter.getTime() - now.getTime() <= renewBeforeDays * DAY_MS) {
    // An intermediate cannot outlive its root, so each run would issue again: stop instead.
    throw new Error(
      `The certificate of ${what} expires on ${notAfter.toISOString()}, within renewBeforeDays (${renewBeforeDays}); rotate the mesh root first`,
    );
  }
}

/**
 * Gives a cluster its plugged-in CA (step 3 of the recipe): an intermediate signed by the mesh
 * root, in the `cacerts` Secret istiod reads at start. Keys live only in memory, the root store
 * and that Secret.
 *
 * @public
 */
export function createCaIssueIntermediateAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: CA_ISSUE_INTERMEDIATE_ACTION_ID,
    description:
      "Issues the cluster's intermediate CA from the mesh root (as Istio's tools/certs Makefile.selfsigned.mk does) into the cacerts Secret in istio-system, creating the root in the configured mesh.ca.store when asked. Leaves a sound, current cacerts alone.",
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        cluster: z =>
          clusterInput(
            z,
            'Name of a cluster configured in mesh.clusters; its intermediate gets L=<cluster>',
          ),
        createRootIfMissing: z =>
          z
            .boolean()
            .default(false)
            .describe(
              "Create the mesh root CA in mesh.ca.store when the store holds none: true only when bootstrapping a new mesh with its first cluster. With false, an empty store is an error (a second root would split the mesh's trust).",
            ),
        adopt: z =>
          adoptInput(
            z,
            `a ${CACERTS_SECRET} Secret of another root, or one it cannot read (the old Secret is kept as ${CACERTS_SECRET}-replaced-<time>)`,
          ),
        renewBeforeDays: z =>
          z
            .number()
            .int()
            .min(0)
            .max(MAX_RENEW_BEFORE_DAYS)
            .default(DEFAULT_RENEW_BEFORE_DAYS)
            .describe(
              `Issue a new intermediate when the current one expires within this many days (default ${DEFAULT_RENEW_BEFORE_DAYS}; intermediates last ${INTERMEDIATE_CA_DAYS} days). Otherwise a sound cacerts is left unchanged.`,
            ),
      },
      output: {
        ...changeOutputs,
        rootCreated: z =>
          z
            .boolean()
            .describe(
              'Whether the mesh root CA was (or in a dry run would be) created',
            ),
        rootFingerprint: z =>
          z
            .string()
            .optional()
            .describe(
              'SHA-256 fingerprint of the mesh root certificate (DER), colon-separated uppercase hex as openssl prints it; absent in a dry run that would create the root',
            ),
        intermediateNotAfter: z =>
          z
            .string()
            .optional()
            .describe(
              "Expiry (ISO 8601) of the cluster's intermediate in cacerts; absent in a dry run that would issue one",
            ),
      },
    },
    async handler(ctx) {
      // The scaffolder checks input against the JSON schema but does not fill in zod's defaults.
      const {
        cluster,
        createRootIfMissing = false,
        renewBeforeDays = DEFAULT_RENEW_BEFORE_DAYS,
      } = ctx.input;
      checkInputs(ctx.input, { cluster: validateClusterName });
      if (
        !Number.isInteger(renewBeforeDays) ||
        renewBeforeDays < 0 ||
        renewBeforeDays > MAX_RENEW_BEFORE_DAYS
      ) {
        throw new InputError(
          `Invalid input: renewBeforeDays must be a whole number from 0 to ${MAX_RENEW_BEFORE_DAYS}`,
        );
      }
      const target = targetCluster(deps, cluster);
      const store = rootCaStoreFromConfig(deps);
      const dryRun = ctx.isDryRun ?? false;
      const changes = new ChangeSet();
      const now = new Date();
      const suffix = dryRun ? ' (dry run)' : '';

      const adopt = ctx.input.adopt ?? false;
      await store.assertOutsideMesh(cluster);
      let rootPem = await store.read();
      if (!rootPem && !createRootIfMissing) {
        throw new Error(
          `${store.description} holds no mesh root CA. To bootstrap a new mesh, run ${CA_ISSUE_INTERMEDIATE_ACTION_ID} with createRootIfMissing: true for its first cluster; to join an existing mesh, point mesh.ca.store at that mesh's root`,
        );
      }
      // Read before anything is written: a plugged-in CA that is not the mesh's stops the step
      // before a root is created or a Secret replaced.
      const existing = await readCacerts(target);
      let rootCheckpoint: RootCheckpoint | undefined;
      if (!rootPem) {
        if (existing && !adopt) {
          throw new NotAllowedError(
            `${cluster} already has ${CACERTS}, and ${store.description} holds no mesh root: a new root would replace that CA and split the trust of every workload it signed. Nothing was changed. Point mesh.ca.store at the root that issued it, or run with adopt to replace it (the old Secret is kept as ${CACERTS_SECRET}-replaced-<time>)`,
          );
        }
        if (dryRun) {
          ctx.logger.info(
            `${store.description}: root CA would be created${suffix}`,
          );
          changes.note(store.description, 'root CA created');
          await dryRunCacerts(target, existing, changes, ctx.logger);
          // The 'root CA created' line makes changed true.
          changes.writeTo(ctx.output, dryRun);
          ctx.output('rootCreated', true);
          return;
        }
        rootCheckpoint = await createRoot(store, ctx);
        rootPem = await store.read();
        if (!rootPem) {
          throw new Error(
            `The root CA this task created in ${store.description} (${rootCheckpoint.fingerprint}) is gone; not creating a second one. Restore it, or start a new task to bootstrap again`,
          );
        }
      }

      const root = await loadCa(
        rootPem,
        `the mesh root in ${store.description}`,
        now,
      );
      checkRootLifetime(
        root,
        `the mesh root in ${store.description}`,
        renewBeforeDays,
        now,
      );
      const rootCreated = rootCheckpoint?.created === true;
      if (rootCreated && rootCheckpoint?.fingerprint !== root.fingerprint) {
        throw new Error(
          `The root CA in ${store.description} was replaced after this task created it; stopping`,
        );
      }
      changes.note(
        store.description,
        rootCreated ? 'root CA created' : 'root CA unchanged',
      );
      ctx.output('rootCreated', rootCreated);
      ctx.output('rootFingerprint', root.fingerprint);

      const assessment = assessCacerts(
        decodeSecretData(existing),
        root,
        now,
        renewBeforeDays,
      );
      const ours = isOurs(existing);
      if (existing && !assessment.keep && !(ours && assessment.ofMeshRoot)) {
        const whose = ours
          ? 'Tailmesh made it'
          : `Tailmesh did not make it (no ${LABEL_MANAGED_BY}=${MANAGED_BY_TAILMESH} label)`;
        if (!adopt) {
          throw new NotAllowedError(
            `${cluster}: ${CACERTS} is not this mesh's to replace: ${whose}, and ${assessment.reason}. Replacing it would lose its CA key and re-sign every workload from another root; nothing was changed. Point mesh.ca.store at the root that issued it, or run with adopt to replace it (the old Secret is kept as ${CACERTS_SECRET}-replaced-<time>)`,
          );
        }
        const kept = await keepReplacedCacerts(target, existing, now, dryRun);
        ctx.logger.warn(
          `${cluster}: adopting ${CACERTS} (${whose}; ${assessment.reason}): the old Secret is kept as ${ISTIO_NAMESPACE}/${kept}${suffix}`,
        );
        changes.note(cluster, `${ISTIO_NAMESPACE}/${kept} created`);
      }
      if (
        assessment.keep &&
        ours &&
        !dryRun &&
        existing?.metadata?.annotations?.[ANNOTATION_ROOT_FINGERPRINT] !==
          root.fingerprint
      ) {
        // Written by a Tailmesh before the annotation: the backend learns the root from it.
        await annotateRootFingerprint(target, root.fingerprint);
      }
      if (assessment.keep) {
        ctx.logger.info(
          `${cluster}: ${CACERTS} unchanged: its intermediate (serial ${assessment.serialNumber}) from the mesh root ${root.fingerprint} is valid until ${assessment.notAfter.toISOString()}`,
        );
        changes.note(cluster, `${CACERTS} unchanged`);
        ctx.output('intermediateNotAfter', assessment.notAfter.toISOString());
      } else {
        const verb = existing ? 'replacing' : 'creating';
        ctx.logger.info(
          `${cluster}: ${verb} ${CACERTS} with a new intermediate CA because ${assessment.reason}${suffix}`,
        );
        // Istio reloads plugged-in certs only with AUTO_RELOAD_PLUGIN_CERTS, which is off by default.
        const restart = `${cluster}: istiod reads ${CACERTS} at start; restart a running istiod to use the new intermediate`;
        if (existing) ctx.logger.warn(restart);
        else ctx.logger.info(restart);
        if (dryRun) {
          await dryRunCacerts(target, existing, changes, ctx.logger);
        } else {
          const issued = await issue(target, root, ctx, changes, adopt);
          ctx.output('intermediateNotAfter', issued.notAfter);
        }
      }

      changes.writeTo(ctx.output, dryRun);
    },
  });
}

/** What a dry run shows: the namespace if missing and the Secret, data left out. */
async function dryRunCacerts(
  target: TargetCluster,
  existing: V1Secret | undefined,
  changes: ChangeSet,
  logger: LoggerService,
) {
  const cluster = target.name;
  if (!(await namespaceExists(target))) {
    logger.info(`${cluster}: Namespace ${ISTIO_NAMESPACE} created (dry run)`);
    changes.object(
      cluster,
      { outcome: 'created', object: namespaceManifest(ISTIO_NAMESPACE) },
      true,
    );
  }
  const outcome = existing ? 'configured' : 'created';
  logger.info(`${cluster}: ${CACERTS} ${outcome} (dry run)`);
  changes.object(cluster, { outcome, object: cacertsSecret() }, true);
}

/**
 * Issues and stores the intermediate once per task and cluster. A retried task finds the
 * checkpoint, issues nothing, and only confirms that cacerts still holds what it issued.
 */
async function issue(
  target: TargetCluster,
  root: LoadedCa,
  ctx: Ctx,
  changes: ChangeSet,
  adopt: boolean,
): Promise<IntermediateCheckpoint> {
  const cluster = target.name;
  if (!(await namespaceExists(target))) {
    try {
      changes.object(
        cluster,
        await applyObject(target.kc, namespaceManifest(ISTIO_NAMESPACE), {
          cluster,
          logger: ctx.logger,
        }),
      );
    } catch (e) {
      throw clusterFailure(
        cluster,
        target.connection.url,
        `Creating namespace ${ISTIO_NAMESPACE}`,
        e,
      );
    }
  }
  const issued = await ctx.checkpoint<IntermediateCheckpoint>({
    key: `mesh-ca-intermediate-${cluster}`,
    fn: async () => {
      const intermediate = await issueIntermediateCa(root, cluster);
      let outcome: string;
      try {
        const result = await applyObject(
          target.kc,
          cacertsSecret(
            cacertsData(intermediate, root.certPem),
            intermediate.notAfter,
            root.fingerprint,
          ),
          {
            cluster,
            logger: ctx.logger,
            // Checked before: a foreign cacerts got here only under adopt, kept as a copy.
            adopt,
          },
        );
        outcome = result.outcome;
      } catch (e) {
        throw clusterFailure(
          cluster,
          target.connection.url,
          `Writing ${CACERTS}`,
          e,
        );
      }
      return {
        serialNumber: intermediate.serialNumber,
        fingerprint: intermediate.fingerprint,
        notAfter: intermediate.notAfter.toISOString(),
        outcome,
      };
    },
  });
  const stored = decodeSecretData(await readCacerts(target))?.[
    CACERTS_KEYS.caCert
  ];
  let storedFingerprint: string | undefined;
  try {
    storedFingerprint = stored
      ? fingerprintOf(parseCertificate(stored, CACERTS_KEYS.caCert))
      : undefined;
  } catch {
    storedFingerprint = undefined;
  }
  if (storedFingerprint !== issued.fingerprint) {
    throw new Error(
      `${cluster}: this task already issued intermediate CA ${issued.serialNumber}, but ${CACERTS} no longer holds it; not issuing a second one in the same task. Start a new task to issue again`,
    );
  }
  ctx.logger.info(
    `${cluster}: intermediate CA issued (serial ${issued.serialNumber}, O=Istio, CN=Intermediate CA, L=${cluster}), valid until ${issued.notAfter}`,
  );
  changes.note(cluster, `${CACERTS} ${issued.outcome}`);
  changes.note(
    cluster,
    `intermediate CA ${issued.serialNumber} issued, valid until ${issued.notAfter}`,
  );
  return issued;
}
