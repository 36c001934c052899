import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import { KubeConfig } from '@kubernetes/client-node';
import { clusterRequestTimeoutError } from '@tailmesh/plugin-mesh-node';

/** Full objects, as JSON. */
export const ACCEPT_JSON = 'application/json';

/**
 * Server-side projection to metadata only (the apiserver's PartialObjectMetadata negotiation, as
 * `kubectl get --output-watch-events -o name` and client-go's metadata informers use). No fallback
 * to full objects is offered, so a Secret's data can never come back instead.
 */
export const ACCEPT_METADATA_LIST =
  'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
export const ACCEPT_METADATA =
  'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

/** An HTTP error status; `code` is what describeClusterError classifies. */
export class KubeStatusError extends Error {
  constructor(
    readonly code: number,
    reason: string,
  ) {
    super(`HTTP ${code}${reason ? ` ${reason}` : ''}`);
    this.name = 'KubeStatusError';
  }
}

/**
 * Raw HTTP to one cluster's apiserver. client-node's `Watch` and generated clients cannot send the
 * metadata-only `Accept` header and its `ListWatch` keeps whole objects, so list and watch are done
 * here with the connection options client-node builds (`applyToHTTPSOptions`: CA, TLS server
 * name, bearer token). Every request is counted, so callers can prove reads are served from memory.
 *
 * Every request has a deadline (`requestTimeoutMs`): a GET must be answered in full within it, a
 * watch must be accepted within it (and then stay silent no longer than its idle timeout). So an
 * apiserver that accepts the connection and never answers fails with a TimeoutError in that time.
 */
export class KubeRequests {
  private count = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly requestTimeoutMs: number,
  ) {}

  /** Requests started so far. */
  get requestCount(): number {
    return this.count;
  }

  /** GETs a JSON document, body included within the request timeout. */
  async getJson<T>(
    path: string,
    accept: string,
    signal: AbortSignal,
  ): Promise<T> {
    return this.withDeadline(signal, async bounded => {
      const res = await this.open(path, accept, bounded);
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
    });
  }

  /**
   * GETs a text document (e.g. Prometheus metrics through the service proxy), body included within
   * the request timeout; a body over `maxBytes` fails instead of filling memory.
   */
  async getText(
    path: string,
    accept: string,
    signal: AbortSignal,
    maxBytes = 4 * 1024 * 1024,
  ): Promise<string> {
    return this.withDeadline(signal, async bounded => {
      const res = await this.open(path, accept, bounded);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res) {
        size += (chunk as Buffer).length;
        if (size > maxBytes) {
          res.destroy();
          throw new Error(`response larger than ${maxBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      return Buffer.concat(chunks).toString('utf8');
    });
  }

  /**
   * Opens a streaming GET (a watch) and calls `onLine` with each JSON line. `onOpen` runs once the
   * apiserver accepted the request, which must happen within the request timeout. Resolves when
   * the server ends the stream; rejects on a connection error or when nothing arrives for
   * `idleTimeoutMs`.
   */
  async stream(
    path: string,
    accept: string,
    signal: AbortSignal,
    idleTimeoutMs: number,
    onOpen: () => void,
    onLine: (value: unknown) => void,
  ): Promise<void> {
    // The deadline ends with the answer's headers; then the idle timeout guards the stream.
    const res = await this.withDeadline(signal, bounded =>
      this.open(path, accept, bounded),
    );
    res.setTimeout(idleTimeoutMs, () =>
      res.destroy(clusterRequestTimeoutError(idleTimeoutMs)),
    );
    onOpen();
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        res.destroy();
        reject(e);
      };
      // readline re-emits its input's errors (a reset connection, an abort on stop).
      res.on('error', fail);
      lines.on('error', fail);
      lines.on('line', line => {
        if (settled || !line.trim()) return;
        try {
          onLine(JSON.parse(line));
        } catch (e) {
          fail(e);
        }
      });
      lines.on('close', () => {
        if (settled) return;
        settled = true;
        resolve();
      });
    });
  }

  /**
   * Runs `fn` with a signal that aborts when the caller's does or the request timeout passes; a
   * timeout surfaces as a TimeoutError (`describeClusterError`: `timeout`), not as an abort.
   */
  private async withDeadline<T>(
    signal: AbortSignal,
    fn: (bounded: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.requestTimeoutMs);
    try {
      return await fn(AbortSignal.any([signal, deadline.signal]));
    } catch (e) {
      if (deadline.signal.aborted && !signal.aborted) {
        throw clusterRequestTimeoutError(this.requestTimeoutMs);
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private async open(
    path: string,
    accept: string,
    signal: AbortSignal,
  ): Promise<http.IncomingMessage> {
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) throw new Error('no current cluster in the kubeconfig');
    const url = new URL(server.replace(/\/$/, '') + path);
    const opts: https.RequestOptions = {
      method: 'GET',
      headers: { Accept: accept },
    };
    await this.kc.applyToHTTPSOptions(opts);
    signal.throwIfAborted();
    this.count += 1;
    const transport = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = transport.request(url, { ...opts, signal }, res => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(res);
          return;
        }
        // The body is a Status object; only its reason is kept, never echoed request data.
        res.resume();
        reject(new KubeStatusError(status, res.statusMessage ?? ''));
      });
      req.on('error', reject);
      req.end();
    });
  }
}
