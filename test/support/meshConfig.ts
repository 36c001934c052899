import path from 'node:path';
import { ConfigReader } from '@backstage/config';
import {
  testbedMeshConfig,
  testbedSecretValues,
} from '../testbed/src/appConfig';
import { testbed } from './testbed';

/**
 * The app-config a platform team would write for the test bed: every cluster with its token and
 * CA, the charts from the Go module cache, the Tailscale stand-in with its OAuth client.
 */
export function testbedAppConfig(clusterNames?: string[]) {
  return testbedMeshConfig(testbed(), clusterNames);
}

export const testbedConfig = (clusterNames?: string[]) =>
  new ConfigReader(testbedAppConfig(clusterNames));

/** Every secret value of the test bed config, for scans of logs and outputs. */
export function testbedSecrets(): string[] {
  return testbedSecretValues(testbedAppConfig());
}

/** Istio's released charts as users install them (test/fixtures/istio-release-charts). */
export const RELEASE_CHARTS = ['istio-1.28.10', 'istio-1.29.6'] as const;

/** `mesh.charts` for one release of RELEASE_CHARTS. */
export function releaseCharts(release: (typeof RELEASE_CHARTS)[number]) {
  const dir = path.join(
    __dirname,
    '..',
    'fixtures',
    'istio-release-charts',
    release,
  );
  return {
    istioBase: { chart: path.join(dir, 'base') },
    istiod: { chart: path.join(dir, 'istio-control', 'istio-discovery') },
    gateway: { chart: path.join(dir, 'gateway') },
  };
}
