import { ConfigReader } from '@backstage/config';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { createMeshActionDeps } from '../../service/MeshActionDeps';
import { createMeshCheckTrafficAction } from './checkTraffic';

// Port 1 of loopback: nothing listens, so a check that got past its input checks fails on the
// cluster, not with the input error these tests expect.
const action = createMeshCheckTrafficAction(
  createMeshActionDeps(
    new ConfigReader({
      mesh: {
        clusters: [
          { name: 'east', url: 'https://127.0.0.1:1' },
          { name: 'west', url: 'https://127.0.0.1:1' },
        ],
        clusterRequestTimeoutSeconds: 1,
      },
    }),
  ),
);

const run = (input: Record<string, unknown>) =>
  action.handler(createMockActionContext({ input: input as never }) as never);

describe('mesh:check-traffic input checks', () => {
  it('names every bad input at once, before reading any cluster', async () => {
    await expect(
      run({
        cluster: 'East_1',
        service: 'Echo',
        namespace: 'a.b',
        port: 0,
        requests: 41,
      }),
    ).rejects.toThrow(
      /^Invalid input: cluster "East_1": .*; service "Echo": .*; namespace "a\.b": .*/,
    );
    await expect(
      run({ cluster: 'east', service: 'echo', port: 70000, requests: 41 }),
    ).rejects.toThrow(
      'Invalid input: port 70000: must be a whole number from 1 to 65535; requests 41: must be a whole number from 1 to 40',
    );
  });

  it('refuses an image reference with a shell or option in it', async () => {
    await expect(
      run({ cluster: 'east', service: 'echo', image: 'curl; rm -rf /' }),
    ).rejects.toThrow('Invalid input: image: must be an image reference');
    await expect(
      run({ cluster: 'east', service: 'echo', image: '--privileged' }),
    ).rejects.toThrow('Invalid input: image: must be an image reference');
  });

  it('refuses clusters that are not configured, or listed twice', async () => {
    await expect(run({ cluster: 'north', service: 'echo' })).rejects.toThrow(
      /Unknown cluster "north"/,
    );
    await expect(
      run({ cluster: 'east', service: 'echo', members: ['east', 'south'] }),
    ).rejects.toThrow(/Unknown cluster "south"/);
    await expect(
      run({ cluster: 'east', service: 'echo', members: ['west', 'west'] }),
    ).rejects.toThrow('Invalid input: members lists "west" more than once');
  });

  it('says which cluster it could not reach, and creates nothing', async () => {
    await expect(run({ cluster: 'east', service: 'echo' })).rejects.toThrow(
      /^Reading the namespace failed on .*east/,
    );
  });
});
