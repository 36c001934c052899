import { parseArgs } from 'node:util';
import { maxClusters } from '../testbed/src/layout';
import { Scale } from './syntheticLoad';

export interface BenchOptions {
  /** Ascending; the last is the full scale (--services / --endpoints). */
  scales: Scale[];
  clusters: number;
  requests: number;
  concurrency: number;
  createConcurrency: number;
  /** Join the clusters into one mesh first (real actions), so /membership judges a real mesh. */
  joinMesh: boolean;
}

export const usage = `Usage: npm run bench -- [options]

Starts its own test bed (3 clusters) in a loopback-only network namespace, creates synthetic
Services and EndpointSlices, and measures the mesh backend beside @backstage/plugin-kubernetes-backend
in one Backstage backend. Prints one table; writes JSON to test/bench/results/.

Options:
  --services N            Services at the full scale (default 2000)
  --endpoints N           endpoints at the full scale, in EndpointSlices (default 20000)
  --scales LIST           fractions of the full scale to measure, ascending (default 0.1,1)
  --clusters N            test bed clusters, 2..${maxClusters} (default 3)
  --requests N            requests per route and scale (default 5000)
  --concurrency N         requests in flight at once (default 100)
  --create-concurrency N  parallel creates while loading the clusters (default 32)
  --no-join-mesh          leave the clusters outside a mesh (faster; /membership has nothing to judge)
  -h, --help              this text
`;

export class UsageError extends Error {}

function wholeNumber(flag: string, raw: string, min: number, max: number) {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `--${flag} must be a whole number from ${min} to ${max}, got "${raw}"`,
    );
  }
  return n;
}

/** Parses the command line; throws UsageError with the reason, or returns undefined for --help. */
export function parseBenchOptions(argv: string[]): BenchOptions | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowNegative: true,
      options: {
        services: { type: 'string', default: '2000' },
        endpoints: { type: 'string', default: '20000' },
        scales: { type: 'string', default: '0.1,1' },
        clusters: { type: 'string', default: '3' },
        requests: { type: 'string', default: '5000' },
        concurrency: { type: 'string', default: '100' },
        'create-concurrency': { type: 'string', default: '32' },
        'join-mesh': { type: 'boolean', default: true },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return undefined;

  const services = wholeNumber('services', values.services, 1, 50_000);
  const endpoints = wholeNumber('endpoints', values.endpoints, 1, 500_000);
  const fractions = values.scales.split(',').map(raw => {
    const f = /^(0?\.\d+|1(\.0*)?|0)$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!(f > 0 && f <= 1)) {
      throw new UsageError(
        `--scales takes fractions of the full scale in (0, 1], like 0.1,1; got "${raw}"`,
      );
    }
    return f;
  });
  const scales = [...new Set(fractions)]
    .sort((a, b) => a - b)
    .map(f => ({
      services: Math.max(1, Math.round(services * f)),
      endpoints: Math.max(1, Math.round(endpoints * f)),
    }));
  // Each scale adds Services to the one before, and every Service has at least one endpoint.
  for (let i = 0; i < scales.length; i++) {
    const prev = i ? scales[i - 1] : { services: 0, endpoints: 0 };
    const s = scales[i];
    if (s.services <= prev.services) {
      throw new UsageError(
        `--scales ${values.scales} gives ${s.services} Services twice; use fractions further apart`,
      );
    }
    if (s.endpoints - prev.endpoints < s.services - prev.services) {
      throw new UsageError(
        `--endpoints must be at least --services (every Service gets an endpoint), got ${endpoints} for ${services}`,
      );
    }
  }
  return {
    scales,
    clusters: wholeNumber('clusters', values.clusters, 2, maxClusters),
    requests: wholeNumber('requests', values.requests, 1, 1_000_000),
    concurrency: wholeNumber('concurrency', values.concurrency, 1, 1000),
    createConcurrency: wholeNumber(
      'create-concurrency',
      values['create-concurrency'],
      1,
      256,
    ),
    joinMesh: values['join-mesh'],
  };
}
