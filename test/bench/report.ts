import fs from 'node:fs';
import path from 'node:path';
import { MemoryReading } from './backendProtocol';
import { benchRoutes } from './routes';
import { ScaleResult, mb } from './measureScale';

/** Growth between the smallest and the largest scale, per 1,000 endpoints added. */
export interface Growth {
  fromEndpoints: number;
  toEndpoints: number;
  /** Heap after a full GC, after the first sync: what the caches of the added objects cost. */
  heapBytesPer1000Endpoints: number;
  rssBytesPer1000Endpoints: number;
  syncMsPer1000Endpoints: number;
}

export function growthOf(scales: readonly ScaleResult[]): Growth | undefined {
  if (scales.length < 2) return undefined;
  const a = scales[0];
  const b = scales[scales.length - 1];
  const k = (b.endpoints - a.endpoints) / 1000;
  return {
    fromEndpoints: a.endpoints,
    toEndpoints: b.endpoints,
    heapBytesPer1000Endpoints:
      (b.memory.afterFirstSync.heapUsedBytes -
        a.memory.afterFirstSync.heapUsedBytes) /
      k,
    rssBytesPer1000Endpoints:
      (b.memory.afterFirstSync.rssBytes - a.memory.afterFirstSync.rssBytes) / k,
    syncMsPer1000Endpoints:
      (b.sync.firstFullSyncMs - a.sync.firstFullSyncMs) / k,
  };
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) =>
  n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0);

/** The results as one table: a row per figure, a column per scale. */
export function formatTable(
  scales: readonly ScaleResult[],
  requests: number,
  concurrency: number,
): string {
  const rows: string[][] = [];
  const row = (label: string, cell: (s: ScaleResult) => string) =>
    rows.push([label, ...scales.map(cell)]);
  const section = (label: string) =>
    rows.push([label, ...scales.map(() => '')]);

  rows.push([
    'scale',
    ...scales.map(
      s => `${int(s.services)} Services / ${int(s.endpoints)} endpoints`,
    ),
  ]);
  const seconds = (n: number) => `${(n / 1000).toFixed(2)} s`;
  row("backend start (every plugin's init)", s =>
    seconds(s.sync.backendStartMs),
  );
  row('mesh caches: first full sync after start', s =>
    seconds(s.sync.firstFullSyncMs),
  );
  row(
    '  Kubernetes API requests for it / watches opened',
    s => `${int(s.sync.apiRequests)} / ${int(s.sync.watchesOpened)}`,
  );
  row(
    '  mesh members / audit findings',
    s => `${s.mesh.members.length} / ${s.mesh.findings.length}`,
  );
  for (const route of benchRoutes) {
    section(
      `${route.plugin === 'mesh' ? 'mesh backend' : 'Kubernetes plugin'}: ${route.label}`,
    );
    row('  latency p50 / p95 / p99 / max (ms)', s => {
      const l = s.routes[route.id].latencyMs;
      return `${ms(l.p50)} / ${ms(l.p95)} / ${ms(l.p99)} / ${ms(l.max)}`;
    });
    row('  throughput (req/s)', s => int(s.routes[route.id].throughput));
    row('  Kubernetes API requests per page view', s => {
      const r = s.routes[route.id];
      return `${r.apiRequestsPerView.toFixed(2)} (${int(r.apiRequests)} in ${int(r.views)})`;
    });
    row('  CPU per page view: backend / apiservers (ms)', s => {
      const r = s.routes[route.id];
      return `${r.backendCpuMsPerView.toFixed(2)} / ${r.apiserverCpuMsPerView.toFixed(2)}`;
    });
    row('  failed / answered with cluster errors', s => {
      const r = s.routes[route.id];
      return `${int(r.failed)} / ${int(r.withClusterErrors)}`;
    });
  }
  section(
    'mesh backend while EndpointSlices change (every readiness flipped, then back)',
  );
  row(
    '  backend CPU per EndpointSlice update (ms)',
    s =>
      `${s.churn.backendCpuMsPerChange.toFixed(2)} (${int(s.churn.changes)} updates)`,
  );
  row(
    '  last update visible in /services after',
    s => `${int(s.churn.propagationMs)} ms`,
  );
  section('backend process memory (RSS / heap after GC, MB)');
  const memory = (label: string, pick: (s: ScaleResult) => MemoryReading) =>
    row(label, s => `${mb(pick(s).rssBytes)} / ${mb(pick(s).heapUsedBytes)}`);
  memory('  loaded, before start', s => s.memory.beforeStart);
  memory('  after first full sync', s => s.memory.afterFirstSync);
  memory("  after the mesh routes' runs", s => s.memory.afterMeshRuns);
  memory(
    "  after the Kubernetes plugin's run too",
    s => s.memory.afterLatencyRuns,
  );

  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ');
  const rule = widths.map(w => '-'.repeat(w)).join('  ');
  return [
    `${int(requests)} requests per route at ${concurrency} concurrent, after a warm-up of ${concurrency}`,
    rule,
    line(rows[0]),
    rule,
    ...rows.slice(1).map(line),
    rule,
  ].join('\n');
}

export function formatGrowth(g: Growth): string {
  return (
    `growth from ${int(g.fromEndpoints)} to ${int(g.toEndpoints)} endpoints, per 1,000 endpoints ` +
    `(with their Services and slices): heap +${(g.heapBytesPer1000Endpoints / 1024).toFixed(0)} KiB, ` +
    `RSS +${(g.rssBytesPer1000Endpoints / 1024).toFixed(0)} KiB, first sync +${g.syncMsPer1000Endpoints.toFixed(1)} ms`
  );
}

/** Writes the results to test/bench/results/<timestamp>.json; returns the path. */
export function writeResults(results: object, startedAt: Date): string {
  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(
    dir,
    `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`,
  );
  fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}
