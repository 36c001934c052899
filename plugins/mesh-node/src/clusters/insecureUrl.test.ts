import { ConfigReader } from '@backstage/config';
import { ClusterAccess, TailscaleClient } from '@tailmesh/plugin-mesh-node';
import { insecureUrlProblem } from './insecureUrl';

describe('insecureUrlProblem', () => {
  const strict = new ConfigReader({});
  const testBed = new ConfigReader({ mesh: { allowInsecureHttp: true } });

  it('takes https, refuses http unless mesh.allowInsecureHttp, and anything else always', () => {
    expect(
      insecureUrlProblem('https://k8s.example.com:6443', strict),
    ).toBeUndefined();
    expect(insecureUrlProblem('http://k8s.example.com', strict)).toBe(
      'must be https (credentials travel on it); http is allowed only with mesh.allowInsecureHttp: true, for a local test bed',
    );
    expect(
      insecureUrlProblem('http://127.0.0.1:8080', testBed),
    ).toBeUndefined();
    expect(insecureUrlProblem('ftp://k8s.example.com', testBed)).toBe(
      'must be https, got ftp:',
    );
    expect(insecureUrlProblem('not a url', testBed)).toBe('not a valid URL');
  });

  it('stops an http cluster or Tailscale API at configuration time', () => {
    expect(() =>
      ClusterAccess.fromConfig(
        new ConfigReader({
          mesh: { clusters: [{ name: 'east', url: 'http://10.0.0.1:8080' }] },
        }),
      ),
    ).toThrow(/Invalid cluster "east" in mesh.clusters: url: must be https/);
    expect(() =>
      TailscaleClient.fromConfig(
        new ConfigReader({
          mesh: {
            tailscale: {
              apiUrl: 'http://api.example.com',
              oauth: { clientId: 'id', clientSecret: 'secret' },
            },
          },
        }),
      ),
    ).toThrow('mesh.tailscale.apiUrl: must be https');
  });
});

describe('TailscaleClient redirects', () => {
  it('never follows one: the client secret and tokens reach the API only', async () => {
    const seen: RequestInit[] = [];
    const client = new TailscaleClient({
      apiUrl: 'https://api.example.com',
      tailnet: '-',
      clientId: 'id',
      clientSecret: 'secret',
      fetch: (async (_url: string, init: RequestInit) => {
        seen.push(init);
        return new Response(
          JSON.stringify({ access_token: 't', expires_in: 3600 }),
          { status: 200 },
        );
      }) as unknown as typeof fetch,
    });
    await client.grantedScopes();
    expect(seen).toHaveLength(1);
    expect(seen[0].redirect).toBe('error');
  });
});
