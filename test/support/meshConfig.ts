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
