import { ConfigReader } from '@backstage/config';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { createMeshActionDeps } from '../../service/MeshActionDeps';
import { createVerifyAction } from './verify';

const action = createVerifyAction(
  createMeshActionDeps(
    new ConfigReader({
      mesh: {
        clusters: [{ name: 'east', url: 'https://127.0.0.1:1' }],
        tailscale: { dnsName: 'tail1234.ts.net' },
      },
    }),
  ),
);

const run = (input: Record<string, unknown>) =>
  action.handler(createMockActionContext({ input: input as never }) as never);

describe('mesh:verify input checks', () => {
  it('rejects an invalid member name before reading any cluster', async () => {
    await expect(run({ members: ['East_1'] })).rejects.toThrow(
      /Invalid input: members "East_1"/,
    );
  });

  it('rejects a member listed twice', async () => {
    await expect(run({ members: ['east', 'east'] })).rejects.toThrow(
      'Invalid input: members lists "east" more than once',
    );
  });

  it('rejects a member that is not configured', async () => {
    await expect(run({ members: ['east', 'west'] })).rejects.toThrow(
      /Unknown cluster "west"/,
    );
  });

  it('rejects an invalid tailnet', async () => {
    await expect(
      run({ members: ['east'], tailnet: 'no_dots' }),
    ).rejects.toThrow(/tailnet "no_dots"/);
  });

  it('needs the tailnet configured', async () => {
    const unconfigured = createVerifyAction(
      createMeshActionDeps(
        new ConfigReader({
          mesh: { clusters: [{ name: 'east', url: 'https://127.0.0.1:1' }] },
        }),
      ),
    );
    await expect(
      unconfigured.handler(
        createMockActionContext({ input: { members: ['east'] } }) as never,
      ),
    ).rejects.toThrow(/^No tailnet configured: set mesh.tailscale.dnsName/);
  });
});
