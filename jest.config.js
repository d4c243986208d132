// Unit tests (*.test.ts) run anywhere in seconds; integration tests (*.itest.ts)
// need the network sandbox and the real cluster binaries (`make test-integration`).
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
  ],
};
