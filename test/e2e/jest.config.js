// Jest for the browser end-to-end tests: the local product (test bed, seeded demo mesh, backend
// serving the built app) is started once by globalSetup, and Debian's Chromium drives it.
const path = require('node:path');
const { projects } = require('../jest.config.js');

// The same TypeScript and ES-module transforms as the integration tests.
const { transform, transformIgnorePatterns, moduleFileExtensions } =
  projects.find(p => p.displayName === 'integration');

module.exports = {
  rootDir: path.resolve(__dirname, '..'),
  displayName: 'e2e',
  testEnvironment: 'node',
  transform,
  transformIgnorePatterns,
  moduleFileExtensions,
  testMatch: ['<rootDir>/e2e/**/*.test.ts'],
  globalSetup: '<rootDir>/e2e/support/globalSetup.ts',
  globalTeardown: '<rootDir>/e2e/support/globalTeardown.ts',
  // A join through the browser runs every action against real apiservers.
  testTimeout: 300_000,
  slowTestThreshold: 60,
  // globalTeardown stops the product; a handle a browser or client library leaves open must not
  // keep Jest (and `npm test`) waiting after the last test ("Jest did not exit one second after
  // the test run has completed" in a CI log).
  forceExit: true,
};
