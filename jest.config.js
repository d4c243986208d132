// Unit tests (*.test.ts) run anywhere in seconds; integration tests (*.itest.ts)
// need the network sandbox and the real cluster binaries (`make test-integration`);
// the e2e journey (e2e/*.e2e.ts) runs on the embedded cluster (`make e2e`) or kind (`make e2e-kind`).
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
};

// Run in band, these projects share the process with their global setup, which names
// any handle left open after the run and fails it instead of hanging (testing/jest/global-setup.ts).
const openHandles = {
  globalSetup: '<rootDir>/testing/jest/global-setup.ts',
  globalTeardown: '<rootDir>/testing/jest/global-teardown.ts',
};

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/**/*.test.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/**/*.itest.ts'], testTimeout: 180_000, ...openHandles },
    { ...common, displayName: 'parity', testMatch: ['<rootDir>/**/*.parity.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/e2e/**/*.e2e.ts'], testTimeout: 300_000, ...openHandles },
  ],
};
