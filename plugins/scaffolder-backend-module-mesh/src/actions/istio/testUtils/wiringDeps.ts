import { ConfigReader, JsonObject } from '@backstage/config';
import { createMockActionContext } from '@backstage/plugin-scaffolder-node-test-utils';
import { ClusterAccess } from '@tailmesh/plugin-mesh-node';
import { Helm } from '../../../service/helm';
import { MeshActionDeps } from '../../../service/MeshActionDeps';

/**
 * Deps for input-validation tests of the Istio wiring actions: three configured clusters at an
 * address nothing listens on, and a helm that fails the test if an action ever gets to it.
 */
export function fakeWiringDeps(
  tailscale: JsonObject = { dnsName: 'tail1234.ts.net' },
) {
  const upgradeInstall = jest.fn(async () => {
    throw new Error('helm must not be called');
  });
  const deps: MeshActionDeps = {
    config: new ConfigReader({ mesh: { tailscale } }),
    clusters: new ClusterAccess(
      ['east', 'west', 'central'].map(name => ({
        name,
        url: 'https://127.0.0.1:9',
        skipTLSVerify: false,
      })),
    ),
    charts: {
      istioBase: { chart: 'base' },
      istiod: { chart: 'istiod' },
      gateway: { chart: 'gateway' },
      tailscaleOperator: { chart: 'op' },
    },
    helm: { upgradeInstall } as unknown as Helm,
  };
  return { deps, upgradeInstall };
}

/**
 * A handler context as the scaffolder builds it, for a handler that must fail before any I/O.
 * Typed `never` because the test utils bring their own copy of the scaffolder-node types.
 */
export const wiringContext = (input: JsonObject): never =>
  createMockActionContext({ input }) as never;
