import { ApiserverClient } from './apiserverClient';
import { BENCH_USERNAME } from './benchIdentity';

/** What the bench reads from the apiservers' /metrics, summed over every cluster. */
export interface ApiserverReading {
  /**
   * Requests made as the bench identity, i.e. by the backends under test (see benchIdentity.ts).
   * The apiserver counts a request when it completes: a list at once, a watch when it ends.
   */
  benchRequests: number;
  /** Watches open right now, anyone's: the change across a backend's start is its watches. */
  openWatches: number;
  /** CPU the apiserver processes used, whoever asked (controllers and kwok included). */
  cpuSeconds: number;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, m => `\\${m}`);
const BENCH_REQUESTS = new RegExp(
  `^authenticated_user_requests\\{username="${escape(BENCH_USERNAME)}"\\} (\\S+)$`,
  'm',
);
const CPU_SECONDS = /^process_cpu_seconds_total (\S+)$/m;
const OPEN_WATCHES =
  /^apiserver_longrunning_requests\{[^}]*verb="WATCH"[^}]*\} (\S+)$/gm;

/** One scrape of every apiserver, as the admin (whose requests are not the bench identity's). */
export async function readApiservers(
  clients: readonly ApiserverClient[],
): Promise<ApiserverReading> {
  const readings = await Promise.all(
    clients.map(async c => {
      const text = await c.text('/metrics');
      const cpu = CPU_SECONDS.exec(text);
      if (!cpu)
        throw new Error(
          `${c.cluster}: /metrics has no process_cpu_seconds_total`,
        );
      return {
        benchRequests: Number(BENCH_REQUESTS.exec(text)?.[1] ?? 0),
        openWatches: [...text.matchAll(OPEN_WATCHES)].reduce(
          (sum, m) => sum + Number(m[1]),
          0,
        ),
        cpuSeconds: Number(cpu[1]),
      };
    }),
  );
  const sum = (pick: (r: ApiserverReading) => number) =>
    readings.reduce((a, r) => a + pick(r), 0);
  return {
    benchRequests: sum(r => r.benchRequests),
    openWatches: sum(r => r.openWatches),
    cpuSeconds: sum(r => r.cpuSeconds),
  };
}

/** What happened between two readings. */
export function since(
  before: ApiserverReading,
  after: ApiserverReading,
): ApiserverReading {
  return {
    benchRequests: after.benchRequests - before.benchRequests,
    openWatches: after.openWatches - before.openWatches,
    cpuSeconds: after.cpuSeconds - before.cpuSeconds,
  };
}
