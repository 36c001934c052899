// Jest for the cross-package tests. Two projects:
// - `testbed-units`: pure tests of the test bed's own code (stand-ins), no clusters needed;
// - `integration`: tests against the real local test bed, brought up once per run by globalSetup.
const transform = {
  '^.+\\.(t|j)sx?$': [
    '@swc/jest',
    { jsc: { parser: { syntax: 'typescript', tsx: true }, target: 'es2022' } },
  ],
};

module.exports = {
  rootDir: __dirname,
  projects: [
    {
      displayName: 'testbed-units',
      rootDir: __dirname,
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/testbed/src/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      rootDir: __dirname,
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/support/globalSetup.ts',
      globalTeardown: '<rootDir>/support/globalTeardown.ts',
      slowTestThreshold: 60,
    },
  ],
};
