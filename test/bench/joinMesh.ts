import { TemplateAction } from '@backstage/plugin-scaffolder-node';
import { JsonObject } from '@backstage/types';
import {
  createMeshActionDeps,
  createMeshActions,
} from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import { capturingLogger } from '../support/actions';
import { testbedConfig } from '../support/meshConfig';
import { TestbedState } from '../testbed/src/state';

const MESH_ID = 'tailmesh-bench';

/**
 * Joins the clusters one by one into one mesh with the project's own actions, in the order of
 * the "Join cluster to mesh" template (plugins/scaffolder-backend-module-mesh/templates/join-cluster-to-mesh), so /membership and the
 * routes of /services judge a real three-member mesh rather than three strangers. Runs as the
 * test bed admin, like the scaffolder would, so none of it counts as the backends' traffic.
 */
export async function joinMesh(
  state: TestbedState,
  progress: (line: string) => void,
): Promise<void> {
  const actions = new Map(
    createMeshActions(createMeshActionDeps(testbedConfig())).map(a => [
      a.id,
      a as TemplateAction<any, any, any>,
    ]),
  );
  const tailnet = state.tailnet;
  const step = async (id: string, input: JsonObject) => {
    const action = actions.get(id);
    if (!action) throw new Error(`action ${id} is not registered`);
    const logs: string[] = [];
    // The tests' runAction builds its context with Jest mocks, and the bench runs without Jest;
    // the mesh actions read only these fields of the scaffolder's context.
    const ctx = {
      input,
      logger: capturingLogger(logs),
      secrets: {},
      isDryRun: false,
      output: () => undefined,
      checkpoint: async <T>({ fn }: { fn: () => Promise<T> | T }) => fn(),
    };
    try {
      await action.handler(
        ctx as unknown as Parameters<typeof action.handler>[0],
      );
    } catch (e) {
      throw new Error(
        `${id} ${JSON.stringify(input)} failed: ${(e as Error).message}\n${logs.slice(-10).join('\n')}`,
      );
    }
  };

  const members: string[] = [];
  for (const { name: cluster, network } of state.clusters) {
    const started = Date.now();
    await step('mesh:tailscale:install-operator', { cluster });
    await step('mesh:tailscale:grant-access', {});
    await step('mesh:tailscale:configure-dns', { cluster, tailnet });
    if (members.length) {
      await step('mesh:tailscale:create-egress', {
        cluster,
        peers: members,
        tailnet,
      });
      for (const peer of members) {
        await step('mesh:tailscale:create-egress', {
          cluster: peer,
          peers: [cluster],
          tailnet,
        });
      }
    }
    await step('mesh:ca:issue-intermediate', {
      cluster,
      createRootIfMissing: members.length === 0,
    });
    await step('mesh:istio:install', { cluster, meshId: MESH_ID, network });
    if (members.length) {
      await step('mesh:istio:create-remote-secrets', {
        cluster,
        peers: members,
        tailnet,
      });
    }
    await step('mesh:istio:deploy-eastwest-gateway', {
      cluster,
      network,
      tailnet,
    });
    members.push(cluster);
    await step('mesh:istio:configure-networks', { members, tailnet });
    await step('mesh:verify', { members, tailnet });
    progress(
      `${cluster} joined mesh ${MESH_ID} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
  }
}
