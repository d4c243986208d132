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

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/**/*.test.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/**/*.itest.ts'], testTimeout: 180_000 },
    { ...common, displayName: 'parity', testMatch: ['<rootDir>/**/*.parity.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/e2e/**/*.e2e.ts'], testTimeout: 300_000 },
  ],
};
