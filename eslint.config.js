import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

// Import direction (docs/ARCHITECTURE.md): lower layers never reach up.
const forbid = (...folders) => ({
  'no-restricted-imports': [
    'error',
    {
      patterns: folders.map((folder) => ({
        group: [`**/${folder}/**`],
        message: `see docs/ARCHITECTURE.md: this folder may not import ${folder}/`,
      })),
    },
  ],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  eslint.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }] },
  },
  {
    files: ['api/**/*.ts', 'lib/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.itest.ts', '**/*.parity.ts'],
    rules: forbid('kube', 'cdk8s', 'operator', 'webhooks', 'ca', 'xds', 'istio', 'gatewayapi', 'cmd', 'testing', 'e2e'),
  },
  {
    files: ['kube/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.itest.ts', '**/*.parity.ts'],
    rules: forbid('cdk8s', 'operator', 'webhooks', 'ca', 'xds', 'cmd', 'testing', 'e2e'),
  },
  {
    files: ['cdk8s/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.itest.ts', '**/*.parity.ts'],
    rules: forbid('kube', 'operator', 'webhooks', 'ca', 'xds', 'cmd', 'testing', 'e2e'),
  },
  {
    files: ['operator/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.itest.ts', '**/*.parity.ts'],
    rules: forbid('webhooks', 'ca', 'xds', 'cmd', 'testing', 'e2e'),
  },
  {
    files: ['webhooks/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.itest.ts', '**/*.parity.ts'],
    rules: forbid('operator', 'ca', 'xds', 'cmd', 'testing', 'e2e'),
  },
  {
    files: ['ca/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.itest.ts', '**/*.parity.ts'],
    rules: forbid('operator', 'webhooks', 'xds', 'cmd', 'testing', 'e2e'),
  },
  {
    files: ['xds/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.itest.ts', '**/*.parity.ts'],
    rules: forbid('operator', 'webhooks', 'ca', 'cmd', 'testing', 'e2e'),
  },
  // cli/ (weft's kubectl-style commands) reads weftd over HTTP: of xds/ only the proto loading
  // (to unpack typed configs), the /debug/syncz row types, and for `weft analyze` the pure model
  // building and config analysis weftd uses for status.
  {
    files: ['cli/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.itest.ts', '**/*.parity.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...['operator', 'webhooks', 'ca', 'cmd', 'testing', 'e2e'].map((folder) => ({
              group: [`**/${folder}/**`],
              message: `see docs/ARCHITECTURE.md: this folder may not import ${folder}/`,
            })),
            {
              regex: '(^|/)xds/(?!protos\\.js$|server/discovery-types\\.js$|model/mesh-model-of\\.js$|traffic/config-analysis\\.js$)',
              message:
                'see docs/ARCHITECTURE.md: cli/ imports only xds/protos.js, xds/server/discovery-types.js, xds/model/mesh-model-of.js and xds/traffic/config-analysis.js of xds/',
            },
          ],
        },
      ],
    },
  },
  // Istio API semantics (istio/validation): pure, imports only lib/ and the Istio model types.
  {
    files: ['istio/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.itest.ts', '**/*.parity.ts'],
    rules: forbid('api', 'kube', 'cdk8s', 'operator', 'webhooks', 'ca', 'xds', 'cmd', 'testing', 'e2e'),
  },
  // The Kubernetes Gateway API as Istio config (gatewayapi/): pure, imports only lib/ and the Istio model types
  // (`istio` is left out of the list: its pattern would also match @kubernetes-models/istio).
  {
    files: ['gatewayapi/**/*.ts'],
    ignores: ['**/*.test.ts', '**/*.itest.ts', '**/*.parity.ts'],
    rules: forbid('api', 'kube', 'cdk8s', 'operator', 'webhooks', 'ca', 'xds', 'cmd', 'testing', 'e2e'),
  },
  { files: ['testing/**/*.ts'], rules: forbid('cmd', 'e2e') },
  // Tests walk synthesized JSON; typing every path would add noise, not safety.
  {
    files: ['**/*.test.ts', '**/*.itest.ts', '**/*.parity.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
