import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { onTextResponse, TextResponse } from './textResponse';

/** A non-2xx answer; the message keeps the Status reason, never the request's headers. */
export class ApiserverError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiserverError';
  }
}

/**
 * JSON over a pool of keep-alive connections to one apiserver, with a kubeconfig's CA and token.
 * The synthetic load is thousands of small creates: client-node's generated clients open a new TLS
 * connection for most of them, which on two shared cores costs more than the creates themselves.
 */
export class ApiserverClient {
  private constructor(
    readonly cluster: string,
    private readonly server: URL,
    private readonly agent: https.Agent,
    private readonly headers: Record<string, string>,
  ) {}

  static async fromKubeConfig(
    cluster: string,
    kc: KubeConfig,
    maxSockets: number,
  ): Promise<ApiserverClient> {
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new Error(`${cluster}: kubeconfig has no server`);
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const agent = new https.Agent({
      keepAlive: true,
      maxSockets,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      servername: opts.servername,
      rejectUnauthorized: opts.rejectUnauthorized,
    });
    const headers = Object.fromEntries(
      Object.entries(opts.headers ?? {}).map(([k, v]) => [k, String(v)]),
    );
    return new ApiserverClient(cluster, new URL(server), agent, headers);
  }

  /** GET as text (the metrics endpoint). */
  async text(path: string): Promise<string> {
    const { status, body } = await this.send('GET', path);
    if (status < 200 || status >= 300)
      throw this.error('GET', path, status, body);
    return body;
  }

  async get<T>(path: string): Promise<T> {
    return JSON.parse(await this.text(path)) as T;
  }

  /** POSTs an object; `alreadyExistsOk` makes 409 a success (objects shared by every scale). */
  async create<T>(
    path: string,
    body: unknown,
    opts: { alreadyExistsOk?: boolean } = {},
  ): Promise<T | undefined> {
    const res = await this.send(
      'POST',
      path,
      JSON.stringify(body),
      'application/json',
    );
    if (res.status === 409 && opts.alreadyExistsOk) return undefined;
    if (res.status < 200 || res.status >= 300)
      throw this.error('POST', path, res.status, res.body);
    return JSON.parse(res.body) as T;
  }

  /** Merge-patches an object (`application/merge-patch+json`: lists are replaced whole). */
  async mergePatch(path: string, body: unknown): Promise<void> {
    const res = await this.send(
      'PATCH',
      path,
      JSON.stringify(body),
      'application/merge-patch+json',
    );
    if (res.status < 200 || res.status >= 300)
      throw this.error('PATCH', path, res.status, res.body);
  }

  close(): void {
    this.agent.destroy();
  }

  private error(method: string, path: string, status: number, body: string) {
    let reason = '';
    try {
      reason = (JSON.parse(body) as { message?: string }).message ?? '';
    } catch {
      reason = body.slice(0, 200);
    }
    return new ApiserverError(
      status,
      `${this.cluster}: ${method} ${path.split('?')[0]} answered ${status} ${reason}`,
    );
  }

  private send(
    method: string,
    path: string,
    body?: string,
    contentType?: string,
  ): Promise<TextResponse> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        new URL(path, this.server),
        {
          method,
          agent: this.agent,
          headers: {
            ...this.headers,
            Accept: 'application/json, text/plain',
            ...(body
              ? {
                  'Content-Type': contentType,
                  'Content-Length': Buffer.byteLength(body),
                }
              : {}),
          },
          timeout: 60_000,
        },
        onTextResponse(resolve, reject),
      );
      req.on('timeout', () =>
        req.destroy(new Error(`${this.cluster}: ${method} timed out`)),
      );
      req.on('error', reject);
      req.end(body);
    });
  }
}
