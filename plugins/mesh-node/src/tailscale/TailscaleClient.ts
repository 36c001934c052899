import { Config } from '@backstage/config';
import { ConflictError, InputError, NotAllowedError } from '@backstage/errors';
import { insecureUrlProblem } from '../clusters/insecureUrl';

/**
 * The tailnet policy file as the API stores it: HuJSON text (comments kept) and its ETag.
 *
 * @public
 */
export interface PolicyFile {
  text: string;
  etag: string;
}

/**
 * What the Tailscale API finds in a candidate policy file: errors refuse it, warnings do not.
 *
 * @public
 */
export interface PolicyValidation {
  errors: string[];
  warnings: string[];
}

/**
 * The tailnet settings Tailmesh reads (tailscale/tailscale-client-go-v2 `TailnetSettings`).
 *
 * @public
 */
export interface TailnetSettings {
  httpsEnabled?: boolean;
}

/** @public */
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

/**
 * A write lost a race with another writer (HTTP 412): re-read and apply the change again.
 *
 * @public
 */
export class PolicyChangedError extends ConflictError {}

/**
 * The Tailscale API calls Tailmesh makes, with OAuth client-credentials. Error messages carry the
 * API's own message and status, never the client secret or a token.
 *
 * @public
 */
export class TailscaleClient {
  private token?: { value: string; expiresAt: number; scopes?: string[] };
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
    const apiUrl =
      overrides.apiUrl ??
      ts?.getOptionalString('apiUrl') ??
      'https://api.tailscale.com';
    const problem = insecureUrlProblem(apiUrl, config);
    if (problem) throw new InputError(`mesh.tailscale.apiUrl: ${problem}`);
    return new TailscaleClient({
      apiUrl,
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
      // A redirect would carry the client secret (a 307/308 re-sends the body) elsewhere.
      redirect: 'error',
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
      scope?: string;
    };
    this.token = {
      value: body.access_token,
      expiresAt: Date.now() + (body.expires_in ?? 3600) * 1000,
      scopes:
        typeof body.scope === 'string'
          ? body.scope.split(/\s+/).filter(Boolean)
          : undefined,
    };
    return body.access_token;
  }

  /**
   * The scopes Tailscale granted the OAuth client, from the token response's `scope` (RFC 6749
   * 5.1); undefined when the answer does not say.
   */
  async grantedScopes(): Promise<string[] | undefined> {
    await this.accessToken();
    return this.token?.scopes ? [...this.token.scopes] : undefined;
  }

  private async call(
    path: string,
    init: RequestInit = {},
    scope = 'policy_file',
  ): Promise<Response> {
    const token = await this.accessToken();
    const res = await this.fetchImpl(this.url(path), {
      signal: this.timeout(),
      ...init,
      // The bearer token must reach the API and nothing else.
      redirect: 'error',
      headers: {
        ...(init.headers as Record<string, string>),
        authorization: `Bearer ${token}`,
      },
    });
    if (res.status === 401 || res.status === 403) {
      throw new NotAllowedError(
        `Tailscale API ${init.method ?? 'GET'} ${path} was refused (HTTP ${res.status}): ${await apiMessage(res)}; the OAuth client needs the ${scope} scope`,
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

  /**
   * What the API finds in a candidate policy. `POST /acl/validate` answers 200 with a `message`
   * both for errors and for "warning(s) found" (e.g. groups synced by SCIM), the details in `data`
   * (tailscale.com/api, "Validate and test policy file"): warnings do not stop a write.
   */
  async validatePolicy(text: string): Promise<PolicyValidation> {
    const res = await this.call(this.aclPath('/validate'), {
      method: 'POST',
      headers: { 'content-type': 'application/hujson' },
      body: text,
    });
    const body = (await res.text()).trim();
    if (!res.ok)
      return {
        errors: [`HTTP ${res.status}: ${messageOf(body)}`],
        warnings: [],
      };
    if (!body || body === '{}') return { errors: [], warnings: [] };
    // A 200 without a message (`{"data": []}`, `null`) found nothing either.
    const hasMessage = (() => {
      try {
        const parsed = JSON.parse(body) as { message?: unknown } | null;
        return typeof parsed?.message === 'string' && parsed.message !== '';
      } catch {
        return true; // not JSON: the text is the message
      }
    })();
    if (!hasMessage) return { errors: [], warnings: [] };
    const message = messageOf(body);
    if (!message) return { errors: [], warnings: [] };
    const details = detailsOf(body);
    const text_ = details.length
      ? `${message}: ${details.join('; ')}`
      : message;
    return /^warning/i.test(message)
      ? { errors: [], warnings: [text_] }
      : { errors: [text_], warnings: [] };
  }

  /**
   * The tailnet's settings (`GET /tailnet/{tailnet}/settings`; the OAuth client needs the
   * `feature_settings:read` scope); Tailmesh reads `httpsEnabled`, without which no API server
   * proxy can serve TLS (tailscale.com/kb/1437).
   */
  async getSettings(): Promise<TailnetSettings> {
    const path = `/tailnet/${encodeURIComponent(this.options.tailnet)}/settings`;
    const res = await this.call(path, {}, 'feature_settings:read');
    if (!res.ok)
      throw new Error(
        `Reading the tailnet settings failed (HTTP ${res.status}): ${await apiMessage(res)}`,
      );
    return (await res.json()) as TailnetSettings;
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

/** The `data` of a validation answer: entries of `{user, errors: [...]}` or plain strings. */
function detailsOf(body: string): string[] {
  try {
    const parsed = JSON.parse(body) as { data?: unknown };
    if (!Array.isArray(parsed.data)) return [];
    return parsed.data.flatMap(d => {
      if (typeof d === 'string') return [d];
      if (d && typeof d === 'object') {
        const e = d as { user?: unknown; errors?: unknown };
        const errors = Array.isArray(e.errors)
          ? e.errors.filter((x): x is string => typeof x === 'string')
          : [];
        return errors.map(x =>
          typeof e.user === 'string' && e.user ? `${e.user}: ${x}` : x,
        );
      }
      return [];
    });
  } catch {
    return [];
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
