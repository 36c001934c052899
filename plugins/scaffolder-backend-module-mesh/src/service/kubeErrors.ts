import { describeClusterError } from '@tailmesh/plugin-mesh-node';

const statusOf = (e: unknown) => (e as { code?: unknown })?.code;

export const isNotFound = (e: unknown) => statusOf(e) === 404;
export const isConflict = (e: unknown) => statusOf(e) === 409;

/**
 * Rethrows a Kubernetes client error as an Error whose message names the cluster and the cause in
 * plain words (never the request, so no token can leak through it).
 */
export function clusterFailure(
  cluster: string,
  url: string,
  what: string,
  e: unknown,
): Error {
  const described = describeClusterError(cluster, url, e);
  const body = (e as { body?: unknown })?.body;
  let detail = '';
  if (typeof body === 'string') {
    try {
      detail = `: ${(JSON.parse(body) as { message?: string }).message ?? ''}`;
    } catch {
      detail = '';
    }
  }
  return new Error(`${what} failed on ${described.message}${detail}`);
}
