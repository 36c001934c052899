import { setTimeout as sleep } from 'node:timers/promises';
import { ServiceStatusResponse } from '@tailmesh/plugin-mesh-common';
import { ApiserverClient } from './apiserverClient';
import { BackendSession } from './backendSession';
import { BackendClient } from './loadGenerator';
import { verifyMeshServices } from './routes';
import {
  SyntheticService,
  updateSlices,
  withReadinessFlipped,
} from './syntheticLoad';

/** Services whose slices change per round: enough changes to measure, few enough to be quick. */
const CHURN_SERVICES = 1000;
/** Longer than the cache's change coalescing (100 ms), so the last notification is counted. */
const SETTLE_MS = 500;

export interface ChurnResult {
  /** EndpointSlice updates written (every endpoint's readiness flipped, then flipped back). */
  changes: number;
  /** Backend CPU per change, idle CPU and the polls that timed propagation taken out (ms). */
  backendCpuMsPerChange: number;
  /** From the last write of a round to the mesh backend showing it, the slower round (ms). */
  propagationMs: number;
}

/** Polls one Service until the mesh backend shows its ready endpoints as `s` has them. */
async function visible(
  client: BackendClient,
  s: SyntheticService,
): Promise<{ at: number; polls: number }> {
  const ready = s.endpoints.filter(e => e.ready).length;
  for (let polls = 1; ; polls++) {
    const res = await client.json<ServiceStatusResponse>({
      method: 'GET',
      path: `/api/mesh/services/${s.namespace}/${s.name}`,
    });
    const home = res.clusters.find(
      c => c.cluster === `cluster${s.clusterIndex}`,
    );
    if (home?.endpoints.ready === ready) return { at: Date.now(), polls };
    if (polls > 1500)
      throw new Error(
        `${s.namespace}/${s.name} did not change in the mesh backend`,
      );
    await sleep(20);
  }
}

/**
 * What the watch caches cost while the clusters change: EndpointSlices rewritten as in a rollout,
 * measured as backend CPU per change (every change reaches the cache's change listeners, the
 * history recorder among them) and as the time until the change shows in /services.
 */
export async function measureChurn(opts: {
  services: readonly SyntheticService[];
  admin: ReadonlyMap<number, ApiserverClient>;
  session: BackendSession;
  client: BackendClient;
  concurrency: number;
  /** Backend CPU of one /services call (ms), to take the propagation polls out. */
  cpuMsPerPoll: number;
}): Promise<ChurnResult> {
  const { session, client } = opts;
  const original = opts.services.slice(0, CHURN_SERVICES);
  const rounds = [original.map(withReadinessFlipped), original];

  const idleFrom = await session.cpuMicros();
  const idleStart = Date.now();
  await sleep(1000);
  const idleCpuMsPerMs =
    ((await session.cpuMicros()) - idleFrom) / 1000 / (Date.now() - idleStart);

  const cpuFrom = await session.cpuMicros();
  const start = Date.now();
  let changes = 0;
  let polls = 0;
  let propagationMs = 0;
  for (const round of rounds) {
    changes += await updateSlices(round, opts.admin, opts.concurrency);
    const written = Date.now();
    const seen = await visible(client, round[round.length - 1]);
    polls += seen.polls;
    propagationMs = Math.max(propagationMs, seen.at - written);
  }
  await sleep(SETTLE_MS);
  const cpuMs = ((await session.cpuMicros()) - cpuFrom) / 1000;
  const busyMs =
    cpuMs - idleCpuMsPerMs * (Date.now() - start) - polls * opts.cpuMsPerPoll;
  // Every Service is back as it was, and the backend shows exactly that.
  await verifyMeshServices(client, original, opts.concurrency);
  return {
    changes,
    backendCpuMsPerChange: Math.max(0, busyMs) / changes,
    propagationMs,
  };
}
