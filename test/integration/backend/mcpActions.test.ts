import { AddressInfo } from 'node:net';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import {
  actionsRegistryServiceFactory,
  actionsServiceFactory,
} from '@backstage/backend-defaults/alpha';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import mcpActionsPlugin from '@backstage/plugin-mcp-actions-backend';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import meshPlugin from '@tailmesh/plugin-mesh-backend';
import { testbedAppConfig, testbedSecrets } from '../../support/meshConfig';
import { kubeConfig } from '../../support/testbed';
import { eventually } from '../../support/eventually';

// The mesh's answers for AI agents, asked the way an agent asks them: a real MCP client
// (@modelcontextprotocol/sdk, streamable HTTP) against a running backend with the real actions
// registry and @backstage/plugin-mcp-actions-backend. cluster13 and cluster14 belong to the
// backend's files; this one keeps to its own namespace and reads whatever else is there.
const clusters = ['cluster13', 'cluster14'];
const namespace = 'mesh-mcp-demo';
const reader = 'user:default/reader';
const outsider = 'user:default/outsider';

describe('the mesh actions over MCP', () => {
  const core13 = kubeConfig('cluster13').makeApiClient(CoreV1Api);
  const apps13 = kubeConfig('cluster13').makeApiClient(AppsV1Api);
  // The permission policy of this backend: the reader may read the mesh, the outsider may use
  // the catalog but no mesh permission.
  const asked: string[] = [];
  const permissions = mockServices.permissions.mock({
    authorize: async (requests, options) =>
      requests.map(r => {
        const principal = options?.credentials.principal as {
          type: string;
          userEntityRef?: string;
        };
        asked.push(
          `${principal.userEntityRef ?? principal.type} ${r.permission.name}`,
        );
        return {
          result:
            principal.userEntityRef === outsider &&
            r.permission.name.startsWith('mesh.')
              ? AuthorizeResult.DENY
              : AuthorizeResult.ALLOW,
        };
      }),
  });
  let backend: Awaited<ReturnType<typeof startTestBackend>>;
  const texts: string[] = [];

  async function connect(user: string): Promise<Client> {
    const { port } = backend.server.address() as AddressInfo;
    const client = new Client({
      name: 'tailmesh-test-agent',
      version: '1.0.0',
    });
    await client.connect(
      new StreamableHTTPClientTransport(
        new URL(`http://localhost:${port}/api/mcp-actions/v1`),
        {
          requestInit: {
            headers: { authorization: mockCredentials.user.header(user) },
          },
        },
      ),
    );
    return client;
  }

  async function call(
    client: Client,
    name: string,
    args: Record<string, unknown> = {},
  ) {
    const result = await client.callTool({ name, arguments: args });
    const content = result.content as Array<{ type: string; text: string }>;
    texts.push(...content.map(c => c.text));
    return {
      isError: result.isError === true,
      text: content.map(c => c.text).join('\n'),
    };
  }

  beforeAll(async () => {
    backend = await startTestBackend({
      features: [
        meshPlugin,
        mcpActionsPlugin,
        // The real actions registry and service, as createBackend() installs them, in place of
        // the test backend's mocks: calls go over HTTP with the caller's credentials.
        actionsRegistryServiceFactory,
        actionsServiceFactory,
        mockServices.rootConfig.factory({
          data: {
            ...testbedAppConfig(clusters),
            backend: { actions: { pluginSources: ['mesh'] } },
          },
        }),
        permissions.factory,
        catalogServiceMock.factory({
          entities: [
            {
              apiVersion: 'backstage.io/v1alpha1',
              kind: 'Component',
              metadata: {
                name: 'mcp-echo',
                namespace: 'default',
                annotations: { 'tailmesh.dev/service': `${namespace}/echo` },
              },
              spec: {
                type: 'service',
                owner: 'team-a',
                lifecycle: 'production',
              },
            },
          ],
        }),
      ],
    });
    await core13.createNamespace({ body: { metadata: { name: namespace } } });
    const labels = { app: 'echo' };
    await apps13.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'echo' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name: 'echo', image: 'echo:1' }] },
          },
        },
      },
    });
    await core13.createNamespacedService({
      namespace,
      body: {
        metadata: { name: 'echo' },
        spec: { selector: labels, ports: [{ port: 80 }] },
      },
    });
  });

  afterAll(async () => {
    await backend?.stop();
    await core13.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it("lists the mesh's three read-only tools to a caller who may read the mesh", async () => {
    const client = await connect(reader);
    try {
      const { tools } = await client.listTools();
      // The MCP backend names tools `<plugin id>.<action name>` (mcpActions.namespacedToolNames).
      const mesh = tools.filter(t => t.name.startsWith('mesh.'));
      expect(mesh.map(t => t.name).sort()).toEqual([
        'mesh.get-entity-mesh-reachability',
        'mesh.get-mesh-audit',
        'mesh.get-mesh-status',
      ]);
      for (const t of mesh) {
        expect(t.annotations).toMatchObject({
          readOnlyHint: true,
          destructiveHint: false,
        });
        expect(t.description?.length).toBeGreaterThan(50);
      }
      const entity = mesh.find(
        t => t.name === 'mesh.get-entity-mesh-reachability',
      )!;
      expect(entity.inputSchema.required).toEqual(['entityRef']);
    } finally {
      await client.close();
    }
  });

  it('answers which clusters serve an entity and how each reaches it, from the real clusters', async () => {
    const client = await connect(reader);
    try {
      const answer = await eventually(
        'cluster13 serving mesh-mcp-demo/echo with 2 ready endpoints',
        async () => {
          const r = await call(client, 'mesh.get-entity-mesh-reachability', {
            entityRef: 'component:default/mcp-echo',
          });
          expect(r.isError).toBe(false);
          const out = JSON.parse(r.text) as {
            service: { namespace: string; name: string };
            clusters: Array<{
              cluster: string;
              serving: boolean;
              readyEndpoints: number;
              via: string;
              why: string[];
            }>;
          };
          return out.clusters.find(c => c.cluster === 'cluster13')
            ?.readyEndpoints === 2
            ? out
            : undefined;
        },
        { timeoutMs: 60_000 },
      );
      expect(answer.service).toEqual({ namespace, name: 'echo' });
      const [c13, c14] = answer.clusters;
      expect(c13).toMatchObject({
        cluster: 'cluster13',
        serving: true,
        via: 'local',
        why: [],
      });
      expect(c14).toMatchObject({ cluster: 'cluster14', serving: false });
      // cluster14 reaches it through cluster13's gateway only if the watch cache test left both
      // joined; either way the answer says why or how, consistent with the mesh status.
      const status = JSON.parse(
        (await call(client, 'mesh.get-mesh-status')).text,
      ) as {
        clusters: Array<{
          name: string;
          member: boolean;
          remoteSecretsFor: string[];
        }>;
      };
      const member14 = status.clusters.find(c => c.name === 'cluster14')!;
      if (c14.via === 'unreachable') {
        expect(c14.why[0]).toMatch(/^cluster14 has no endpoint of the Service/);
        if (!member14.member)
          expect(c14.why[0]).toContain('cluster14 is not a mesh member');
        else if (!member14.remoteSecretsFor.includes('cluster13'))
          expect(c14.why).toContain(
            "cluster14 holds no remote secret for cluster13, so its istiod does not know cluster13's endpoints; run mesh:istio:create-remote-secrets for cluster14 and cluster13 (or the Join template for cluster14 again)",
          );
      } else {
        expect(c14).toMatchObject({ via: 'gateway', why: [] });
      }

      const audit = JSON.parse(
        (await call(client, 'mesh.get-mesh-audit')).text,
      ) as {
        counts: Record<string, number>;
        findings: Array<{ fix: string }>;
      };
      expect(Object.keys(audit.counts).sort()).toEqual([
        'error',
        'info',
        'warning',
      ]);
      for (const f of audit.findings) expect(f.fix.length).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });

  it('asks the catalog as the caller: an entity that does not exist, or a malformed one, is an error without data', async () => {
    const client = await connect(reader);
    try {
      const missing = await call(client, 'mesh.get-entity-mesh-reachability', {
        entityRef: 'component:default/not-there',
      });
      expect(missing.isError).toBe(true);
      expect(missing.text).toContain(
        'Entity component:default/not-there not found',
      );
      const malformed = await call(
        client,
        'mesh.get-entity-mesh-reachability',
        {
          entityRef: 'component:',
        },
      );
      expect(malformed.isError).toBe(true);
      expect(malformed.text).toContain('Invalid entityRef');
    } finally {
      await client.close();
    }
  });

  it('neither lists nor runs a mesh tool for a caller the permission policy denies', async () => {
    const client = await connect(outsider);
    try {
      const { tools } = await client.listTools();
      expect(tools.filter(t => /mesh/.test(t.name))).toEqual([]);
      for (const name of ['mesh.get-mesh-status', 'mesh.get-mesh-audit']) {
        const r = await call(client, name);
        expect(r.isError).toBe(true);
        expect(r.text).not.toContain('cluster13');
      }
      const r = await call(client, 'mesh.get-entity-mesh-reachability', {
        entityRef: 'component:default/mcp-echo',
      });
      expect(r.isError).toBe(true);
      expect(r.text).not.toContain('readyEndpoints');
    } finally {
      await client.close();
    }
    // The policy was asked about the outsider by name: the caller's own credentials reached
    // the mesh plugin through the MCP backend and the actions service.
    expect(asked).toContain(`${outsider} mesh.status.read`);
    expect(asked).toContain(`${reader} mesh.membership.read`);
  });

  it('never puts a secret in an answer', () => {
    const all = texts.join('\n');
    for (const secret of testbedSecrets()) expect(all).not.toContain(secret);
  });
});
