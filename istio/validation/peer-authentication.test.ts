import { errorsOf, validateIstioObject } from './validate-istio-object.js';

const pa = (spec: Record<string, unknown>) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'PeerAuthentication',
  metadata: { name: 'default' },
  spec,
});

describe('PeerAuthentication validation', () => {
  it('accepts port-level mTLS with a selector', () => {
    expect(
      errorsOf(
        validateIstioObject(
          pa({ selector: { matchLabels: { app: 'finance' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { 8080: { mode: 'DISABLE' } } }),
        ),
      ),
    ).toEqual([]);
  });

  it.each([
    [
      'portLevelMtls without a selector',
      { mtls: { mode: 'STRICT' }, portLevelMtls: { 8080: { mode: 'DISABLE' } } },
      'spec.portLevelMtls',
      'needs a selector',
    ],
    [
      'portLevelMtls with an empty selector',
      { selector: { matchLabels: {} }, portLevelMtls: { 8080: { mode: 'DISABLE' } } },
      'spec.portLevelMtls',
      'needs a selector',
    ],
    [
      'port 0',
      { selector: { matchLabels: { app: 'a' } }, portLevelMtls: { 0: { mode: 'DISABLE' } } },
      'spec.portLevelMtls[0]',
      'port must be in range 1..65535',
    ],
    ['a wildcard selector', { selector: { matchLabels: { app: '*' } } }, 'spec.selector.matchLabels', 'wildcard'],
  ])('refuses %s', (_name, spec, field, message) => {
    expect(errorsOf(validateIstioObject(pa(spec)))).toContainEqual({ field, message: expect.stringContaining(message) });
  });
});
