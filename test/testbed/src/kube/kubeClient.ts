/**
 * A small Kubernetes client for the test bed's own controllers (the Tailscale operator stand-in,
 * the pod runtime that runs real istiods, the tailnet model): JSON requests over a kubeconfig's
 * TLS and credentials, list+watch informers with re-list on 410 Gone and back-off while an
 * apiserver is away, and a de-duplicating work queue. Written for the operator stand-in first
 * (see standins/operator.ts for why each behaviour is there); nothing here logs credentials.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** What the client uses of a KubeConfig: its server, TLS and credentials. */
export type KubeConfigLike = Pick<KubeConfig, 'getCurrentCluster' | 'applyToHTTPSOptions'>;

/** What the informers read of an object's metadata. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  resourceVersion?: string;
}

// ---- A small JSON client over the kubeconfig's TLS and credentials -------------------------------------

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export class StoppedError extends Error {
  constructor() {
    super('stand-in stopped');
    this.name = 'StoppedError';
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface CallOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  /** Streams newline-delimited JSON of a 200 response; return 'stop' to end the stream. */
  onLine?: (line: string) => 'continue' | 'stop';
}

export const MERGE_PATCH = 'application/merge-patch+json';

export function apiError(status: number, body: string): KubeApiError {
  let reason = '';
  let message = body.trim().slice(0, 300);
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === 'object') {
      const st = parsed as { reason?: unknown; message?: unknown };
      if (typeof st.reason === 'string') reason = st.reason;
      if (typeof st.message === 'string') message = st.message;
    }
  } catch {
    // not JSON: keep the text
  }
  return new KubeApiError(status, reason, message);
}

export class KubeRest {
  constructor(
    private readonly kc: KubeConfigLike,
    private readonly signal: AbortSignal,
  ) {}

  async json<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
    const { status, body } = await this.call(method, path, opts);
    if (status < 200 || status > 299) throw apiError(status, body);
    return (body ? JSON.parse(body) : {}) as T;
  }

  /** Raw status and body (non-streamed part); the caller interprets non-2xx. */
  async call(method: string, path: string, opts: CallOptions): Promise<{ status: number; body: string }> {
    if (this.signal.aborted) throw new StoppedError();
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const reqOpts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(reqOpts);
    const url = new URL(cluster.server.replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = {};
    const rawHeaders: unknown = reqOpts.headers;
    if (rawHeaders && typeof rawHeaders === 'object' && !Array.isArray(rawHeaders)) {
      for (const [k, v] of Object.entries(rawHeaders as Record<string, unknown>)) {
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
      }
    }
    headers.Accept = 'application/json';
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers['Content-Type'] = opts.contentType ?? 'application/json';
    }

    const ac = new AbortController();
    let timedOut = false;
    const onStop = () => ac.abort();
    this.signal.addEventListener('abort', onStop, { once: true });
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, opts.timeoutMs ?? 20_000);
    let stoppedByReader = false;
    let socketClosed: Promise<void> | undefined;
    try {
      return await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const mod = url.protocol === 'http:' ? http : https;
        const req = mod.request(
          url,
          { method, headers, agent: reqOpts.agent, auth: reqOpts.auth, signal: ac.signal },
          res => {
            const status = res.statusCode ?? 0;
            const streaming = !!opts.onLine && status === 200;
            let body = '';
            let partial = '';
            let ended = false;
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              if (!streaming) {
                body += chunk;
                return;
              }
              partial += chunk;
              for (let i = partial.indexOf('\n'); i >= 0 && !stoppedByReader; i = partial.indexOf('\n')) {
                const line = partial.slice(0, i);
                partial = partial.slice(i + 1);
                if (line.trim() && opts.onLine?.(line) === 'stop') {
                  stoppedByReader = true;
                  resolve({ status, body: '' });
                  ac.abort();
                }
              }
            });
            res.on('end', () => {
              ended = true;
              if (streaming && partial.trim() && !stoppedByReader) opts.onLine?.(partial);
              resolve({ status, body });
            });
            res.on('error', reject);
            res.on('close', () => {
              if (!ended) reject(new Error('connection closed before the response ended'));
            });
          },
        );
        req.on('error', reject);
        req.on('socket', sock => {
          socketClosed = new Promise(r => (sock.destroyed && !sock.connecting ? r() : sock.once('close', () => r())));
        });
        if (payload !== undefined) req.write(payload);
        req.end();
      });
    } catch (err) {
      if (stoppedByReader) return { status: 200, body: '' };
      if (this.signal.aborted) throw new StoppedError();
      if (timedOut) throw new Error(`request timed out: ${method} ${path}`);
      throw err;
    } finally {
      clearTimeout(timer);
      this.signal.removeEventListener('abort', onStop);
      // An aborted request's socket closes asynchronously; let it, so stop() leaves no handle.
      if (ac.signal.aborted && socketClosed) await settleWithin(socketClosed, 1000);
    }
  }
}

/** Waits for `p`, at most `ms`, without leaving the timer behind. */
export async function settleWithin(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>(r => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

export function describe(err: unknown): string {
  if (err instanceof KubeApiError) return `HTTP ${err.status}${err.reason ? ` ${err.reason}` : ''}: ${err.message}`;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}

export const isStatus = (err: unknown, status: number) => err instanceof KubeApiError && err.status === status;

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Resolves when `p` does or when the stand-in stops, without leaving a listener behind. */
export function untilOrStopped(p: Promise<void>, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    void p.then(done);
  });
}

/** resourceVersion `a` is not older than `b` (etcd revisions; opaque values count as newer). */
export function notOlder(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return true;
  const x = Number(a);
  const y = Number(b);
  return Number.isFinite(x) && Number.isFinite(y) ? x >= y : true;
}

// ---- List + watch ------------------------------------------------------------------------------------

export interface KubeObject {
  metadata: ObjectMeta;
}

type WatchOutcome = { kind: 'closed'; rv: string } | { kind: 'gone' };

export class Informer<T extends KubeObject> {
  readonly cache = new Map<string, T>();
  private resolveSynced!: () => void;
  readonly synced: Promise<void> = new Promise(r => (this.resolveSynced = r));

  constructor(
    private readonly o: {
      what: string;
      listPath: string;
      rest: KubeRest;
      signal: AbortSignal;
      log: (msg: string) => void;
      onEvent: (type: 'upsert' | 'delete', obj: T) => void;
      watchTimeoutSeconds: number;
    },
  ) {}

  static keyOf(m: ObjectMeta): string {
    return m.namespace ? `${m.namespace}/${m.name}` : (m.name ?? '');
  }

  /** Record an object this process just wrote, so the next reconcile does not act on an older one. */
  observe(obj: T) {
    const key = Informer.keyOf(obj.metadata);
    const cur = this.cache.get(key);
    if (!cur || notOlder(obj.metadata.resourceVersion, cur.metadata.resourceVersion)) this.cache.set(key, obj);
  }

  forget(key: string) {
    this.cache.delete(key);
  }

  async run(): Promise<void> {
    const { signal, log, what } = this.o;
    let delay = 0;
    let failing = false;
    let lastError = '';
    while (!signal.aborted) {
      if (delay) await sleep(delay * (0.8 + Math.random() * 0.4), signal);
      if (signal.aborted) break;
      try {
        const list = await this.o.rest.json<{ metadata?: { resourceVersion?: string }; items?: T[] }>(
          'GET',
          this.o.listPath,
        );
        this.replace(list.items ?? []);
        this.resolveSynced();
        if (failing) log(`${what}: list+watch re-established`);
        failing = false;
        lastError = '';
        delay = 0;
        let rv = list.metadata?.resourceVersion ?? '';
        for (;;) {
          const outcome = await this.watch(rv);
          if (outcome.kind === 'gone') break; // 410: resourceVersion compacted away, list again
          rv = outcome.rv;
          if (signal.aborted) break;
        }
      } catch (err) {
        if (signal.aborted || err instanceof StoppedError) break;
        const msg = isStatus(err, 404) ? `${describe(err)} (API not served yet?)` : describe(err);
        // Same failure, same line: "connect ECONNRESET" and "read ECONNRESET" count as one.
        const code = (err as { code?: unknown }).code;
        const sig = typeof code === 'string' ? code : msg;
        if (!failing || sig !== lastError) log(`${what}: ${msg}; retrying with back-off`);
        failing = true;
        lastError = sig;
        delay = delay ? Math.min(delay * 2, 5000) : 250;
      }
    }
  }

  private replace(items: T[]) {
    const seen = new Set<string>();
    for (const item of items) {
      const key = Informer.keyOf(item.metadata);
      seen.add(key);
      this.cache.set(key, item);
    }
    for (const [key, old] of [...this.cache]) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.emit('delete', old);
      }
    }
    for (const item of items) this.emit('upsert', item);
  }

  private emit(type: 'upsert' | 'delete', obj: T) {
    try {
      this.o.onEvent(type, obj);
    } catch (err) {
      this.o.log(`${this.o.what}: event handler failed: ${describe(err)}`);
    }
  }

  private async watch(rv: string): Promise<WatchOutcome> {
    let lastRv = rv;
    let gone = false;
    let failure: string | undefined;
    const timeoutSeconds = Math.round(this.o.watchTimeoutSeconds * (1 + Math.random()));
    const res = await this.o.rest.call('GET', this.o.listPath, {
      query: { watch: 1, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds },
      // The server ends the watch after timeoutSeconds; a silent connection past that is dead.
      timeoutMs: (timeoutSeconds + 30) * 1000,
      onLine: line => {
        let ev: { type?: string; object?: unknown };
        try {
          ev = JSON.parse(line) as { type?: string; object?: unknown };
        } catch {
          return 'continue';
        }
        if (ev.type === 'ERROR') {
          const st = (ev.object ?? {}) as { code?: number; message?: string };
          if (st.code === 410) gone = true;
          else failure = `watch error ${st.code ?? '?'}: ${st.message ?? ''}`;
          return 'stop';
        }
        const obj = ev.object as T | undefined;
        if (!obj?.metadata) return 'continue';
        if (obj.metadata.resourceVersion) lastRv = obj.metadata.resourceVersion;
        const key = Informer.keyOf(obj.metadata);
        if (ev.type === 'ADDED' || ev.type === 'MODIFIED') {
          const cur = this.cache.get(key);
          if (!cur || notOlder(obj.metadata.resourceVersion, cur.metadata.resourceVersion)) {
            this.cache.set(key, obj);
            this.emit('upsert', obj);
          }
        } else if (ev.type === 'DELETED') {
          this.cache.delete(key);
          this.emit('delete', obj);
        }
        return 'continue';
      },
    });
    if (res.status === 410) return { kind: 'gone' };
    if (res.status !== 200) throw apiError(res.status, res.body);
    if (gone) return { kind: 'gone' };
    if (failure) throw new Error(failure);
    return { kind: 'closed', rv: lastRv };
  }
}

// ---- Work queue ----------------------------------------------------------------------------------------

export class WorkQueue {
  private readonly items = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private wake: (() => void) | undefined;
  private closed = false;

  add(key: string) {
    if (this.closed) return;
    this.items.add(key);
    this.wake?.();
  }

  addAfter(key: string, ms: number) {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.add(key);
    }, ms);
    this.timers.add(t);
  }

  async next(): Promise<string | undefined> {
    while (!this.closed) {
      const first = this.items.values().next();
      if (!first.done) {
        this.items.delete(first.value);
        return first.value;
      }
      await new Promise<void>(r => (this.wake = r));
      this.wake = undefined;
    }
    return undefined;
  }

  close() {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.wake?.();
  }
}

