import http from 'node:http';
import { onTextResponse, TextResponse } from './textResponse';

/** One HTTP call the load generator repeats. */
export interface BenchRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  /**
   * The cluster errors a 2xx answer still reports, one short description each (the Kubernetes
   * plugin answers 200 with per-cluster errors; the mesh backend marks a cluster unreachable).
   */
  clusterErrors?(body: unknown): string[];
}

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export interface LoadResult {
  requests: number;
  concurrency: number;
  durationMs: number;
  /** Answers per second over the whole run. */
  throughput: number;
  /** Milliseconds from sending the request to the last byte of the answer. */
  latencyMs: LatencySummary;
  /** Non-2xx answers and failed connections. */
  failed: number;
  /** 2xx answers that report a cluster error. */
  withClusterErrors: number;
  /** Those errors by kind, with how often each was reported. */
  clusterErrorKinds: Record<string, number>;
  statuses: Record<string, number>;
  /**
   * Calls sent again because a reused keep-alive connection was reset before any answer: the
   * race with the server's keep-alive timeout that Node documents (`request.reusedSocket`).
   */
  retriedResets: number;
}

/** Nearest-rank percentiles of an ascending list. */
export function summarize(sorted: readonly number[]): LatencySummary {
  const at = (p: number) =>
    sorted[
      Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
    ];
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: sorted[sorted.length - 1],
    mean: sum / sorted.length,
  };
}

class ReusedSocketReset extends Error {}

/**
 * HTTP to the backend under test, as the bench's external caller, over keep-alive connections.
 * Given several base URLs (replicas of one backend), it sends each call to the next in turn, as
 * a round-robin load balancer in front of them would.
 */
export class BackendClient {
  private readonly agent: http.Agent;
  private readonly baseUrls: readonly string[];
  private next = 0;

  constructor(
    baseUrl: string | readonly string[],
    private readonly accessToken: string,
    maxSockets: number,
  ) {
    this.baseUrls = typeof baseUrl === 'string' ? [baseUrl] : baseUrl;
    if (this.baseUrls.length === 0) throw new Error('no backend to call');
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  close(): void {
    this.agent.destroy();
  }

  /** Calls resent after a reset of a reused connection, so far. */
  retriedResets = 0;

  /** One call; resolves with status and raw body, or rejects on a connection failure. */
  async send(req: BenchRequest): Promise<TextResponse> {
    try {
      return await this.sendOnce(req);
    } catch (e) {
      if (!(e instanceof ReusedSocketReset)) throw e;
      this.retriedResets += 1;
      return this.sendOnce(req);
    }
  }

  private sendOnce(req: BenchRequest): Promise<TextResponse> {
    const payload =
      req.body === undefined ? undefined : JSON.stringify(req.body);
    return new Promise((resolve, reject) => {
      const baseUrl = this.baseUrls[this.next++ % this.baseUrls.length];
      const r = http.request(
        `${baseUrl}${req.path}`,
        {
          method: req.method,
          agent: this.agent,
          headers: {
            // No token: the caller of an unauthenticated route.
            ...(this.accessToken
              ? { Authorization: `Bearer ${this.accessToken}` }
              : {}),
            Accept: 'application/json',
            ...(payload
              ? {
                  'Content-Type': 'application/json',
                  'Content-Length': Buffer.byteLength(payload),
                }
              : {}),
          },
        },
        onTextResponse(resolve, reject),
      );
      r.on('error', e => {
        const reset = (e as NodeJS.ErrnoException).code === 'ECONNRESET';
        reject(reset && r.reusedSocket ? new ReusedSocketReset() : e);
      });
      r.end(payload);
    });
  }

  /** One call that must succeed, parsed. */
  async json<T>(req: BenchRequest): Promise<T> {
    const res = await this.send(req);
    if (res.status < 200 || res.status >= 300) {
      throw new Error(
        `${req.method} ${req.path} answered ${res.status}: ${res.body.slice(0, 300)}`,
      );
    }
    return JSON.parse(res.body) as T;
  }

  /** `requests` calls, `concurrency` in flight at any time, timed one by one. */
  async load(
    req: BenchRequest,
    requests: number,
    concurrency: number,
  ): Promise<LoadResult> {
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    let failed = 0;
    let withClusterErrors = 0;
    const clusterErrorKinds: Record<string, number> = {};
    let issued = 0;
    const resetsBefore = this.retriedResets;
    const count = (key: string) => {
      statuses[key] = (statuses[key] ?? 0) + 1;
    };

    const worker = async () => {
      while (issued < requests) {
        issued += 1;
        const t0 = process.hrtime.bigint();
        try {
          const res = await this.send(req);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          count(String(res.status));
          if (res.status < 200 || res.status >= 300) failed += 1;
          else {
            const errors = req.clusterErrors?.(JSON.parse(res.body)) ?? [];
            if (errors.length) withClusterErrors += 1;
            for (const kind of errors)
              clusterErrorKinds[kind] = (clusterErrorKinds[kind] ?? 0) + 1;
          }
        } catch (e) {
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          count((e as NodeJS.ErrnoException).code ?? 'error');
          failed += 1;
        }
      }
    };

    const started = process.hrtime.bigint();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    latencies.sort((a, b) => a - b);
    return {
      requests,
      concurrency,
      durationMs,
      throughput: requests / (durationMs / 1000),
      latencyMs: summarize(latencies),
      failed,
      withClusterErrors,
      clusterErrorKinds,
      statuses,
      retriedResets: this.retriedResets - resetsBefore,
    };
  }
}
