import { Entity } from '@backstage/catalog-model';
import { ResponseError } from '@backstage/errors';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import { renderInTestApp, TestApiProvider } from '@backstage/test-utils';
import { screen, waitFor, within } from '@testing-library/react';
import { MeshApi, meshApiRef } from '../../api';
import {
  echoServedByTwoOfThree,
  echoServedNowhere,
  fakeMeshApi,
  serviceEntity,
} from '../../testUtils/meshFixtures';
import { EntityMeshCard } from './EntityMeshCard';

const entity = serviceEntity;

const echoEntity = entity({ 'tailmesh.dev/service': 'default/echo' });

async function renderCard(
  meshApi: MeshApi,
  forEntity: Entity = echoEntity,
  pollIntervalMs = 60_000,
) {
  return renderInTestApp(
    <TestApiProvider apis={[[meshApiRef, meshApi]]}>
      <EntityProvider entity={forEntity}>
        <EntityMeshCard pollIntervalMs={pollIntervalMs} />
      </EntityProvider>
    </TestApiProvider>,
  );
}

function rowOf(cluster: string): HTMLElement {
  return screen.getByRole('rowheader', { name: cluster }).closest('tr')!;
}

describe('EntityMeshCard', () => {
  it('shows progress while the first answer is pending', async () => {
    const meshApi = fakeMeshApi({
      getServiceStatus: jest.fn(() => new Promise<never>(() => {})),
    });
    await renderCard(meshApi);
    expect(screen.getByTestId('progress')).toBeInTheDocument();
    expect(meshApi.getServiceStatus).toHaveBeenCalledWith({
      namespace: 'default',
      name: 'echo',
    });
  });

  it('names the missing annotations when the entity has neither', async () => {
    const meshApi = fakeMeshApi();
    await renderCard(meshApi, entity({}));
    expect(screen.getByText(/Missing Annotation/i)).toBeInTheDocument();
    expect(
      screen.getAllByText(/tailmesh\.dev\/service/).length,
    ).toBeGreaterThan(0);
    expect(meshApi.getServiceStatus).not.toHaveBeenCalled();
  });

  it("falls back to the Kubernetes plugin's annotations", async () => {
    const meshApi = fakeMeshApi({
      getServiceStatus: jest.fn(async () => echoServedByTwoOfThree()),
    });
    await renderCard(
      meshApi,
      entity({
        'backstage.io/kubernetes-id': 'echo',
        'backstage.io/kubernetes-namespace': 'shop',
      }),
    );
    await screen.findByRole('table');
    expect(meshApi.getServiceStatus).toHaveBeenCalledWith({
      namespace: 'shop',
      name: 'echo',
    });
  });

  it('shows the error panel when the first request fails', async () => {
    const meshApi = fakeMeshApi({
      getServiceStatus: jest.fn(async () => {
        throw new Error('mesh backend unavailable');
      }),
    });
    await renderCard(meshApi);
    expect(
      (await screen.findAllByText(/mesh backend unavailable/)).length,
    ).toBeGreaterThan(0);
    expect(screen.queryByRole('table')).not.toBeInTheDocument();
  });

  it('says the user is not allowed when the backend refuses', async () => {
    const refusal = await ResponseError.fromResponse(
      new Response(
        JSON.stringify({
          error: {
            name: 'NotAllowedError',
            message: 'Not allowed: mesh.status.read',
          },
          request: { method: 'GET', url: '/api/mesh/services/default/echo' },
          response: { statusCode: 403 },
        }),
        { status: 403, headers: { 'Content-Type': 'application/json' } },
      ),
    );
    await renderCard(
      fakeMeshApi({
        getServiceStatus: jest.fn(async () => {
          throw refusal;
        }),
      }),
    );
    expect(await screen.findByText('Not allowed')).toBeInTheDocument();
    expect(
      screen.getByText(/needs the mesh\.status\.read permission/),
    ).toBeInTheDocument();
  });

  it('says so when no cluster serves the Service', async () => {
    const meshApi = fakeMeshApi({
      getServiceStatus: jest.fn(async () => echoServedNowhere()),
    });
    await renderCard(meshApi);
    expect(
      await screen.findByText(/served by 0 of 2 clusters, 0\/1 endpoint ready/),
    ).toBeInTheDocument();
    expect(screen.getByText(/Not served anywhere/)).toBeInTheDocument();
    expect(
      within(rowOf('cluster1')).getByText('not serving'),
    ).toBeInTheDocument();
    expect(
      within(rowOf('cluster2')).getByText(/unreachable: no ready endpoint/),
    ).toBeInTheDocument();
  });

  it('shows every cluster, including the unreachable one with its error', async () => {
    const meshApi = fakeMeshApi({
      getServiceStatus: jest.fn(async () => echoServedByTwoOfThree()),
    });
    await renderCard(meshApi);
    expect(
      await screen.findByText(
        'default/echo: served by 2 of 3 clusters, 5/6 endpoints ready',
      ),
    ).toBeInTheDocument();
    expect(screen.queryByText(/Not served anywhere/)).not.toBeInTheDocument();

    const cluster1 = within(rowOf('cluster1'));
    expect(cluster1.getByText('serving')).toBeInTheDocument();
    expect(cluster1.getByText('3/4')).toBeInTheDocument();
    expect(cluster1.getByText('region1 / region1-a: 2/2')).toBeInTheDocument();
    expect(cluster1.getByText('region1 / region1-b: 1/2')).toBeInTheDocument();
    expect(cluster1.getByText('network1')).toBeInTheDocument();
    // As istiod programs it: the local endpoints and cluster2's gateway, each with its share.
    expect(
      cluster1.getByText(
        "local endpoints (3) + cluster2's gateway (2, cluster2-istio-eastwestgateway.tail1234.ts.net)",
      ),
    ).toBeInTheDocument();

    const cluster3 = within(rowOf('cluster3'));
    expect(cluster3.getByText(/unreachable: Timed out/)).toBeInTheDocument();
    expect(
      cluster3.getByText(
        'cluster3: https://127.0.0.1:31013 did not answer in time',
      ),
    ).toBeInTheDocument();
    expect(cluster3.getByText('unknown')).toBeInTheDocument();
    expect(
      cluster3.getByText(
        "cluster1's gateway (3, cluster1-istio-eastwestgateway.tail1234.ts.net)",
      ),
    ).toBeInTheDocument();
  });

  it('refreshes without dropping what it shows, and shows the new answer', async () => {
    let resolveRefresh: (
      value: ReturnType<typeof echoServedByTwoOfThree>,
    ) => void = () => {};
    const getServiceStatus = jest
      .fn()
      .mockResolvedValueOnce(echoServedByTwoOfThree())
      .mockImplementationOnce(
        () => new Promise(resolve => (resolveRefresh = resolve)),
      );
    await renderCard(fakeMeshApi({ getServiceStatus }), echoEntity, 20);
    await screen.findByText(/served by 2 of 3 clusters/);

    await waitFor(() => expect(getServiceStatus).toHaveBeenCalledTimes(2));
    expect(screen.getByText(/served by 2 of 3 clusters/)).toBeInTheDocument();
    expect(screen.queryByTestId('progress')).not.toBeInTheDocument();

    const recovered = echoServedByTwoOfThree();
    recovered.clusters[2] = {
      ...recovered.clusters[2],
      reachable: true,
      error: undefined,
      serving: true,
      endpoints: { ready: 2, notReady: 0 },
    };
    recovered.summary = {
      servingClusters: 3,
      totalClusters: 3,
      readyEndpoints: 7,
      totalEndpoints: 8,
    };
    // Later polls (every 20 ms here) keep answering the same, so a slow machine that polls again
    // before the assertion below still sees the recovered answer.
    getServiceStatus.mockResolvedValue(recovered);
    resolveRefresh(recovered);
    expect(
      await screen.findByText(
        /served by 3 of 3 clusters, 7\/8 endpoints ready/,
      ),
    ).toBeInTheDocument();
  });

  it('keeps the last answer and says so when a refresh fails', async () => {
    const getServiceStatus = jest
      .fn()
      .mockResolvedValueOnce(echoServedByTwoOfThree())
      .mockRejectedValue(new Error('connection reset'));
    await renderCard(fakeMeshApi({ getServiceStatus }), echoEntity, 20);
    expect(
      await screen.findByText(/Refresh failed \(connection reset\)/),
    ).toBeInTheDocument();
    expect(screen.getByText(/served by 2 of 3 clusters/)).toBeInTheDocument();
    expect(
      screen.getByRole('rowheader', { name: 'cluster3' }),
    ).toBeInTheDocument();
  });
});
