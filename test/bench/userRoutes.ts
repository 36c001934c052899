import { parseArgs } from 'node:util';
import { BenchRequest } from './loadGenerator';

/**
 * What a signed-in user's views ask, beside the same backend's floor: an authenticated,
 * permission-checked catalog read of the entity the card sits on. The entity card asks
 * `/services/<namespace>/<name>`; the mesh page `/clusters` and `/membership`.
 */
export const ROUTES: Array<{
  id: string;
  label: string;
  request: BenchRequest;
}> = [
  {
    id: 'catalogFloor',
    label: 'catalog GET /entities/by-name/component/default/echo (floor)',
    request: {
      method: 'GET',
      path: '/api/catalog/entities/by-name/component/default/echo',
    },
  },
  {
    id: 'meshService',
    label: 'mesh GET /services/default/echo',
    request: { method: 'GET', path: '/api/mesh/services/default/echo' },
  },
  {
    id: 'meshEntity',
    label: 'mesh GET /entity?entityRef=component:default/echo',
    request: {
      method: 'GET',
      path: '/api/mesh/entity?entityRef=component%3Adefault%2Fecho',
    },
  },
  {
    id: 'meshMembership',
    label: 'mesh GET /membership',
    request: { method: 'GET', path: '/api/mesh/membership' },
  },
  {
    id: 'meshClusters',
    label: 'mesh GET /clusters',
    request: { method: 'GET', path: '/api/mesh/clusters' },
  },
];
export const HEALTH: BenchRequest = { method: 'GET', path: '/api/mesh/health' };

/** `--requests` (per route, default 3000) and `--concurrency` (default 100) of a user-path bench. */
export function parseUserLoadOptions(args = process.argv.slice(2)): {
  requests: number;
  concurrency: number;
} {
  const { values } = parseArgs({
    args,
    options: {
      requests: { type: 'string', default: '3000' },
      concurrency: { type: 'string', default: '100' },
    },
  });
  const requests = Number(values.requests);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(requests) || requests < 100)
    throw new Error(
      `--requests must be a whole number of at least 100, got ${values.requests}`,
    );
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1000)
    throw new Error(
      `--concurrency must be from 1 to 1000, got ${values.concurrency}`,
    );
  return { requests, concurrency };
}
