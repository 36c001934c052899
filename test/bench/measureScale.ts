import { setTimeout as sleep } from 'node:timers/promises';
import { Entity } from '@backstage/catalog-model';
import { JsonObject } from '@backstage/types';
import { MembershipResponse } from '@tailmesh/plugin-mesh-common';
import { ApiserverClient } from './apiserverClient';
import { readApiservers, since } from './apiserverMetrics';
import { MemoryReading } from './backendProtocol';
import { BackendSession } from './backendSession';
import { ChurnResult, measureChurn } from './churn';
import { BackendClient, LoadResult } from './loadGenerator';
import {
  BenchRoute,
  benchRoutes,
  checkEchoAnswers,
  verifyMeshServices,
  waitForMeshSync,
} from './routes';
import { Scale, SyntheticService } from './syntheticLoad';

export interface RouteResult extends LoadResult {
  plugin: BenchRoute['plugin'];
  label: string;
  /**
   * Page views in the counted window: the warm-up and the measured run. Latencies are of the
   * measured run only; API requests and CPU are per view over the whole window.
   */
  views: number;
  /** Requests the apiservers received from the backends (the bench identity) in the window. */
  apiRequests: number;
  apiRequestsPerView: number;
  /** CPU time of the backend process per view (ms): what one view costs, whatever the load. */
  backendCpuMsPerView: number;
  /** CPU time of all apiservers per view (ms), background work of the test bed included. */
  apiserverCpuMsPerView: number;
}

export interface ScaleResult extends Scale {
  clusters: number;
  sync: {
    /** `backend.start()`: every plugin's init; the mesh caches start at its end. */
    backendStartMs: number;
    /** From `backend.start()` returning to every cluster synced (all Services visible). */
    firstFullSyncMs: number;
    /** Completed requests (the lists) from start to sync. */
    apiRequests: number;
    /** Watches the apiservers held open after the sync that they did not hold before. */
    watchesOpened: number;
  };
  routes: Record<string, RouteResult>;
  churn: ChurnResult;
  /** The mesh the backend saw: members and audit finding ids (none for a healthy mesh). */
  mesh: { members: string[]; findings: string[] };
  memory: {
    beforeStart: MemoryReading;
    afterFirstSync: MemoryReading;
    /** After the mesh routes' runs, before the Kubernetes plugin's. */
    afterMeshRuns: MemoryReading;
    afterLatencyRuns: MemoryReading;
  };
}

export interface MeasureOptions {
  scale: Scale;
  clusters: number;
  /** Every synthetic Service that exists at this scale. */
  services: readonly SyntheticService[];
  echoReplicas: ReadonlyMap<string, number>;
  config: JsonObject;
  entities: Entity[];
  baseUrl: string;
  accessToken: string;
  apiservers: readonly ApiserverClient[];
  /** The same apiservers by cluster index, for the churn's writes. */
  admin: ReadonlyMap<number, ApiserverClient>;
  createConcurrency: number;
  requests: number;
  concurrency: number;
  logPath: string;
  progress(line: string): void;
  /** Called with the session as soon as it exists, so Ctrl-C can stop it. */
  onSession(session: BackendSession | undefined): void;
}

const SYNC_TIMEOUT_MS = 300_000;
const WATCH_SETTLE_MS = 1000;

/** Warm-up and measured run of one route, with the costs of the window around both. */
async function measureRoute(
  o: MeasureOptions,
  session: BackendSession,
  route: BenchRoute,
): Promise<RouteResult> {
  // Fresh connections per route: sockets left idle while /metrics is scraped would hit the
  // server's keep-alive timeout and fail as resets that say nothing about the backend.
  const client = new BackendClient(o.baseUrl, o.accessToken, o.concurrency);
  try {
    const apiBefore = await readApiservers(o.apiservers);
    const cpuBefore = await session.cpuMicros();
    // Connections, JIT and the plugins' lazy imports warm up before the measured run.
    const warmUp = await client.load(
      route.request,
      o.concurrency,
      o.concurrency,
    );
    const result = await client.load(route.request, o.requests, o.concurrency);
    const cpuMs = ((await session.cpuMicros()) - cpuBefore) / 1000;
    const api = since(apiBefore, await readApiservers(o.apiservers));
    const views = warmUp.requests + result.requests;
    return {
      plugin: route.plugin,
      label: route.label,
      ...result,
      views,
      apiRequests: api.benchRequests,
      apiRequestsPerView: api.benchRequests / views,
      backendCpuMsPerView: cpuMs / views,
      apiserverCpuMsPerView: (api.cpuSeconds * 1000) / views,
    };
  } finally {
    client.close();
  }
}

/** One fresh backend process against the clusters as they are: sync, then every route under load. */
export async function measureScale(o: MeasureOptions): Promise<ScaleResult> {
  const session = await BackendSession.spawn(o.logPath);
  o.onSession(session);
  const client = new BackendClient(o.baseUrl, o.accessToken, o.concurrency);
  try {
    const beforeStart = session.loaded;
    const apiBefore = await readApiservers(o.apiservers);
    const started = session.start(o.config, o.entities);
    let startFailure: unknown;
    started.catch(e => {
      startFailure = e;
    });
    const syncedAt = await waitForMeshSync(
      client,
      o.clusters,
      SYNC_TIMEOUT_MS,
      () => startFailure,
    );
    const { calledAt, startedAt } = await started;
    const afterFirstSync = await session.memory();
    // Each list is followed by its watch; give the last ones time to be open when counted.
    await sleep(WATCH_SETTLE_MS);
    const syncApi = since(apiBefore, await readApiservers(o.apiservers));
    const sync = {
      backendStartMs: startedAt - calledAt,
      firstFullSyncMs: Math.max(0, syncedAt - startedAt),
      apiRequests: syncApi.benchRequests,
      watchesOpened: syncApi.openWatches,
    };
    o.progress(
      `backend started in ${(sync.backendStartMs / 1000).toFixed(2)} s; first full sync ${(sync.firstFullSyncMs / 1000).toFixed(2)} s later, ${sync.apiRequests} API requests and ${sync.watchesOpened} watches opened; RSS ${mb(afterFirstSync.rssBytes)} MB`,
    );

    await verifyMeshServices(client, o.services, o.concurrency);
    o.progress(
      `all ${o.services.length} synthetic Services visible with their endpoints`,
    );
    o.progress(
      `both backends see echo as: ${await checkEchoAnswers(client, o.echoReplicas)}`,
    );

    const membership = await client.json<MembershipResponse>({
      method: 'GET',
      path: '/api/mesh/membership',
    });
    const mesh = {
      members: membership.clusters,
      findings: membership.findings.map(f => f.id),
    };
    o.progress(
      `mesh: ${mesh.members.length} members (${mesh.members.join(', ')}), audit findings: ${mesh.findings.join(', ') || 'none'}`,
    );

    const routes: Record<string, RouteResult> = {};
    let afterMeshRuns: MemoryReading | undefined;
    for (const route of benchRoutes) {
      if (route.plugin !== 'mesh') afterMeshRuns ??= await session.memory();
      const r = await measureRoute(o, session, route);
      routes[route.id] = r;
      o.progress(
        `${route.label}: p50 ${r.latencyMs.p50.toFixed(1)} ms, p99 ${r.latencyMs.p99.toFixed(1)} ms, ` +
          `${r.throughput.toFixed(0)} req/s, ${r.apiRequestsPerView.toFixed(2)} API requests and ` +
          `${r.backendCpuMsPerView.toFixed(2)} ms backend CPU per view` +
          `${r.failed ? `, ${r.failed} failed (${JSON.stringify(r.statuses)})` : ''}` +
          `${r.withClusterErrors ? `, ${r.withClusterErrors} with cluster errors ${JSON.stringify(r.clusterErrorKinds)}` : ''}` +
          `${r.retriedResets ? `, ${r.retriedResets} resent after a keep-alive reset` : ''}`,
      );
    }
    const afterLatencyRuns = await session.memory();

    const churn = await measureChurn({
      services: o.services,
      admin: o.admin,
      session,
      client,
      concurrency: o.createConcurrency,
      cpuMsPerPoll: routes.meshService.backendCpuMsPerView,
    });
    o.progress(
      `churn: ${churn.changes} EndpointSlice updates, ${churn.backendCpuMsPerChange.toFixed(2)} ms backend CPU per update, visible ${churn.propagationMs} ms after the last write`,
    );
    return {
      ...o.scale,
      clusters: o.clusters,
      sync,
      mesh,
      routes,
      churn,
      memory: {
        beforeStart,
        afterFirstSync,
        afterMeshRuns: afterMeshRuns ?? afterLatencyRuns,
        afterLatencyRuns,
      },
    };
  } finally {
    client.close();
    await session.stop().catch(() => session.kill());
    o.onSession(undefined);
  }
}

export const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
