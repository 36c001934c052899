import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { BackstageCredentials } from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import { PolicyQueryUser } from '@backstage/plugin-permission-node';
import scaffolderPlugin from '@backstage/plugin-scaffolder-backend';
import scaffolderModuleMesh from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import request from 'supertest';
import { testbedAppConfig } from '../../support/meshConfig';
import { joinValues, template } from '../../support/productBackend';
import { kubeConfig } from '../../support/testbed';
// The local product's policy (the README shows the same): mesh:* actions for mesh-admins only.
// Not a package: the test reads the product's own file.
import {
  MESH_ADMINS_GROUP,
  MeshAdminsPolicy,
} from '../../../packages/backend/src/modules/meshAdminsPolicy';

// Only mesh admins change the mesh (issue 16, point 8): the product's policy, and the real
// scaffolder, which asks for actionExecutePermission before every step and applies the policy's
// conditions on the action id with its own rules. The permissions service hands each request to
// the policy as the permission backend would (the test backend's mock tokens are not ones the
// real permission backend accepts on behalf of a user). A reader's join is refused before its
// first step, so nothing is written.
// cluster13 (the backend files' cluster, only read) is the target: the refused join must leave it
// exactly as it was.

const ADMIN_USER = 'user:default/mesh-admin';

/** The user the permission backend would hand the policy, for a test backend's user. */
function policyUser(
  credentials: BackstageCredentials,
): PolicyQueryUser | undefined {
  const principal = credentials.principal as {
    type: string;
    userEntityRef?: string;
  };
  if (principal.type !== 'user' || !principal.userEntityRef) return undefined;
  const ref = principal.userEntityRef;
  // What the catalog's memberOf gives the product's mesh admin.
  const ownership = ref === ADMIN_USER ? [ref, MESH_ADMINS_GROUP] : [ref];
  return {
    token: '',
    credentials,
    identity: {
      type: 'user',
      userEntityRef: ref,
      ownershipEntityRefs: ownership,
    },
    info: { userEntityRef: ref, ownershipEntityRefs: ownership },
  } as PolicyQueryUser;
}

const policy = new MeshAdminsPolicy();
const permissions = mockServices.permissions.mock({
  authorize: async (requests, { credentials }) =>
    Promise.all(
      requests.map(async r => {
        const decision = await policy.handle(
          { permission: r.permission },
          policyUser(credentials),
        );
        return decision.result === AuthorizeResult.CONDITIONAL
          ? { result: AuthorizeResult.DENY }
          : decision;
      }),
    ),
  authorizeConditional: async (requests, { credentials }) =>
    Promise.all(
      requests.map(r =>
        policy.handle({ permission: r.permission }, policyUser(credentials)),
      ),
    ),
});

describe('only mesh admins run the mesh actions', () => {
  const reader = mockCredentials.user.header('user:default/guest');
  const admin = mockCredentials.user.header(ADMIN_USER);
  const core13 = kubeConfig('cluster13').makeApiClient(CoreV1Api);
  let backend: Awaited<ReturnType<typeof startTestBackend>>;

  beforeAll(async () => {
    const config = testbedAppConfig(['cluster13']);
    backend = await startTestBackend({
      features: [
        scaffolderPlugin,
        scaffolderModuleMesh,
        permissions.factory,
        mockServices.rootConfig.factory({ data: config }),
        catalogServiceMock.factory({
          entities: [template('join-cluster-to-mesh')],
        }),
      ],
    });
  });

  afterAll(async () => {
    await backend?.stop();
  });

  /** Everything of cluster13 a join would write into first, by kind and name. */
  async function cluster13Objects(): Promise<string[]> {
    const namespaces = await core13.listNamespace();
    const out = namespaces.items.map(n => `namespace ${n.metadata!.name}`);
    for (const ns of ['istio-system', 'tailscale']) {
      if (!out.includes(`namespace ${ns}`)) continue;
      const [secrets, configMaps] = await Promise.all([
        core13.listNamespacedSecret({ namespace: ns }),
        core13.listNamespacedConfigMap({ namespace: ns }),
      ]);
      out.push(
        ...secrets.items.map(s => `secret ${ns}/${s.metadata!.name}`),
        ...configMaps.items.map(c => `configmap ${ns}/${c.metadata!.name}`),
      );
    }
    return out.sort();
  }

  async function runJoin(authorization: string) {
    const created = await request(backend.server)
      .post('/api/scaffolder/v2/tasks')
      .set('authorization', authorization)
      .send({
        templateRef: 'template:default/join-cluster-to-mesh',
        values: joinValues('cluster13', 'admins-mesh'),
      });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    for (let i = 0; i < 240; i++) {
      const task = await request(backend.server)
        .get(`/api/scaffolder/v2/tasks/${id}`)
        .set('authorization', authorization);
      if (['completed', 'failed', 'cancelled'].includes(task.body.status)) {
        const events = await request(backend.server)
          .get(`/api/scaffolder/v2/tasks/${id}/events`)
          .set('authorization', authorization);
        const log = (events.body as Array<{ body: { message?: string } }>)
          .map(e => e.body.message ?? '')
          .join('\n');
        return { status: task.body.status as string, log };
      }
      await sleep(250);
    }
    throw new Error(`task ${id} did not finish`);
  }

  it("refuses a reader's join before its first step, and cluster13 is left as it was", async () => {
    const before = await cluster13Objects();
    const task = await runJoin(reader);
    expect(task.status).toBe('failed');
    expect(task.log).toMatch(
      /Unauthorized action: mesh:members\. The action is not allowed/,
    );
    expect(await cluster13Objects()).toEqual(before);
  });

  it("refuses a reader's dry run too, and lets an admin's plan the join", async () => {
    const dryRun = (authorization: string) =>
      request(backend.server)
        .post('/api/scaffolder/v2/dry-run')
        .set('authorization', authorization)
        .send({
          template: template('join-cluster-to-mesh'),
          values: joinValues('cluster13', 'admins-mesh'),
          directoryContents: [],
        });
    const refused = await dryRun(reader);
    expect(JSON.stringify(refused.body)).toMatch(
      /Unauthorized action: mesh:members/,
    );
    const planned = await dryRun(admin);
    const text = JSON.stringify(planned.body);
    expect(text).not.toMatch(/Unauthorized action/);
    // mesh:members ran and read the configured clusters.
    expect(text).toMatch(/cluster13/);
  });
});
