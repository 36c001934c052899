import { LoggerService } from '@backstage/backend-plugin-api';
import {
  KubeConfig,
  KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
} from '@kubernetes/client-node';
import { NotAllowedError } from '@backstage/errors';
import {
  FIELD_MANAGER,
  LABEL_MANAGED_BY,
  MANAGED_BY_TAILMESH,
} from '@tailmesh/plugin-mesh-common';
import { isNotFound } from './kubeErrors';

/** What applying one object did (or, in a dry run, would do). */
export type ApplyOutcome = 'created' | 'configured' | 'unchanged';

export interface ApplyResult<T extends KubernetesObject = KubernetesObject> {
  outcome: ApplyOutcome;
  object: T;
}

export interface ApplyOptions {
  cluster: string;
  logger: LoggerService;
  dryRun?: boolean;
  /**
   * Take over an object of the same name that Tailmesh did not make. Without it, such an object
   * stops the apply before anything is written, when `desired` is one Tailmesh owns (labelled
   * app.kubernetes.io/managed-by=tailmesh).
   */
  adopt?: boolean;
}

/** Whether Tailmesh made an object: it carries Tailmesh's managed-by label. */
export function isOurs(object: KubernetesObject | undefined): boolean {
  return object?.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY_TAILMESH;
}

/** Whether `existing` is someone else's object of the same name as `desired`, one Tailmesh owns. */
export function isForeign(
  desired: KubernetesObject,
  existing: KubernetesObject | undefined,
): boolean {
  return existing !== undefined && isOurs(desired) && !isOurs(existing);
}

/**
 * Refuses (NotAllowedError) when `desired` is an object Tailmesh owns and `existing`, of the same
 * name, is someone else's: made by hand, by istioctl or by a chart. A forced server-side apply
 * would silently take it over.
 */
export function assertMayWrite(
  desired: KubernetesObject,
  existing: KubernetesObject | undefined,
  { cluster, adopt }: { cluster: string; adopt?: boolean },
): void {
  if (adopt || !isForeign(desired, existing)) return;
  throw new NotAllowedError(
    `${describeObject(desired)} on ${cluster} was not made by Tailmesh (it lacks the label ${LABEL_MANAGED_BY}=${MANAGED_BY_TAILMESH}), so Tailmesh does not overwrite it; nothing was changed. Remove it, or run with adopt to let Tailmesh take it over (a dry run with adopt shows the change first)`,
  );
}

/** Reads the object `desired` names, undefined when absent. */
export async function readExisting<T extends KubernetesObject>(
  kc: KubeConfig,
  desired: T,
): Promise<T | undefined> {
  try {
    return await KubernetesObjectApi.makeApiClient(kc).read<T>({
      apiVersion: desired.apiVersion!,
      kind: desired.kind!,
      metadata: {
        name: desired.metadata!.name!,
        namespace: desired.metadata?.namespace,
      },
    });
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** Fields the server owns; two objects that differ only here are the same desired state. */
function comparable(obj: KubernetesObject): unknown {
  const { metadata, ...rest } = obj as KubernetesObject & { status?: unknown };
  const {
    managedFields,
    resourceVersion,
    generation,
    creationTimestamp,
    uid,
    ...meta
  } = metadata ?? {};
  const { status, ...body } = rest as { status?: unknown };
  return { ...body, metadata: meta };
}

const stable = (value: unknown): string =>
  JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );

export function describeObject(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace ? `${obj.metadata.namespace}/` : '';
  return `${obj.kind} ${ns}${obj.metadata?.name}`;
}

/**
 * Why the API server could not validate `desired` because something it needs is not there yet,
 * or undefined when `e` is any other failure. Only a dry run may pass over this: there the
 * earlier steps of the same task made nothing, so a kind their CRD serves or a namespace they
 * create is legitimately missing; in a real run the same error means a step was skipped.
 */
export function missingPrerequisite(
  e: unknown,
  desired: KubernetesObject,
): string | undefined {
  const type = `${desired.kind} (${desired.apiVersion})`;
  const message = e instanceof Error ? e.message : String(e);
  // client-node: the group/version is served but not this kind.
  if (/Unrecognized API version and kind/.test(message))
    return `kind ${type} is not served yet`;
  if (!isNotFound(e)) return undefined;
  // client-node's discovery of the group/version answered 404: no CRD serves it.
  if (/Failed to fetch resource metadata/.test(message))
    return `kind ${type} is not served yet`;
  // An apply creates a missing object, so its 404 is about the namespace.
  const namespace = desired.metadata?.namespace;
  if (namespace) return `namespace ${namespace} does not exist yet`;
  return `kind ${type} is not served yet`;
}

/**
 * Server-side applies `desired` with Tailmesh's one field manager. Re-applying an unchanged
 * object is a no-op the API server itself confirms (the resourceVersion stays), and a dry run
 * asks the server what it would store, so the outcome is the server's, not a guess; except when
 * the server cannot tell yet (see `missingPrerequisite`), where a dry run reports the object as
 * created, unvalidated.
 */
export async function applyObject<T extends KubernetesObject>(
  kc: KubeConfig,
  desired: T,
  { cluster, logger, dryRun, adopt }: ApplyOptions,
): Promise<ApplyResult<T>> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const unvalidated = (e: unknown): ApplyResult<T> | undefined => {
    const reason = dryRun ? missingPrerequisite(e, desired) : undefined;
    if (!reason) return undefined;
    logger.info(
      `${cluster}: ${describeObject(desired)} created (dry run; not validated by the API server: ${reason}, made by an earlier step)`,
    );
    return { outcome: 'created', object: desired };
  };
  let existing: T | undefined;
  try {
    existing = await readExisting(kc, desired);
  } catch (e) {
    const result = unvalidated(e);
    if (result) return result;
    throw e;
  }
  assertMayWrite(desired, existing, { cluster, adopt });
  const adopting = adopt === true && isForeign(desired, existing);
  if (adopting)
    logger.warn(
      `${cluster}: adopting ${describeObject(desired)}, which Tailmesh did not make: it is replaced whole, so labels, annotations and keys Tailmesh does not write go${dryRun ? ' (dry run)' : ''}`,
    );
  let object: T;
  try {
    // A server-side apply would leave every field another manager set: a hand-made remote
    // secret's other kubeconfig keys (istiod reads every key as a cluster) and kubectl's
    // last-applied annotation holding the old credentials. Adopting replaces the object whole,
    // guarded by the resourceVersion just read, then applies it, so that Tailmesh's fields are
    // its server-side apply's from then on and the next run finds nothing to change.
    const apply = () =>
      api.patch<T>(
        desired,
        undefined,
        dryRun ? 'All' : undefined,
        FIELD_MANAGER,
        true,
        PatchStrategy.ServerSideApply,
      );
    if (adopting) {
      object = await api.replace<T>(
        {
          ...desired,
          metadata: {
            ...desired.metadata,
            resourceVersion: existing!.metadata?.resourceVersion,
          },
        },
        undefined,
        dryRun ? 'All' : undefined,
        FIELD_MANAGER,
      );
      if (!dryRun) object = await apply();
    } else object = await apply();
  } catch (e) {
    // An object the server could read has its namespace and kind, whatever this error is.
    const result = existing ? undefined : unvalidated(e);
    if (result) return result;
    throw e;
  }
  // What the object was against what it is now, leaving out what the server and controllers
  // own (status, managedFields, resourceVersion): a status write by a controller between the read
  // and the apply (the operator's on a DNSConfig or a Service) bumps the resourceVersion without
  // Tailmesh having changed anything.
  const outcome: ApplyOutcome = !existing
    ? 'created'
    : stable(comparable(existing)) === stable(comparable(object))
      ? 'unchanged'
      : 'configured';
  logger.info(
    `${cluster}: ${describeObject(desired)} ${outcome}${dryRun ? ' (dry run)' : ''}`,
  );
  return { outcome, object };
}

/** Applies several objects in order; the outcomes line up with the input. */
export async function applyObjects(
  kc: KubeConfig,
  objects: KubernetesObject[],
  options: ApplyOptions,
): Promise<ApplyResult[]> {
  const results: ApplyResult[] = [];
  for (const obj of objects) results.push(await applyObject(kc, obj, options));
  return results;
}
