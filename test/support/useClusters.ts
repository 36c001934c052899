// Jest's setupFilesAfterEnv for the integration files: before a file's first test, the test bed
// runs the controllers of exactly the clusters the file owns and parks every other cluster
// (test/support/clusterOwners.ts says why and which).
import path from 'node:path';
import { testbedRequest } from '../testbed/src/testbed';
import { clusterOwners } from './clusterOwners';
import { testbed } from './testbed';

beforeAll(async () => {
  const file = path
    .relative(path.resolve(__dirname, '..'), expect.getState().testPath ?? '')
    .split(path.sep)
    .join('/');
  const clusters = clusterOwners[file];
  if (!clusters) {
    throw new Error(
      `${file} has no entry in test/support/clusterOwners.ts: add the clusters it writes to`,
    );
  }
  await testbedRequest(testbed().stateDir, {
    command: 'use-clusters',
    clusters,
  });
}, 180_000);
