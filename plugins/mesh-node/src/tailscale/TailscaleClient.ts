import { Config } from '@backstage/config';
import { ConflictError, InputError, NotAllowedError } from '@backstage/errors';

/** The tailnet policy file as the API stores it: HuJSON text (comments kept) and its ETag. */
export interface PolicyFile {
  text: string;
  etag: string;
}

export interface TailscaleClientOptions {
  apiUrl: string;
  /** The tailnet in API paths; `-` is the OAuth client's own tailnet. */
  tailnet: string;
  clientId: string;
  clientSecret: string;
  fetch?: typeof fetch;
  /** Each API call (token included) fails with a TimeoutError after this long; default 30 s. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** A write lost a race with another writer (HTTP 412): re-read and apply the change again. */
export class PolicyChangedError extends ConflictError {}

/**
 * The Tailscale API calls Tailmesh makes, with OAuth client-credentials. Error messages carry the
 * API's own message and status, never the client secret or a token.
 */
export class TailscaleClient {
  private token?: { value: string; expiresAt: number };
  private readonly fetchImpl: typeof fetch;

  static fromConfig(
    config: Config,
    overrides: Partial<TailscaleClientOptions> = {},
  ): TailscaleClient {
    const ts = config.getOptionalConfig('mesh.tailscale');
    const clientId =
      overrides.clientId ?? ts?.getOptionalString('oauth.clientId');
    const clientSecret =
      overrides.clientSecret ?? ts?.getOptionalString('oauth.clientSecret');
    if (!clientId || !clientSecret) {
      throw new InputError(
        'No Tailscale OAuth client: set mesh.tailscale.oauth.clientId and clientSecret, or pass the credentials as task secrets',
      );
    }
    return new TailscaleClient({
      apiUrl:
        overrides.apiUrl ??
        ts?.getOptionalString('apiUrl') ??
        'https://api.tailscale.com',
      tailnet: overrides.tailnet ?? ts?.getOptionalString('tailnet') ?? '-',
      clientId,
      clientSecret,
      fetch: overrides.fetch,
      timeoutMs: overrides.timeoutMs,
    });
  }

  constructor(private readonly options: TailscaleClientOptions) {
    this.fetchImpl = options.fetch ?? fetch;
  }

  private timeout(): AbortSignal {
    return AbortSignal.timeout(this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  private url(path: string) {
    return `${this.options.apiUrl.replace(/\/+$/, '')}/api/v2${path}`;
  }

  private async accessToken(): Promise<string> {
    if (this.token && this.token.expiresAt > Date.now() + 60_000)
      return this.token.value;
    const res = await this.fetchImpl(this.url('/oauth/token'), {
      signal: this.timeout(),
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        client_id: this.options.clientId,
        client_secret: this.options.clientSecret,
        grant_type: 'client_credentials',
      }).toString(),
    });
    if (!res.ok) {
      throw new NotAllowedError(
        `Tailscale refused the OAuth client ${this.options.clientId} (HTTP ${res.status}); check the client id and secret`,
      );
    }
    const body = (await res.json()) as {
      access_token: string;
      expires_in?: number;
    };
    this.token = {
      value: body.access_token,
      expiresAt: Date.now() + (body.expires_in ?? 3600) * 1000,
    };
    return body.access_token;
  }

  private async call(path: string, init: RequestInit = {}): Promise<Response> {
    const token = await this.accessToken();
    const res = await this.fetchImpl(this.url(path), {
      signal: this.timeout(),
      ...init,
      headers: {
        ...(init.headers as Record<string, string>),
        authorization: `Bearer ${token}`,
      },
    });
    if (res.status === 401 || res.status === 403) {
      throw new NotAllowedError(
        `Tailscale API ${init.method ?? 'GET'} ${path} was refused (HTTP ${res.status}): ${await apiMessage(res)}; the OAuth client needs the policy_file scope`,
      );
    }
    return res;
  }

  private aclPath(suffix = '') {
    return `/tailnet/${encodeURIComponent(this.options.tailnet)}/acl${suffix}`;
  }

  async getPolicy(): Promise<PolicyFile> {
    const res = await this.call(this.aclPath(), {
      headers: { accept: 'application/hujson' },
    });
    if (!res.ok)
      throw new Error(
        `Reading the tailnet policy file failed (HTTP ${res.status}): ${await apiMessage(res)}`,
      );
    const etag = res.headers.get('etag');
    if (!etag)
      throw new Error(
        'The Tailscale API returned the policy file without an ETag',
      );
    return { text: await res.text(), etag };
  }

  /** Problems the API finds in a candidate policy, or an empty list. */
  async validatePolicy(text: string): Promise<string[]> {
    const res = await this.call(this.aclPath('/validate'), {
      method: 'POST',
      headers: { 'content-type': 'application/hujson' },
      body: text,
    });
    const body = (await res.text()).trim();
    if (!res.ok) return [`HTTP ${res.status}: ${messageOf(body)}`];
    if (!body || body === '{}') return [];
    const message = messageOf(body);
    return message ? [message] : [];
  }

  /** Replaces the policy if it still has `etag`; PolicyChangedError when someone wrote meanwhile. */
  async setPolicy(text: string, etag: string): Promise<PolicyFile> {
    const res = await this.call(this.aclPath(), {
      method: 'POST',
      headers: {
        'content-type': 'application/hujson',
        accept: 'application/hujson',
        'if-match': etag,
      },
      body: text,
    });
    if (res.status === 412) {
      throw new PolicyChangedError(
        'The tailnet policy file changed since it was read (HTTP 412)',
      );
    }
    if (res.status === 400) {
      throw new InputError(
        `Tailscale rejected the policy file: ${await apiMessage(res)}`,
      );
    }
    if (!res.ok)
      throw new Error(
        `Writing the tailnet policy file failed (HTTP ${res.status}): ${await apiMessage(res)}`,
      );
    return { text: await res.text(), etag: res.headers.get('etag') ?? '' };
  }
}

function messageOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: string };
    return parsed.message ?? body.slice(0, 300);
  } catch {
    return body.slice(0, 300);
  }
}

async function apiMessage(res: Response): Promise<string> {
  return messageOf(await res.text().catch(() => ''));
}
