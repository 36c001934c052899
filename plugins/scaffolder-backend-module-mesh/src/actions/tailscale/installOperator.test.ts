import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigReader } from '@backstage/config';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { MeshActionDeps } from '../../service/MeshActionDeps';
import {
  createTailscaleInstallOperatorAction,
  operatorValues,
  readCrdManifests,
  remoteReadersBinding,
} from './installOperator';
import { oauthClient } from './tailscaleInputs';

describe('mesh:tailscale:install-operator pieces', () => {
  it("sets the recipe's chart values, the proxy in auth mode as the chart's string", () => {
    expect(operatorValues('id', 'secret', 'east-k8s-operator')).toEqual({
      oauth: { clientId: 'id', clientSecret: 'secret' },
      operatorConfig: { hostname: 'east-k8s-operator' },
      apiServerProxyConfig: { mode: 'true' },
    });
  });

  it("binds the impersonated group to Istio's reader role, not to cluster-admin", () => {
    expect(remoteReadersBinding()).toMatchObject({
      metadata: { name: 'tailmesh-istio-remote-readers' },
      roleRef: {
        kind: 'ClusterRole',
        name: 'istio-reader-clusterrole-istio-system',
      },
      subjects: [{ kind: 'Group', name: 'tailmesh:istio-remote-readers' }],
    });
  });

  it('takes the OAuth client from task secrets over configuration', () => {
    const config = new ConfigReader({
      mesh: {
        tailscale: {
          oauth: { clientId: 'cfg-id', clientSecret: 'cfg-secret' },
        },
      },
    });
    expect(oauthClient(config, {})).toEqual({
      clientId: 'cfg-id',
      clientSecret: 'cfg-secret',
    });
    expect(
      oauthClient(config, {
        tailscaleClientId: 'task-id',
        tailscaleClientSecret: 'task-secret',
      }),
    ).toEqual({
      clientId: 'task-id',
      clientSecret: 'task-secret',
    });
    expect(() => oauthClient(new ConfigReader({}), {})).toThrow(
      /No Tailscale OAuth client/,
    );
  });

  it('reads every CRD from a directory and ignores other documents', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'crds-'));
    try {
      await fs.writeFile(
        path.join(dir, 'b.yaml'),
        'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: b.example.com}\n',
      );
      await fs.writeFile(
        path.join(dir, 'a.yml'),
        'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a.example.com}\n---\napiVersion: v1\nkind: ConfigMap\n',
      );
      await fs.writeFile(path.join(dir, 'README.md'), '# not a manifest');
      expect((await readCrdManifests(dir)).map(c => c.metadata?.name)).toEqual([
        'a.example.com',
        'b.example.com',
      ]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('mesh:tailscale:install-operator inputs', () => {
  it('rejects an invalid hostname or a missing OAuth client before touching the cluster', async () => {
    const clusters = {
      get: jest.fn(),
      kubeConfig: jest.fn(),
      kubeconfigYaml: jest.fn(),
    };
    const deps = {
      config: new ConfigReader({}),
      clusters,
    } as unknown as MeshActionDeps;
    const action = createTailscaleInstallOperatorAction(deps);
    await expect(
      action.handler(
        createMockActionContext({
          input: { cluster: 'east', hostname: 'Not_A_Host', timeoutSeconds: 1 },
        }) as never,
      ),
    ).rejects.toThrow(/Invalid input: hostname "Not_A_Host"/);
    clusters.get.mockReturnValue({ name: 'east', url: 'https://east' });
    await expect(
      action.handler(
        createMockActionContext({
          input: { cluster: 'east', timeoutSeconds: 1 },
        }) as never,
      ),
    ).rejects.toThrow(/No OAuth client for the Tailscale operator/);
  });

  it('refuses the policy-file client as the operator client before asking the Tailscale API', async () => {
    const clusters = {
      get: jest.fn().mockReturnValue({ name: 'east', url: 'https://east' }),
      kubeConfig: jest.fn(),
      kubeconfigYaml: jest.fn(),
    };
    const deps = {
      config: new ConfigReader({
        mesh: {
          tailscale: {
            // An API no test can reach: the refusal must come before any call to it.
            apiUrl: 'http://127.0.0.1:9',
            oauth: { clientId: 'policy-id', clientSecret: 'policy-secret' },
          },
        },
      }),
      clusters,
    } as unknown as MeshActionDeps;
    const action = createTailscaleInstallOperatorAction(deps);
    await expect(
      action.handler(
        createMockActionContext({
          input: { cluster: 'east', timeoutSeconds: 1 },
          secrets: {
            tailscaleOperatorClientId: 'policy-id',
            tailscaleOperatorClientSecret: 'another-secret',
          },
        }) as never,
      ),
    ).rejects.toThrow(/OAuth client policy-id is the policy-file client/);
  });
});
