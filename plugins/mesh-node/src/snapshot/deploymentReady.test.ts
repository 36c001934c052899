import { V1Deployment } from '@kubernetes/client-node';
import {
  deploymentReady,
  deploymentReplicas,
  imageTag,
} from './readClusterSnapshot';

const deployment = (
  replicas: number,
  readyReplicas: number,
  available: boolean,
): V1Deployment => ({
  spec: {
    replicas,
    selector: {},
    template: {
      spec: {
        containers: [
          { name: 'discovery', image: 'docker.io/istio/pilot:1.28.0' },
        ],
      },
    },
  },
  status: {
    readyReplicas,
    conditions: [{ type: 'Available', status: available ? 'True' : 'False' }],
  },
});

describe('deploymentReady', () => {
  it('is ready when Available with every wanted replica ready', () => {
    expect(deploymentReady(deployment(2, 2, true))).toBe(true);
    expect(deploymentReady(deployment(2, 1, true))).toBe(false);
    expect(deploymentReady(deployment(1, 1, false))).toBe(false);
  });

  it('is not ready when scaled to zero, even though Kubernetes calls it Available', () => {
    expect(deploymentReady(deployment(0, 0, true))).toBe(false);
  });
});

describe('deploymentReplicas', () => {
  it('counts ready replicas against the wanted ones', () => {
    expect(deploymentReplicas(deployment(3, 2, true))).toEqual({
      ready: 2,
      desired: 3,
    });
    expect(deploymentReplicas(deployment(0, 0, true))).toEqual({
      ready: 0,
      desired: 0,
    });
  });

  it("takes Kubernetes' default of one replica and no status as none ready", () => {
    expect(
      deploymentReplicas({
        spec: { selector: {}, template: {} },
      }),
    ).toEqual({ ready: 0, desired: 1 });
  });
});

describe('imageTag', () => {
  it("reads the first container's image tag", () => {
    expect(imageTag(deployment(1, 1, true))).toBe('1.28.0');
  });
});
