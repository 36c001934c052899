import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import request from 'supertest';
import { meshPlugin } from './plugin';

jest.setTimeout(60_000);

describe('meshPlugin', () => {
  it('starts with no cluster configured and serves its routes', async () => {
    const { server } = await startTestBackend({
      features: [
        meshPlugin,
        mockServices.rootConfig.factory({ data: { mesh: { clusters: [] } } }),
        catalogServiceMock.factory(),
      ],
    });
    expect((await request(server).get('/api/mesh/health')).status).toBe(200);
    const clusters = await request(server).get('/api/mesh/clusters');
    expect(clusters.status).toBe(200);
    expect(clusters.body.clusters).toEqual([]);
    const history = await request(server).get('/api/mesh/history');
    expect(history.body).toEqual({ events: [] });
  });
});
