import { errorsOf, validateIstioObject } from './validate-istio-object.js';

const ra = (spec: Record<string, unknown>) => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'RequestAuthentication',
  metadata: { name: 'jwt' },
  spec,
});
const jwks = JSON.stringify({ keys: [{ kty: 'RSA', e: 'AQAB', n: 'abc' }] });

describe('RequestAuthentication validation', () => {
  it.each([
    ['issuer and jwksUri', { jwtRules: [{ issuer: 'issuer-foo', jwksUri: 'https://example.com/.well-known/jwks.json' }] }],
    ['issuer and inline jwks', { jwtRules: [{ issuer: 'issuer-foo', jwks }] }],
    ['jwksUri only (Istio allows the issuer to be left out then)', { jwtRules: [{ jwksUri: 'http://auth.example.com/jwks' }] }],
  ])('accepts %s', (_name, spec) => {
    expect(errorsOf(validateIstioObject(ra(spec)))).toEqual([]);
  });

  it.each([
    ['a rule without issuer or jwksUri', { jwtRules: [{ jwks }] }, 'spec.jwtRules[0].issuer', 'issuer is required'],
    [
      'jwks and jwksUri together',
      { jwtRules: [{ issuer: 'i', jwks, jwksUri: 'https://example.com/jwks' }] },
      'spec.jwtRules[0]',
      'only one of jwks and jwksUri',
    ],
    [
      'a jwksUri that is not http(s)',
      { jwtRules: [{ issuer: 'i', jwksUri: 'ftp://example.com/jwks' }] },
      'spec.jwtRules[0].jwksUri',
      'URI scheme "ftp" is not supported',
    ],
    [
      'a jwksUri that is not a URL',
      { jwtRules: [{ issuer: 'i', jwksUri: 'example.com/jwks' }] },
      'spec.jwtRules[0].jwksUri',
      'is not a URL',
    ],
    ['jwks that is not JSON', { jwtRules: [{ issuer: 'i', jwks: '{' }] }, 'spec.jwtRules[0].jwks', 'not JSON'],
    [
      'an empty header location',
      { jwtRules: [{ issuer: 'i', fromHeaders: [{ prefix: 'Bearer ' }] }] },
      'spec.jwtRules[0].fromHeaders[0].name',
      'non-empty',
    ],
    ['a zero timeout', { jwtRules: [{ issuer: 'i', timeout: '0s' }] }, 'spec.jwtRules[0].timeout', 'at least 1ms'],
  ])('refuses %s', (_name, spec, field, message) => {
    expect(errorsOf(validateIstioObject(ra(spec)))).toContainEqual({ field, message: expect.stringContaining(message) });
  });
});
