import { LoggerService } from '@backstage/backend-plugin-api';
import { ConflictError } from '@backstage/errors';
import { KubernetesObject, V1DeleteOptions } from '@kubernetes/client-node';
import { describeObject } from '../service/apply';
import { ChangeSet } from '../service/changes';
import { isConflict, isNotFound } from '../service/kubeErrors';

/** The object, or undefined when the API server says it is not there. */
export async function readIfPresent<T>(
  read: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await read();
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** One delete call as the generated clients take it, with its options body. */
export type DeleteCall = (args: { body: V1DeleteOptions }) => Promise<unknown>;

export interface DeleteOptions {
  cluster: string;
  logger: LoggerService;
  dryRun: boolean;
  /** Turns any other failure into the action's error (usually `clusterFailure`). */
  fail: (e: unknown) => Error;
}

/**
 * Deletes the object that was read and checked, never a namesake created since: the uid
 * precondition makes the API server refuse (409) if the name now belongs to another object. No
 * resourceVersion precondition, because controllers (the Tailscale operator) keep writing the
 * status of objects they watch, and that must not make a removal fail. A dry run asks the server,
 * so permissions and admission are checked and nothing is stored. `dryRun` goes in the body: the
 * API server reads a DELETE's options from its body when there is one and then ignores the query
 * (apiserver endpoints/handlers/delete.go DeleteResource).
 */
export async function deleteAsRead(
  object: KubernetesObject,
  call: DeleteCall,
  { cluster, logger, dryRun, fail }: DeleteOptions,
): Promise<'deleted' | 'absent'> {
  const what = describeObject(object);
  try {
    await call({
      body: {
        preconditions: { uid: object.metadata?.uid },
        ...(dryRun ? { dryRun: ['All'] } : {}),
      },
    });
  } catch (e) {
    if (isNotFound(e)) {
      logger.info(`${cluster}: ${what} already gone, unchanged`);
      return 'absent';
    }
    if (isConflict(e)) {
      throw new ConflictError(
        `${cluster}: ${what} was replaced by another object since it was read; nothing else was deleted after it, run the action again`,
      );
    }
    throw fail(e);
  }
  logger.info(`${cluster}: ${what} deleted${dryRun ? ' (dry run)' : ''}`);
  return 'deleted';
}

/** The change line of a removal: `deleted`, or `absent, unchanged` (ChangeSet counts that as no change). */
export function noteRemoval(
  changes: ChangeSet,
  cluster: string,
  object: KubernetesObject,
  outcome: 'deleted' | 'absent',
): void {
  changes.note(
    cluster,
    `${describeObject(object)} ${outcome === 'deleted' ? 'deleted' : 'absent, unchanged'}`,
  );
}
