import { mockApis } from '@backstage/test-utils';
import { ResponseError } from '@backstage/errors';
import { MeshClient } from './MeshClient';

const BASE_URL = 'http://backstage.test';

function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });
}

function setup(response: Response) {
  const fetch = jest.fn(
    async (_input: RequestInfo | URL, _init?: RequestInit) => response,
  );
  const client = new MeshClient({
    discoveryApi: mockApis.discovery({ baseUrl: BASE_URL }),
    fetchApi: { fetch },
  });
  const requestedUrl = () => String(fetch.mock.calls[0][0]);
  return { client, fetch, requestedUrl };
}

describe('MeshClient', () => {
  it('reads the clusters from the mesh backend', async () => {
    const body = { clusters: [], generatedAt: '2025-11-26T12:00:00.000Z' };
    const { client, requestedUrl } = setup(jsonResponse(body));
    await expect(client.getClusters()).resolves.toEqual(body);
    expect(requestedUrl()).toBe(`${BASE_URL}/api/mesh/clusters`);
  });

  it('reads the membership', async () => {
    const { client, requestedUrl } = setup(jsonResponse({ clusters: [] }));
    await client.getMembership();
    expect(requestedUrl()).toBe(`${BASE_URL}/api/mesh/membership`);
  });

  it('encodes the service namespace and name as path segments', async () => {
    const { client, requestedUrl } = setup(jsonResponse({}));
    await client.getServiceStatus({ namespace: 'a/b', name: 'c d?' });
    expect(requestedUrl()).toBe(`${BASE_URL}/api/mesh/services/a%2Fb/c%20d%3F`);
  });

  it('passes the entity ref as an encoded query parameter', async () => {
    const { client, requestedUrl } = setup(jsonResponse({}));
    await client.getEntityStatus('component:default/echo&x=1');
    const url = new URL(requestedUrl());
    expect(url.pathname).toBe('/api/mesh/entity');
    expect([...url.searchParams.entries()]).toEqual([
      ['entityRef', 'component:default/echo&x=1'],
    ]);
  });

  it('asks for a page of history with its limit and cursor', async () => {
    const { client, fetch } = setup(jsonResponse({ events: [] }));
    await client.getHistory();
    expect(String(fetch.mock.calls[0][0])).toBe(`${BASE_URL}/api/mesh/history`);
    fetch.mockResolvedValueOnce(jsonResponse({ events: [] }));
    await client.getHistory({ limit: 20, before: '41' });
    expect(String(fetch.mock.calls[1][0])).toBe(
      `${BASE_URL}/api/mesh/history?limit=20&before=41`,
    );
  });

  it("surfaces the backend's error with its status and message", async () => {
    const { client } = setup(
      jsonResponse(
        {
          error: {
            name: 'NotAllowedError',
            message: 'Not allowed: mesh.membership.read',
          },
          request: { method: 'GET', url: '/api/mesh/membership' },
          response: { statusCode: 403 },
        },
        403,
      ),
    );
    const error = await client.getMembership().catch(e => e);
    expect(ResponseError.is(error)).toBe(true);
    expect(error.statusCode).toBe(403);
    expect(error.cause.name).toBe('NotAllowedError');
    expect(error.cause.message).toBe('Not allowed: mesh.membership.read');
  });

  it('fails on an error answer that is not JSON', async () => {
    const { client } = setup(new Response('Bad Gateway', { status: 502 }));
    const error = await client.getClusters().catch(e => e);
    expect(ResponseError.is(error)).toBe(true);
    expect(error.statusCode).toBe(502);
  });
});
