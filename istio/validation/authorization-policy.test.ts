import { errorsOf, validateIstioObject, warningsOf } from './validate-istio-object.js';

const ap = (spec: Record<string, unknown>) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'policy' },
  spec,
});

describe('AuthorizationPolicy validation', () => {
  it.each([
    ['allow-nothing (empty spec)', {}],
    ['DENY with an empty rule', { action: 'DENY', rules: [{}] }],
    [
      'CUSTOM with a provider',
      { action: 'CUSTOM', provider: { name: 'my-ext-authz' }, rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] },
    ],
    [
      'known condition keys',
      {
        rules: [
          {
            when: [
              { key: 'request.auth.claims[iss]', values: ['https://accounts.google.com'] },
              { key: 'source.ip', values: ['10.0.0.0/8'] },
            ],
          },
        ],
      },
    ],
    ['principals without spiffe://', { rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }] }] }],
  ])('accepts %s', (_name, spec) => {
    expect(errorsOf(validateIstioObject(ap(spec)))).toEqual([]);
  });

  it.each([
    ['CUSTOM without a provider', { action: 'CUSTOM', rules: [{}] }, 'spec.provider.name', 'action CUSTOM needs provider.name'],
    ['a provider on ALLOW', { provider: { name: 'ext' }, rules: [{}] }, 'spec.provider', 'provider is only for action CUSTOM, found ALLOW'],
    ['a provider on DENY', { action: 'DENY', provider: { name: 'ext' }, rules: [{}] }, 'spec.provider', 'found DENY'],
    ['DENY without rules', { action: 'DENY' }, 'spec.rules', 'action DENY without rules'],
    [
      'a principal with spiffe://',
      { rules: [{ from: [{ source: { principals: ['spiffe://cluster.local/ns/default/sa/sleep'] } }] }] },
      'spec.rules[0].from[0].source.principals[0]',
      'must not start with spiffe://',
    ],
    [
      'a namespace with spiffe://',
      { rules: [{ from: [{ source: { namespaces: ['spiffe://cluster.local/ns/default'] } }] }] },
      'spec.rules[0].from[0].source.namespaces[0]',
      'is not a namespace name',
    ],
    [
      'an unknown condition key',
      { rules: [{ when: [{ key: 'request.colour', values: ['red'] }] }] },
      'spec.rules[0].when[0].key',
      'unknown condition key "request.colour"',
    ],
    [
      'a condition without values',
      { rules: [{ when: [{ key: 'source.ip' }] }] },
      'spec.rules[0].when[0]',
      'at least one of values or notValues',
    ],
    [
      'a bad IP block',
      { rules: [{ from: [{ source: { ipBlocks: ['10.0.0.300'] } }] }] },
      'spec.rules[0].from[0].source.ipBlocks[0]',
      'not an IP address',
    ],
    ['an empty operation', { rules: [{ to: [{ operation: {} }] }] }, 'spec.rules[0].to[0].operation', 'must not be empty'],
    [
      'selector and targetRef together',
      { selector: { matchLabels: { app: 'a' } }, targetRef: { kind: 'Gateway', name: 'gw' } },
      'spec',
      'only one of selector, targetRef',
    ],
  ])('refuses %s', (_name, spec, field, message) => {
    expect(errorsOf(validateIstioObject(ap(spec)))).toContainEqual({ field, message: expect.stringContaining(message) });
  });

  it('warns, as Istio does, when a DENY rule uses only HTTP attributes', () => {
    const issues = validateIstioObject(ap({ action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] }));
    expect(errorsOf(issues)).toEqual([]);
    expect(warningsOf(issues).map((w) => w.field)).toEqual(['spec.rules[0]']);
  });
});
