import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigReader } from '@backstage/config';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { createMeshActionDeps } from '../../service/MeshActionDeps';
import { createCaIssueIntermediateAction } from './issueIntermediate';

const clusters = [{ name: 'east', url: 'https://127.0.0.1:1' }];
const actionWith = (ca?: unknown) =>
  createCaIssueIntermediateAction(
    createMeshActionDeps(
      new ConfigReader({ mesh: { clusters, ...(ca ? { ca } : {}) } }),
    ),
  );
const run = (
  action: ReturnType<typeof actionWith>,
  input: Record<string, unknown>,
) =>
  action.handler(createMockActionContext({ input: input as never }) as never);

describe('mesh:ca:issue-intermediate input and configuration checks', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tailmesh-ca-unit-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const fileStore = () => ({
    store: { type: 'file', directory: path.join(dir, 'root') },
  });

  it('rejects an invalid or unknown cluster before touching the store', async () => {
    await expect(
      run(actionWith(fileStore()), { cluster: 'East_1' }),
    ).rejects.toThrow(/Invalid input: cluster "East_1"/);
    await expect(
      run(actionWith(fileStore()), { cluster: 'west' }),
    ).rejects.toThrow(/Unknown cluster "west"/);
  });

  it('rejects a renewal threshold outside 0..365 days', async () => {
    await expect(
      run(actionWith(fileStore()), { cluster: 'east', renewBeforeDays: 400 }),
    ).rejects.toThrow(
      'Invalid input: renewBeforeDays must be a whole number from 0 to 365',
    );
  });

  it('says how to configure a store when there is none', async () => {
    await expect(run(actionWith(), { cluster: 'east' })).rejects.toThrow(
      'No root CA store is configured: set mesh.ca.store in app-config',
    );
  });

  it('rejects an unknown store type, a relative directory and a store in an unknown cluster', async () => {
    await expect(
      run(actionWith({ store: { type: 'vault' } }), { cluster: 'east' }),
    ).rejects.toThrow(
      'mesh.ca.store.type must be "file" or "kubernetesSecret", not "vault"',
    );
    await expect(
      run(actionWith({ store: { type: 'file', directory: 'ca' } }), {
        cluster: 'east',
      }),
    ).rejects.toThrow('mesh.ca.store.directory must be an absolute path');
    await expect(
      run(
        actionWith({
          store: {
            type: 'kubernetesSecret',
            cluster: 'hub',
            namespace: 'tailmesh-ca',
            name: 'root',
          },
        }),
        { cluster: 'east' },
      ),
    ).rejects.toThrow(/Unknown cluster "hub"/);
    await expect(
      run(
        actionWith({
          store: {
            type: 'kubernetesSecret',
            cluster: 'east',
            namespace: 'Bad_NS',
            name: 'root',
          },
        }),
        { cluster: 'east' },
      ),
    ).rejects.toThrow(/Invalid mesh.ca.store: namespace/);
  });

  it('refuses to create a root unless asked, and says how to bootstrap', async () => {
    await expect(
      run(actionWith(fileStore()), { cluster: 'east' }),
    ).rejects.toThrow(
      `root CA directory ${path.join(dir, 'root')} holds no mesh root CA. To bootstrap a new mesh, run mesh:ca:issue-intermediate with createRootIfMissing: true`,
    );
    await expect(fs.stat(path.join(dir, 'root'))).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });
});
