import { ConfigReader } from '@backstage/config';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { createMeshActionDeps } from '../../service/MeshActionDeps';
import { createIstioLeaveAction } from './leave';

const action = createIstioLeaveAction(
  createMeshActionDeps(
    new ConfigReader({
      mesh: { clusters: [{ name: 'east', url: 'https://127.0.0.1:1' }] },
    }),
  ),
);
const run = (input: Record<string, unknown>) =>
  action.handler(createMockActionContext({ input: input as never }) as never);

describe('mesh:istio:leave input checks', () => {
  it('rejects an invalid cluster name before any request', async () => {
    await expect(run({ cluster: 'East!' })).rejects.toThrow(
      /Invalid input: cluster "East!"/,
    );
  });

  it('rejects an unknown cluster', async () => {
    await expect(run({ cluster: 'west' })).rejects.toThrow(
      /Unknown cluster "west"/,
    );
  });
});
