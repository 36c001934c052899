import {
  ServiceStatusResponse,
  ClustersResponse,
} from '@tailmesh/plugin-mesh-common';
import { BenchRequest, BackendClient } from './loadGenerator';
import { ECHO, echoEntity, echoEntityRef } from './echoService';
import { SyntheticService } from './syntheticLoad';
import { forEachLimit } from './limit';

/** The Kubernetes plugin's answer (ObjectsByEntityResponse), as far as the bench reads it. */
interface KubernetesObjectsResponse {
  items: Array<{
    cluster: { name: string };
    errors: Array<{
      errorType?: string;
      statusCode?: number;
      message?: string;
    }>;
    resources: Array<{ type: string; resources: unknown[] }>;
  }>;
}

export interface BenchRoute {
  /** Key in the JSON results. */
  id: string;
  plugin: 'mesh' | 'kubernetes';
  label: string;
  request: BenchRequest;
}

const meshServiceErrors = (body: unknown) =>
  (body as ServiceStatusResponse).clusters.flatMap(c =>
    c.reachable ? [] : [`${c.cluster}: ${c.error?.kind ?? 'unreachable'}`],
  );

/** A fetch error's message names the URL and the cause; the path is kept, the host dropped. */
const kubernetesErrors = (body: unknown) =>
  (body as KubernetesObjectsResponse).items.flatMap(i =>
    i.errors.map(
      e =>
        `${e.errorType ?? 'error'}${e.statusCode ? ` ${e.statusCode}` : ''}${
          e.message ? `: ${e.message.replace(/https?:\/\/[^/\s]+/g, '')}` : ''
        }`,
    ),
  );

/**
 * What an entity page asks, of each backend. The Kubernetes plugin's entity tab calls
 * `POST /services/:name` with the entity (KubernetesBackendClient.getObjectsByEntity in
 * @backstage/plugin-kubernetes-react); the mesh card calls `/entity` or `/services/:ns/:name`.
 */
export const benchRoutes: BenchRoute[] = [
  {
    id: 'meshService',
    plugin: 'mesh',
    label: `GET /api/mesh/services/${ECHO.namespace}/${ECHO.name}`,
    request: {
      method: 'GET',
      path: `/api/mesh/services/${ECHO.namespace}/${ECHO.name}`,
      clusterErrors: meshServiceErrors,
    },
  },
  {
    id: 'meshEntity',
    plugin: 'mesh',
    label: `GET /api/mesh/entity?entityRef=${echoEntityRef}`,
    request: {
      method: 'GET',
      path: `/api/mesh/entity?entityRef=${encodeURIComponent(echoEntityRef)}`,
      clusterErrors: meshServiceErrors,
    },
  },
  {
    id: 'meshMembership',
    plugin: 'mesh',
    label: 'GET /api/mesh/membership',
    request: { method: 'GET', path: '/api/mesh/membership' },
  },
  {
    id: 'kubernetesServices',
    plugin: 'kubernetes',
    label: `POST /api/kubernetes/services/${ECHO.name}`,
    request: {
      method: 'POST',
      path: `/api/kubernetes/services/${ECHO.name}`,
      body: { entity: echoEntity, auth: {} },
      clusterErrors: kubernetesErrors,
    },
  },
];

/** Resolves once the mesh backend reports every cluster synced; polls every 20 ms. */
export async function waitForMeshSync(
  client: BackendClient,
  clusters: number,
  timeoutMs: number,
  startFailure: () => unknown,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    // A backend that failed to start will never sync: say why at once.
    const failure = startFailure();
    if (failure) throw failure;
    try {
      const res = await client.json<ClustersResponse>({
        method: 'GET',
        path: '/api/mesh/clusters',
      });
      const ok = res.clusters.filter(c => c.sync.state === 'ok').length;
      if (ok === clusters && res.clusters.length === clusters)
        return Date.now();
      last = res.clusters.map(c => `${c.name}: ${c.sync.state}`).join(', ');
    } catch (e) {
      // Connection refused until the backend listens.
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the mesh backend did not sync in ${timeoutMs} ms (${last})`,
      );
    }
    await new Promise(r => setTimeout(r, 20));
  }
}

/**
 * Checks the mesh backend shows every synthetic Service with exactly its endpoints in its own
 * cluster and none elsewhere: the sync is complete, not just reported as such.
 */
export async function verifyMeshServices(
  client: BackendClient,
  services: readonly SyntheticService[],
  concurrency: number,
): Promise<void> {
  await forEachLimit(services, concurrency, async s => {
    const res = await client.json<ServiceStatusResponse>({
      method: 'GET',
      path: `/api/mesh/services/${s.namespace}/${s.name}`,
    });
    const home = `cluster${s.clusterIndex}`;
    const ready = s.endpoints.filter(e => e.ready).length;
    for (const c of res.clusters) {
      const want =
        c.cluster === home
          ? { ready, notReady: s.endpoints.length - ready }
          : { ready: 0, notReady: 0 };
      if (
        c.endpoints.ready !== want.ready ||
        c.endpoints.notReady !== want.notReady
      ) {
        throw new Error(
          `mesh backend shows ${s.namespace}/${s.name} in ${c.cluster} with ${JSON.stringify(c.endpoints)}, expected ${JSON.stringify(want)}`,
        );
      }
    }
  });
}

/**
 * Both backends answer the benchmark question the same way: echo runs in these clusters with
 * these many ready pods. Returns a one-line description for the log.
 */
export async function checkEchoAnswers(
  client: BackendClient,
  replicas: ReadonlyMap<string, number>,
): Promise<string> {
  const mesh = await client.json<ServiceStatusResponse>(benchRoutes[0].request);
  const kube = await client.json<KubernetesObjectsResponse>(
    benchRoutes[3].request,
  );
  const fromMesh = new Map(
    mesh.clusters
      .filter(c => c.endpoints.ready > 0)
      .map(c => [c.cluster, c.endpoints.ready]),
  );
  const fromKube = new Map(
    kube.items.map(i => [
      i.cluster.name,
      i.resources.find(r => r.type === 'pods')?.resources.length ?? 0,
    ]),
  );
  const describe = (m: ReadonlyMap<string, number>) =>
    [...m]
      .sort()
      .map(([c, n]) => `${c}=${n}`)
      .join(' ');
  for (const [name, m] of [
    ['mesh backend', fromMesh],
    ['Kubernetes plugin', fromKube],
  ] as const) {
    if (describe(m) !== describe(replicas)) {
      throw new Error(
        `${name} shows echo as ${describe(m) || 'nowhere'}, expected ${describe(replicas)}`,
      );
    }
  }
  return describe(replicas);
}
