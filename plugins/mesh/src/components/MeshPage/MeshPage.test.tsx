import { ResponseError } from '@backstage/errors';
import { permissionApiRef } from '@backstage/plugin-permission-react';
import {
  mockApis,
  renderInTestApp,
  TestApiProvider,
} from '@backstage/test-utils';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { MeshApi, meshApiRef } from '../../api';
import {
  fakeMeshApi,
  grantFinding,
  healthyClusters,
  historyPage,
  largeMesh,
  membership,
  oneWaySecretFinding,
  ROOT_FINGERPRINT,
  wrongAddressFinding,
} from '../../testUtils/meshFixtures';
import { MeshPage } from './MeshPage';

// jsdom lays nothing out; DependencyGraph measures its nodes and labels with getBBox.
beforeAll(() => {
  Object.defineProperty(window.SVGElement.prototype, 'getBBox', {
    configurable: true,
    value: () => ({ x: 0, y: 0, width: 120, height: 40 }),
  });
});

const JOINED = {
  id: '7',
  at: new Date(Date.now() - 120_000).toISOString(),
  cluster: 'cluster3',
  kind: 'joined' as const,
  message: 'cluster3 joined the mesh (network3)',
};
const RAISED = {
  id: '6',
  at: new Date(Date.now() - 3_600_000).toISOString(),
  kind: 'finding-raised' as const,
  findingId: 'grant-too-broad',
  message: 'The tailnet policy grants system:masters to tag:k8s-operator.',
};

const GRAPH_SETTLED = { timeout: 8000 };

function healthyMeshApi(overrides: Partial<MeshApi> = {}) {
  return fakeMeshApi({
    getClusters: jest.fn(async () => healthyClusters()),
    getMembership: jest.fn(async () => membership()),
    getHistory: jest.fn(async () => historyPage([JOINED, RAISED])),
    ...overrides,
  });
}

async function renderPage(
  meshApi: MeshApi,
  route = '/mesh',
  pollIntervalMs = 60_000,
) {
  return renderInTestApp(
    <TestApiProvider
      apis={[
        [meshApiRef, meshApi],
        [permissionApiRef, mockApis.permission()],
      ]}
    >
      <MeshPage pollIntervalMs={pollIntervalMs} />
    </TestApiProvider>,
    { routeEntries: [route] },
  );
}

function clusterRow(name: string): HTMLElement {
  const table = screen.getByRole('table', { name: 'Clusters' });
  return within(table).getByRole('rowheader', { name }).closest('tr')!;
}

async function forbidden(): Promise<ResponseError> {
  return ResponseError.fromResponse(
    new Response(
      JSON.stringify({
        error: {
          name: 'NotAllowedError',
          message: 'Not allowed: mesh.membership.read',
        },
        request: { method: 'GET', url: '/api/mesh/membership' },
        response: { statusCode: 403 },
      }),
      { status: 403, headers: { 'Content-Type': 'application/json' } },
    ),
  );
}

describe('MeshPage', () => {
  it('shows progress until the mesh has loaded', async () => {
    await renderPage(
      healthyMeshApi({
        getClusters: jest.fn(() => new Promise<never>(() => {})),
      }),
    );
    expect(
      screen.getByRole('heading', { name: 'Service mesh' }),
    ).toBeInTheDocument();
    expect(screen.getAllByTestId('progress').length).toBeGreaterThan(0);
    expect(
      screen.queryByRole('heading', { name: 'Clusters' }),
    ).not.toBeInTheDocument();
  });

  it('shows the error when the mesh cannot be loaded', async () => {
    await renderPage(
      healthyMeshApi({
        getMembership: jest.fn(async () => {
          throw new Error('mesh backend unavailable');
        }),
      }),
    );
    expect(
      (await screen.findAllByText(/mesh backend unavailable/)).length,
    ).toBeGreaterThan(0);
    expect(
      screen.queryByRole('heading', { name: 'Clusters' }),
    ).not.toBeInTheDocument();
  });

  it('shows the not-allowed state when the backend refuses', async () => {
    const error = await forbidden();
    await renderPage(
      healthyMeshApi({
        getMembership: jest.fn(async () => {
          throw error;
        }),
      }),
    );
    expect(await screen.findByText('Not allowed')).toBeInTheDocument();
    expect(
      screen.getByText(/needs the mesh\.membership\.read permission/),
    ).toBeInTheDocument();
  });

  it('shows a healthy mesh of three members and a configured cluster that is down', async () => {
    await renderPage(healthyMeshApi());
    expect(
      await screen.findByRole('heading', { name: 'Clusters' }),
    ).toBeInTheDocument();
    for (const heading of [
      'Membership',
      'Mesh graph',
      'Audit findings',
      'History',
    ]) {
      expect(
        screen.getByRole('heading', { name: heading }),
      ).toBeInTheDocument();
    }

    // The first line says how the mesh is, and which cluster to look at.
    const health = screen.getByRole('status', { name: 'Mesh health' });
    expect(health).toHaveTextContent(
      'The mesh works, with warnings: 1 cluster cannot be read',
    );
    expect(
      within(health).getByRole('link', { name: 'cluster4' }),
    ).toHaveAttribute('href', '/mesh?cluster=cluster4');

    const cluster1 = within(clusterRow('cluster1'));
    expect(cluster1.getByText('member')).toBeInTheDocument();
    expect(cluster1.getByText('network1')).toBeInTheDocument();
    expect(
      cluster1.getByText('1.27.3, ready (1/1 replicas)'),
    ).toBeInTheDocument();
    expect(cluster1.getByText('100.64.0.11')).toBeInTheDocument();
    expect(
      cluster1.getByText('cluster1-eastwest.tailmesh-test.ts.net'),
    ).toBeInTheDocument();
    expect(cluster1.getByText('3A:7F:21:9C:…')).toBeInTheDocument();
    expect(
      cluster1.getByLabelText(`Root fingerprint ${ROOT_FINGERPRINT}`),
    ).toBeInTheDocument();
    expect(cluster1.getByText(/synced/)).toBeInTheDocument();

    const cluster4 = within(clusterRow('cluster4'));
    expect(cluster4.getByText('not a member')).toBeInTheDocument();
    expect(
      cluster4.getByText(/sync failing, never synced/),
    ).toBeInTheDocument();
    expect(
      cluster4.getByText(
        /Cannot connect: cluster4: cannot connect to .*ECONNREFUSED/,
      ),
    ).toBeInTheDocument();

    const matrix = screen.getByRole('table', { name: 'Membership matrix' });
    expect(within(matrix).getAllByText('ok')).toHaveLength(6);
    expect(within(matrix).getAllByText('—')).toHaveLength(3);

    expect(screen.getByText(/No findings/)).toBeInTheDocument();

    // The graph stays invisible (so inaccessible) until its layout has settled.
    expect(
      await screen.findByRole(
        'img',
        { name: 'cluster1: member, network network1' },
        GRAPH_SETTLED,
      ),
    ).toBeInTheDocument();
    expect(
      screen.getByRole('img', { name: 'cluster4: not a member, unreachable' }),
    ).toBeInTheDocument();
    expect(
      screen.getByRole('img', { name: 'cluster1 ↔ cluster2: ok' }),
    ).toBeInTheDocument();

    const history = screen.getByRole('table', { name: 'Membership history' });
    expect(
      within(history).getByText('cluster3 joined the mesh (network3)'),
    ).toBeInTheDocument();
    expect(within(history).getByText('2 min ago')).toBeInTheDocument();
    expect(within(history).getByText('finding raised')).toBeInTheDocument();
  });

  it('highlights the cluster named in the query and brings it into view', async () => {
    const scrolled: Element[] = [];
    window.HTMLElement.prototype.scrollIntoView = function scrollIntoView() {
      scrolled.push(this);
    };
    await renderPage(healthyMeshApi(), '/mesh?cluster=cluster2');
    await screen.findByRole('heading', { name: 'Clusters' });
    expect(clusterRow('cluster2')).toHaveAttribute('aria-current', 'true');
    expect(clusterRow('cluster1')).not.toHaveAttribute('aria-current');
    expect(scrolled).toEqual([clusterRow('cluster2')]);
  });

  it('marks missing and broken links in the matrix and the graph', async () => {
    await renderPage(
      healthyMeshApi({
        getMembership: jest.fn(async () =>
          membership({
            'cluster2→cluster3': {
              remoteSecret: 'missing',
              istiodSync: 'not-listed',
            },
            'cluster1→cluster3': { gatewayInMeshNetworks: 'wrong-address' },
          }),
        ),
      }),
    );
    const matrix = await screen.findByRole('table', {
      name: 'Membership matrix',
    });
    expect(
      within(matrix).getByLabelText(
        "cluster2 → cluster3: missing (remote secret missing; cluster3's gateway in cluster2's meshNetworks; cluster2's istiod does not list cluster3)",
      ),
    ).toHaveTextContent('missing');
    expect(
      within(matrix).getByLabelText(
        "cluster1 → cluster3: broken (remote secret present; cluster1's meshNetworks has a wrong address for cluster3's gateway; cluster1's istiod reports cluster3 synced)",
      ),
    ).toHaveTextContent('broken');
    expect(within(matrix).getAllByText('ok')).toHaveLength(4);

    expect(
      await screen.findByRole(
        'img',
        { name: 'cluster1 ↔ cluster3: cluster1 → cluster3 broken' },
        GRAPH_SETTLED,
      ),
    ).toHaveAttribute('data-status', 'broken');
    expect(
      screen.getByRole('img', {
        name: 'cluster2 ↔ cluster3: cluster2 → cluster3 missing',
      }),
    ).toHaveAttribute('data-status', 'missing');
  });

  it('lists findings most severe first, with their clusters and fix', async () => {
    await renderPage(
      healthyMeshApi({
        getMembership: jest.fn(async () => ({
          ...membership({}, [
            grantFinding,
            wrongAddressFinding,
            oneWaySecretFinding,
          ]),
          tailnetPolicy: { state: 'not-configured' as const },
        })),
      }),
    );
    expect(
      await screen.findByText(
        'Tailnet policy file: not checked (no Tailscale OAuth client configured).',
      ),
    ).toBeInTheDocument();
    const findings = await screen.findByRole('table', {
      name: 'Audit findings',
    });
    const rows = within(findings).getAllByRole('row').slice(1);
    expect(
      rows.map(row => within(row).getAllByRole('cell')[0].textContent),
    ).toEqual(['error', 'warning', 'info']);
    expect(
      within(rows[0]).getByText('One way remote secret'),
    ).toBeInTheDocument();
    expect(within(rows[0]).getByText('cluster2, cluster3')).toBeInTheDocument();
    expect(
      within(rows[0]).getByText(oneWaySecretFinding.fix),
    ).toBeInTheDocument();
    expect(within(rows[2]).getByText('mesh-wide')).toBeInTheDocument();
  });

  it('pages through older history and back', async () => {
    const older = {
      ...JOINED,
      id: '3',
      message: 'cluster1 joined the mesh (network1)',
    };
    const getHistory = jest.fn(async ({ before }: { before?: string } = {}) =>
      before === '6'
        ? historyPage([older])
        : historyPage([JOINED, RAISED], '6'),
    );
    await renderPage(healthyMeshApi({ getHistory }));
    await screen.findByText('cluster3 joined the mesh (network3)');
    expect(screen.getByRole('button', { name: 'Newer' })).toBeDisabled();

    await userEvent.click(screen.getByRole('button', { name: 'Older' }));
    expect(
      await screen.findByText('cluster1 joined the mesh (network1)'),
    ).toBeInTheDocument();
    expect(
      screen.queryByText('cluster3 joined the mesh (network3)'),
    ).not.toBeInTheDocument();
    expect(getHistory).toHaveBeenLastCalledWith({ limit: 20, before: '6' });
    expect(screen.getByRole('button', { name: 'Older' })).toBeDisabled();

    await userEvent.click(screen.getByRole('button', { name: 'Newer' }));
    expect(
      await screen.findByText('cluster3 joined the mesh (network3)'),
    ).toBeInTheDocument();
  });

  it('refreshes without flicker and shows what changed', async () => {
    let answerRefresh: (
      value: ReturnType<typeof membership>,
    ) => void = () => {};
    const getMembership = jest
      .fn()
      .mockResolvedValueOnce(membership())
      .mockImplementationOnce(
        () => new Promise(resolve => (answerRefresh = resolve)),
      )
      .mockImplementation(() => new Promise(() => {}));
    await renderPage(healthyMeshApi({ getMembership }), '/mesh', 30);
    await screen.findByText(/No findings/);

    await waitFor(() => expect(getMembership).toHaveBeenCalledTimes(2));
    expect(screen.queryAllByTestId('progress')).toHaveLength(0);
    expect(
      screen.getByRole('heading', { name: 'Clusters' }),
    ).toBeInTheDocument();
    expect(screen.getByText(/No findings/)).toBeInTheDocument();

    answerRefresh(membership({}, [oneWaySecretFinding]));
    expect(
      await screen.findByText(oneWaySecretFinding.message),
    ).toBeInTheDocument();
    expect(screen.queryByText(/No findings/)).not.toBeInTheDocument();
  });

  it('shows a hundred-member mesh by member, with its problems, filterable, and draws only the problem links', async () => {
    const mesh = largeMesh(100, ['cluster7→cluster42', 'cluster7→cluster43']);
    // One member whose istiod is not ready: the clusters card lists it (and only it).
    mesh.clusters.clusters[59].istiod.ready = false;
    await renderPage(
      healthyMeshApi({
        getClusters: jest.fn(async () => mesh.clusters),
        getMembership: jest.fn(async () => mesh.membership),
      }),
    );
    expect(
      await screen.findByText('1 of 100 clusters shown'),
    ).toBeInTheDocument();
    const clusters = screen.getByRole('table', { name: 'Clusters' });
    expect(
      within(clusters)
        .getAllByRole('rowheader')
        .map(r => r.textContent),
    ).toEqual(['cluster60']);
    const table = await screen.findByRole('table', {
      name: 'Membership by member',
    });
    expect(
      screen.getByText(
        '100 members, 9,900 links: 9,898 ok, 2 missing, 0 broken',
      ),
    ).toBeInTheDocument();
    // Only the member with a problem, and what is wrong, described.
    const rows = within(table).getAllByRole('rowheader');
    expect(rows.map(r => r.textContent)).toEqual(['cluster7']);
    const row = rows[0].closest('tr')!;
    expect(within(row).getByText('97 of 99')).toBeInTheDocument();
    expect(
      within(row).getByLabelText(/^cluster7 → cluster42: missing/),
    ).toHaveTextContent('→ cluster42 missing');
    expect(
      screen.queryByRole('table', { name: 'Membership matrix' }),
    ).not.toBeInTheDocument();

    // Every member, filtered by name.
    await userEvent.click(
      screen.getByRole('checkbox', { name: 'Only members with a problem' }),
    );
    // (The clusters card has a filter of its own.)
    expect(
      screen.getByRole('textbox', { name: 'Filter clusters' }),
    ).toBeInTheDocument();
    await userEvent.type(
      screen.getByRole('textbox', { name: 'Filter members' }),
      'cluster4',
    );
    expect(
      within(table)
        .getAllByRole('rowheader')
        .map(r => r.textContent),
    ).toEqual([
      'cluster4',
      'cluster40',
      'cluster41',
      'cluster42',
      'cluster43',
      'cluster44',
      'cluster45',
      'cluster46',
      'cluster47',
      'cluster48',
      'cluster49',
    ]);

    // The graph draws the two problem links, not 4,950.
    expect(
      await screen.findByRole(
        'img',
        { name: 'cluster7 ↔ cluster42: cluster7 → cluster42 missing' },
        GRAPH_SETTLED,
      ),
    ).toBeInTheDocument();
    expect(
      screen.getByText(
        'Only the 2 links with a problem are drawn: 4,948 healthy links, 97 clusters not shown.',
      ),
    ).toBeInTheDocument();
  });

  it('lists the cluster the query names among a hundred, even a healthy one', async () => {
    const mesh = largeMesh(100);
    await renderPage(
      healthyMeshApi({
        getClusters: jest.fn(async () => mesh.clusters),
        getMembership: jest.fn(async () => mesh.membership),
      }),
      '/mesh?cluster=cluster42',
    );
    expect(
      await screen.findByText('1 of 100 clusters shown'),
    ).toBeInTheDocument();
    expect(clusterRow('cluster42')).toHaveAttribute('aria-current', 'true');
    await userEvent.click(
      screen.getByRole('checkbox', {
        name: 'Only clusters that need attention',
      }),
    );
    expect(screen.getByText('100 of 100 clusters shown')).toBeInTheDocument();
  });
});
