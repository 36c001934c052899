import fs from 'node:fs';
import { readState, TestbedState } from '../../testbed/src/state';
import {
  testbedMeshConfig,
  testbedSecretValues,
} from '../../testbed/src/appConfig';
import { BackstageClient } from '../../product/backstageClient';

/** Where globalSetup tells the test files about the product it started. */
export const E2E_URL_ENV = 'TAILMESH_E2E_URL';
export const E2E_API_URL_ENV = 'TAILMESH_E2E_API_URL';
export const E2E_STATE_DIR_ENV = 'TAILMESH_E2E_TESTBED_STATE_DIR';
export const E2E_BACKEND_LOG_ENV = 'TAILMESH_E2E_BACKEND_LOG';

export interface E2eProduct {
  /** The product's URL as a browser opens it. */
  url: string;
  state: TestbedState;
  /** Everything the backend printed so far. */
  backendLog: string;
  /** The mesh admin: may run the Join and Leave templates. */
  client: () => Promise<BackstageClient>;
  /** The guest: reads the mesh, and the product's policy refuses it the mesh actions. */
  guestClient: () => Promise<BackstageClient>;
  /** Every credential of the product's config: none may ever show in a page. */
  secrets: string[];
}

/** The product the e2e globalSetup started for this run. */
export function e2eProduct(): E2eProduct {
  const url = process.env[E2E_URL_ENV];
  const apiUrl = process.env[E2E_API_URL_ENV];
  const stateDir = process.env[E2E_STATE_DIR_ENV];
  const backendLog = process.env[E2E_BACKEND_LOG_ENV];
  const state = stateDir ? readState(stateDir) : undefined;
  if (!url || !apiUrl || !backendLog || !state || state.phase !== 'ready') {
    throw new Error(
      'no running product: run the browser tests through test/e2e/jest.config.js',
    );
  }
  return {
    url,
    state,
    get backendLog() {
      return fs.readFileSync(backendLog, 'utf8');
    },
    client: () => BackstageClient.signInAsMeshAdmin(apiUrl),
    guestClient: () => BackstageClient.signInAsGuest(apiUrl),
    secrets: testbedSecretValues(testbedMeshConfig(state)),
  };
}
