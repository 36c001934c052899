import { ConfigReader } from '@backstage/config';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { MeshClusterSnapshot } from '@tailmesh/plugin-mesh-common';
import { createMeshActionDeps } from '../../service/MeshActionDeps';
import {
  MESH_MEMBERS_ACTION_ID,
  classifyClusters,
  createMeshMembersAction,
} from './listMembers';

const snapshot = (
  cluster: string,
  s: Partial<MeshClusterSnapshot> = {},
): MeshClusterSnapshot => ({
  cluster,
  remoteSecretsFor: [],
  egressFor: [],
  ...s,
});

/** What mesh:istio:install leaves on a member, as far as isMeshMember looks. */
const member = { istiod: { ready: true }, meshId: 'mesh1' };

describe('classifyClusters', () => {
  it('sorts members, readable non-members and unreadable clusters apart, by name', () => {
    expect(
      classifyClusters([
        snapshot('west', { ...member, network: 'west-net' }),
        snapshot('east', {
          ...member,
          istiod: { ready: false },
          network: 'east-net',
        }),
        snapshot('central'),
        snapshot('north', { istiod: { ready: true } }),
        snapshot('south', {
          error: { kind: 'timeout', message: 'south: did not answer in time' },
        }),
        snapshot('Zulu', { ...member, network: 'z' }),
      ]),
    ).toEqual({
      members: ['Zulu', 'east', 'west'],
      nonMembers: ['central', 'north'],
      unreachable: [
        { cluster: 'south', error: 'south: did not answer in time' },
      ],
    });
  });

  it('never counts an unreadable cluster as a member, whatever else it says', () => {
    const s = snapshot('east', {
      ...member,
      network: 'east-net',
      error: { kind: 'unauthorized', message: 'east: 401' },
    });
    expect(classifyClusters([s])).toEqual({
      members: [],
      nonMembers: [],
      unreachable: [{ cluster: 'east', error: 'east: 401' }],
    });
  });
});

describe('mesh:members', () => {
  const action = createMeshMembersAction(
    createMeshActionDeps(
      new ConfigReader({
        mesh: {
          clusters: [
            { name: 'east', url: 'https://127.0.0.1:9' },
            { name: 'west', url: 'https://127.0.0.1:9' },
          ],
        },
      }),
    ),
  );
  const run = (input: Record<string, unknown>) => {
    const output: Record<string, unknown> = {};
    const ctx = {
      ...createMockActionContext({ input: input as never }),
      output: (name: string, value: unknown) => {
        output[name] = value;
      },
    };
    return { output, done: action.handler(ctx as never) };
  };

  it('has the id of its constant and supports dry run', () => {
    expect(action.id).toBe(MESH_MEMBERS_ACTION_ID);
    expect(action.id).toBe('mesh:members');
    expect(action.supportsDryRun).toBe(true);
  });

  it('rejects an invalid or unknown exclude before reading any cluster', async () => {
    await expect(run({ exclude: 'East_1' }).done).rejects.toThrow(
      'Invalid input: exclude "East_1"',
    );
    await expect(run({ exclude: 'nowhere' }).done).rejects.toThrow(
      'Unknown cluster "nowhere"',
    );
  });

  it('fails naming the cluster it cannot read, after reporting it', async () => {
    const { output, done } = run({ exclude: 'east' });
    await expect(done).rejects.toThrow(
      /Cannot tell who the mesh members are: west could not be read \(west: cannot connect to https:\/\/127\.0\.0\.1:9/,
    );
    expect(output.members).toEqual([]);
    expect(output.unreachable).toEqual([
      {
        cluster: 'west',
        error: expect.stringMatching(/^west: cannot connect/),
      },
    ]);
  });

  it('with failOnUnreachable false, lists the unreadable clusters and succeeds', async () => {
    const { output, done } = run({ failOnUnreachable: false });
    await done;
    expect(output).toEqual({
      members: [],
      nonMembers: [],
      unreachable: [
        {
          cluster: 'east',
          error: expect.stringMatching(/^east: cannot connect/),
        },
        {
          cluster: 'west',
          error: expect.stringMatching(/^west: cannot connect/),
        },
      ],
    });
  });
});
