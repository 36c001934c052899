import { NotAllowedError } from '@backstage/errors';
import { TailscaleClient } from './TailscaleClient';

interface Answer {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
}

interface Call {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

/**
 * A Tailscale API stand-in: the token endpoint answers with `token` (JSON), every other path with
 * what `answers` holds for `<METHOD> <path>`; every request is kept in `calls`.
 */
function fakeApi(
  answers: Record<string, Answer>,
  token: Record<string, unknown> = {
    access_token: 'tok',
    expires_in: 3600,
    token_type: 'Bearer',
  },
) {
  const calls: Call[] = [];
  const fetchImpl: typeof fetch = async (input, init) => {
    const url = String(input);
    const method = init?.method ?? 'GET';
    calls.push({
      method,
      url,
      headers: (init?.headers ?? {}) as Record<string, string>,
      body: typeof init?.body === 'string' ? init.body : undefined,
    });
    const path = new URL(url).pathname;
    if (path === '/api/v2/oauth/token') {
      return new Response(JSON.stringify(token), {
        status: 200,
        headers: { 'content-type': 'application/json' },
      });
    }
    const answer = answers[`${method} ${path}`];
    if (!answer) return new Response('not found', { status: 404 });
    return new Response(answer.body ?? '', {
      status: answer.status ?? 200,
      headers: answer.headers,
    });
  };
  const client = new TailscaleClient({
    apiUrl: 'https://api.example.test/',
    tailnet: 'example.com',
    clientId: 'client-id',
    clientSecret: 'client-secret',
    fetch: fetchImpl,
  });
  return { client, calls };
}

const VALIDATE = 'POST /api/v2/tailnet/example.com/acl/validate';
const SETTINGS = 'GET /api/v2/tailnet/example.com/settings';

describe('TailscaleClient.validatePolicy', () => {
  const validate = (answer: Answer) =>
    fakeApi({ [VALIDATE]: answer }).client.validatePolicy('{"grants": []}');

  it('posts the candidate text as HuJSON with the bearer token', async () => {
    const { client, calls } = fakeApi({ [VALIDATE]: { body: '{}' } });
    await client.validatePolicy('{\n\t// c\n\t"grants": [],\n}');
    const call = calls.find(c => c.url.endsWith('/acl/validate'));
    expect(call).toEqual({
      method: 'POST',
      url: 'https://api.example.test/api/v2/tailnet/example.com/acl/validate',
      headers: {
        'content-type': 'application/hujson',
        authorization: 'Bearer tok',
      },
      body: '{\n\t// c\n\t"grants": [],\n}',
    });
  });

  it('finds nothing in {} or an empty answer', async () => {
    await expect(validate({ body: '{}' })).resolves.toEqual({
      errors: [],
      warnings: [],
    });
    await expect(validate({ body: '' })).resolves.toEqual({
      errors: [],
      warnings: [],
    });
    await expect(validate({ body: '  {}\n' })).resolves.toEqual({
      errors: [],
      warnings: [],
    });
  });

  it('reads "warning(s) found" as warnings, with the details of data', async () => {
    await expect(
      validate({
        body: JSON.stringify({
          message: 'warning(s) found',
          data: [
            {
              user: 'group:eng',
              errors: ['group is synced by SCIM', 'another note'],
            },
            { errors: ['without a user'] },
            'a plain string',
          ],
        }),
      }),
    ).resolves.toEqual({
      errors: [],
      warnings: [
        'warning(s) found: group:eng: group is synced by SCIM; group:eng: another note; without a user; a plain string',
      ],
    });
  });

  it('reads a warning message without data as a warning', async () => {
    await expect(
      validate({ body: JSON.stringify({ message: 'Warning: unused tag' }) }),
    ).resolves.toEqual({ errors: [], warnings: ['Warning: unused tag'] });
  });

  it('reads any other message in a 200 answer as an error, with its details', async () => {
    await expect(
      validate({
        body: JSON.stringify({
          message: 'test(s) failed',
          data: [{ user: 'alice@example.com', errors: ['cannot reach tag:x'] }],
        }),
      }),
    ).resolves.toEqual({
      errors: ['test(s) failed: alice@example.com: cannot reach tag:x'],
      warnings: [],
    });
    await expect(
      validate({
        body: JSON.stringify({
          message: 'line 3, column 5: unknown field "grant"',
        }),
      }),
    ).resolves.toEqual({
      errors: ['line 3, column 5: unknown field "grant"'],
      warnings: [],
    });
  });

  it('reads a non-2xx answer as an error with its HTTP code, warning or not', async () => {
    await expect(
      validate({
        status: 400,
        body: JSON.stringify({ message: 'parse error at line 1' }),
      }),
    ).resolves.toEqual({
      errors: ['HTTP 400: parse error at line 1'],
      warnings: [],
    });
    await expect(
      validate({
        status: 500,
        body: JSON.stringify({ message: 'warning(s) found' }),
      }),
    ).resolves.toEqual({
      errors: ['HTTP 500: warning(s) found'],
      warnings: [],
    });
    await expect(
      validate({ status: 502, body: 'Bad Gateway' }),
    ).resolves.toEqual({ errors: ['HTTP 502: Bad Gateway'], warnings: [] });
  });

  it('turns a refusal into NotAllowedError naming the policy_file scope', async () => {
    const result = validate({
      status: 403,
      body: JSON.stringify({ message: 'insufficient scope' }),
    });
    await expect(result).rejects.toThrow(NotAllowedError);
    await expect(result).rejects.toThrow(
      /HTTP 403\): insufficient scope; the OAuth client needs the policy_file scope/,
    );
  });
});

describe('TailscaleClient.grantedScopes', () => {
  it("splits the token answer's scope on spaces", async () => {
    const { client, calls } = fakeApi(
      {},
      {
        access_token: 'tok',
        expires_in: 3600,
        scope: 'auth_keys devices:core  services',
      },
    );
    await expect(client.grantedScopes()).resolves.toEqual([
      'auth_keys',
      'devices:core',
      'services',
    ]);
    expect(calls).toHaveLength(1);
    expect(calls[0].method).toBe('POST');
    expect(calls[0].url).toBe('https://api.example.test/api/v2/oauth/token');
    expect(new URLSearchParams(calls[0].body)).toEqual(
      new URLSearchParams({
        client_id: 'client-id',
        client_secret: 'client-secret',
        grant_type: 'client_credentials',
      }),
    );
  });

  it('is undefined when the token answer has no scope', async () => {
    const { client } = fakeApi({}, { access_token: 'tok', expires_in: 3600 });
    await expect(client.grantedScopes()).resolves.toBeUndefined();
  });

  it('is empty, not undefined, for an empty scope', async () => {
    const { client } = fakeApi({}, { access_token: 'tok', scope: '' });
    await expect(client.grantedScopes()).resolves.toEqual([]);
  });

  it('reuses the token it has, and hands out a copy', async () => {
    const { client, calls } = fakeApi(
      {},
      { access_token: 'tok', expires_in: 3600, scope: 'policy_file' },
    );
    const first = await client.grantedScopes();
    first?.push('all');
    await expect(client.grantedScopes()).resolves.toEqual(['policy_file']);
    expect(calls).toHaveLength(1);
  });

  it('fails with NotAllowedError when the client is refused, without the secret', async () => {
    const client = new TailscaleClient({
      apiUrl: 'https://api.example.test',
      tailnet: '-',
      clientId: 'client-id',
      clientSecret: 'client-secret',
      fetch: async () => new Response('{"message":"bad"}', { status: 401 }),
    });
    const result = client.grantedScopes();
    await expect(result).rejects.toThrow(NotAllowedError);
    await expect(result).rejects.toThrow(/client-id \(HTTP 401\)/);
    await expect(result).rejects.not.toThrow(/client-secret/);
  });
});

describe('TailscaleClient.getSettings', () => {
  it('reads GET /api/v2/tailnet/<tailnet>/settings', async () => {
    const { client, calls } = fakeApi({
      [SETTINGS]: {
        body: JSON.stringify({ httpsEnabled: true, devicesApprovalOn: false }),
      },
    });
    await expect(client.getSettings()).resolves.toMatchObject({
      httpsEnabled: true,
    });
    const call = calls[calls.length - 1];
    expect(call.method).toBe('GET');
    expect(call.url).toBe(
      'https://api.example.test/api/v2/tailnet/example.com/settings',
    );
    expect(call.headers.authorization).toBe('Bearer tok');
  });

  it('keeps httpsEnabled false, and undefined when the answer lacks it', async () => {
    await expect(
      fakeApi({
        [SETTINGS]: { body: JSON.stringify({ httpsEnabled: false }) },
      }).client.getSettings(),
    ).resolves.toEqual({ httpsEnabled: false });
    const settings = await fakeApi({
      [SETTINGS]: { body: '{}' },
    }).client.getSettings();
    expect(settings.httpsEnabled).toBeUndefined();
  });

  it('encodes the tailnet in the path', async () => {
    const calls: string[] = [];
    const client = new TailscaleClient({
      apiUrl: 'https://api.example.test',
      tailnet: 'a b/c',
      clientId: 'id',
      clientSecret: 'secret',
      fetch: async input => {
        calls.push(String(input));
        return new Response(
          String(input).endsWith('/oauth/token')
            ? JSON.stringify({ access_token: 't' })
            : '{}',
        );
      },
    });
    await client.getSettings();
    expect(calls[1]).toBe(
      'https://api.example.test/api/v2/tailnet/a%20b%2Fc/settings',
    );
  });

  it('turns a 403 into NotAllowedError naming feature_settings:read', async () => {
    const result = fakeApi({
      [SETTINGS]: {
        status: 403,
        body: JSON.stringify({
          message: 'calling actor does not have enough permissions',
        }),
      },
    }).client.getSettings();
    await expect(result).rejects.toThrow(NotAllowedError);
    await expect(result).rejects.toThrow(
      /GET \/tailnet\/example\.com\/settings was refused \(HTTP 403\): calling actor does not have enough permissions; the OAuth client needs the feature_settings:read scope/,
    );
  });

  it('fails with the HTTP code on another error, not as NotAllowedError', async () => {
    const result = fakeApi({
      [SETTINGS]: { status: 500, body: JSON.stringify({ message: 'boom' }) },
    }).client.getSettings();
    await expect(result).rejects.toThrow(
      'Reading the tailnet settings failed (HTTP 500): boom',
    );
    await expect(result).rejects.not.toBeInstanceOf(NotAllowedError);
  });
});
