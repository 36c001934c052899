import { Entity } from '@backstage/catalog-model';
import { clusterShape } from '../testbed/src/layout';
import { ApiserverClient } from './apiserverClient';
import { forEachLimit } from './limit';

/** How much synthetic load one measurement runs against. */
export interface Scale {
  services: number;
  endpoints: number;
}

/** One synthetic Service and the endpoints its EndpointSlices publish, in one cluster. */
export interface SyntheticService {
  /** Test bed cluster index (1-based), as in `clusterN`. */
  clusterIndex: number;
  namespace: string;
  name: string;
  endpoints: SyntheticEndpoint[];
}

interface SyntheticEndpoint {
  ip: string;
  zone: string;
  ready: boolean;
}

const NAMESPACES = 20;
/** The EndpointSlice controller's default `--max-endpoints-per-slice`. */
const ENDPOINTS_PER_SLICE = 100;
/**
 * Synthetic addresses use the upper half of each cluster's pod range, so they never collide with
 * the addresses kwok gives the real pods (allocated from the bottom).
 */
const SYNTHETIC_THIRD_OCTET = 128;
const SYNTHETIC_ADDRESSES = (256 - SYNTHETIC_THIRD_OCTET) * 256;
const PART_OF = { 'app.kubernetes.io/part-of': 'tailmesh-bench' };

export const namespaceOf = (i: number) =>
  `bench-${String(i % NAMESPACES).padStart(2, '0')}`;
const nameOf = (i: number) => `svc-${String(i).padStart(5, '0')}`;

/**
 * `total` endpoints over `n` Services, every one with at least one. Real Services differ in size,
 * so neighbours trade a varying share (1 to about twice the mean) while the total stays exact.
 */
export function endpointCounts(total: number, n: number): number[] {
  const base = Math.floor(total / n);
  const counts = Array.from(
    { length: n },
    (_, i) => base + (i < total % n ? 1 : 0),
  );
  for (let i = 0; i + 1 < n; i += 2) {
    const shift = (i * 37) % counts[i];
    counts[i] -= shift;
    counts[i + 1] += shift;
  }
  return counts;
}

/**
 * The Services each scale adds to the previous one (scales ascending), spread round-robin over
 * the clusters. Deterministic, so a run is repeatable: every 10th endpoint is not ready,
 * endpoints alternate between a cluster's two zones, addresses come from its pod range.
 */
export function planSyntheticLoad(
  scales: readonly Scale[],
  clusters: number,
): SyntheticService[][] {
  const nextAddress = new Array<number>(clusters + 1).fill(0);
  let services = 0;
  let endpoints = 0;
  return scales.map(scale => {
    const counts = endpointCounts(
      scale.endpoints - endpoints,
      scale.services - services,
    );
    const added = counts.map((count, k): SyntheticService => {
      const i = services + k;
      const clusterIndex = (i % clusters) + 1;
      const shape = clusterShape(clusterIndex);
      const prefix = shape.podCidr.split('.').slice(0, 2).join('.');
      return {
        clusterIndex,
        namespace: namespaceOf(i),
        name: nameOf(i),
        endpoints: Array.from({ length: count }, (_, j) => {
          const a = nextAddress[clusterIndex]++;
          if (a >= SYNTHETIC_ADDRESSES) {
            throw new Error(
              `--endpoints is too large: more than ${SYNTHETIC_ADDRESSES} endpoints per cluster do not fit in the upper half of a /16 pod range`,
            );
          }
          return {
            ip: `${prefix}.${SYNTHETIC_THIRD_OCTET + (a >> 8)}.${a & 255}`,
            zone: shape.zones[j % shape.zones.length],
            ready: (i + j) % 10 !== 9,
          };
        }),
      };
    });
    services = scale.services;
    endpoints = scale.endpoints;
    return added;
  });
}

function serviceObject(s: SyntheticService) {
  return {
    metadata: {
      name: s.name,
      namespace: s.namespace,
      labels: { app: s.name, ...PART_OF },
    },
    // No selector: the EndpointSlice controller leaves these Services' slices to us.
    spec: {
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    },
  };
}

export function sliceObjects(s: SyntheticService) {
  const slices = [];
  for (let k = 0; k * ENDPOINTS_PER_SLICE < s.endpoints.length; k++) {
    const chunk = s.endpoints.slice(
      k * ENDPOINTS_PER_SLICE,
      (k + 1) * ENDPOINTS_PER_SLICE,
    );
    slices.push({
      metadata: {
        name: `${s.name}-${k}`,
        namespace: s.namespace,
        labels: {
          'kubernetes.io/service-name': s.name,
          'endpointslice.kubernetes.io/managed-by': 'bench.tailmesh.dev',
          ...PART_OF,
        },
      },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: chunk.map((e, j) => ({
        addresses: [e.ip],
        conditions: { ready: e.ready, serving: e.ready, terminating: false },
        nodeName: `${e.zone}-node`,
        zone: e.zone,
        targetRef: {
          kind: 'Pod',
          namespace: s.namespace,
          name: `${s.name}-${k * ENDPOINTS_PER_SLICE + j}`,
        },
      })),
    });
  }
  return slices;
}

/** The same Service with every endpoint's readiness the other way round. */
export function withReadinessFlipped(s: SyntheticService): SyntheticService {
  return { ...s, endpoints: s.endpoints.map(e => ({ ...e, ready: !e.ready })) };
}

/** Rewrites the endpoints of the Services' EndpointSlices; returns how many slices changed. */
export async function updateSlices(
  services: readonly SyntheticService[],
  clients: ReadonlyMap<number, ApiserverClient>,
  concurrency: number,
): Promise<number> {
  const writes = services.flatMap(s =>
    sliceObjects(s).map(slice => ({ cluster: s.clusterIndex, slice })),
  );
  await forEachLimit(writes, concurrency, async ({ cluster, slice }) => {
    const { namespace, name } = slice.metadata;
    await clients
      .get(cluster)!
      .mergePatch(
        `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices/${name}`,
        { endpoints: slice.endpoints },
      );
  });
  return writes.length;
}

/** Creates the Services and their EndpointSlices, `concurrency` Services at a time. */
export async function createSyntheticLoad(
  services: readonly SyntheticService[],
  clients: ReadonlyMap<number, ApiserverClient>,
  concurrency: number,
  progress: (line: string) => void,
): Promise<void> {
  const client = (index: number) => {
    const c = clients.get(index);
    if (!c) throw new Error(`no client for cluster${index}`);
    return c;
  };
  const namespaces = new Set(
    services.map(s => `${s.clusterIndex}/${s.namespace}`),
  );
  await forEachLimit([...namespaces], concurrency, async key => {
    const [index, name] = key.split('/');
    await client(Number(index)).create(
      '/api/v1/namespaces',
      { metadata: { name, labels: PART_OF } },
      { alreadyExistsOk: true },
    );
  });

  let done = 0;
  let endpoints = 0;
  let reported = 0;
  const started = Date.now();
  await forEachLimit(services, concurrency, async s => {
    const c = client(s.clusterIndex);
    const base = `/api/v1/namespaces/${s.namespace}`;
    await c.create(`${base}/services`, serviceObject(s));
    for (const slice of sliceObjects(s)) {
      await c.create(
        `/apis/discovery.k8s.io/v1/namespaces/${s.namespace}/endpointslices`,
        slice,
      );
    }
    done += 1;
    endpoints += s.endpoints.length;
    if (done === services.length || done - reported >= services.length / 10) {
      reported = done;
      progress(
        `created ${done}/${services.length} Services, ${endpoints} endpoints (${((Date.now() - started) / 1000).toFixed(1)} s)`,
      );
    }
  });
}

/** The catalog entity that stands for a synthetic Service (tailmesh.dev/service). */
export function syntheticEntity(s: SyntheticService): Entity {
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: {
      name: `${s.namespace}-${s.name}`.slice(0, 63).replace(/-+$/, ''),
      namespace: 'default',
      annotations: { 'tailmesh.dev/service': `${s.namespace}/${s.name}` },
    },
    spec: { type: 'service', owner: 'bench', lifecycle: 'experimental' },
  };
}
