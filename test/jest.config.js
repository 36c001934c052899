// Jest for the cross-package tests. Two projects:
// - `testbed-units`: pure tests of the test bed's own code (stand-ins) and of the local product's
//   launcher (test/product), no clusters needed;
// - `integration`: tests against the real local test bed, brought up once per run by globalSetup.
const swc = syntax => [
  '@swc/jest',
  { jsc: { parser: { syntax }, target: 'es2022' }, module: { type: 'commonjs', ignoreDynamic: true } },
];
const transform = {
  '\\.(ts|tsx|mts)$': swc('typescript'),
  // @kubernetes/client-node and some of its dependencies ship only as ES modules.
  '\\.(js|mjs)$': swc('ecmascript'),
};
const transformIgnorePatterns = [
  '/node_modules/(?!(@kubernetes/client-node|openid-client|oauth4webapi|jose|jsonpath-plus|rfc4648)/)',
];

module.exports = {
  rootDir: __dirname,
  // Real helm installs and waits on real apiservers take seconds, not milliseconds.
  testTimeout: 180_000,
  // The scaffolder backend started by the template tests leaves timers behind after stop();
  // without this Jest would wait on them forever once every test has finished.
  forceExit: true,
  projects: [
    {
      displayName: 'testbed-units',
      rootDir: __dirname,
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      moduleFileExtensions: ['ts', 'tsx', 'mts', 'js', 'mjs', 'cjs', 'json', 'node'],
      testMatch: [
        '<rootDir>/testbed/src/**/*.test.ts',
        '<rootDir>/product/**/*.test.ts',
      ],
    },
    {
      displayName: 'integration',
      rootDir: __dirname,
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      moduleFileExtensions: ['ts', 'tsx', 'mts', 'js', 'mjs', 'cjs', 'json', 'node'],
      testMatch: ['<rootDir>/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/support/globalSetup.ts',
      // Runs the controllers of the file's own clusters only (support/clusterOwners.ts).
      setupFilesAfterEnv: ['<rootDir>/support/useClusters.ts'],
      globalTeardown: '<rootDir>/support/globalTeardown.ts',
      slowTestThreshold: 60,
    },
  ],
};
