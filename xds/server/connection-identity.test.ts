import { checkConnectionIdentity, isProvenIdentity } from './connection-identity.js';

const token = { namespace: 'shop', serviceAccount: 'cart' };
const node = (namespace: string, metadata: Record<string, unknown> = {}) => ({
  id: `sidecar~10.0.0.1~cart-7d4.${namespace}~${namespace}.svc.cluster.local`,
  metadata,
});

describe('checkConnectionIdentity (Istio: pilot/pkg/xds/auth.go)', () => {
  it('accepts a node claiming its token’s namespace and ServiceAccount, or claiming nothing', () => {
    expect(() => checkConnectionIdentity(node('shop', { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'cart' }), token)).not.toThrow();
    expect(() => checkConnectionIdentity(node('shop'), token)).not.toThrow();
    expect(() => checkConnectionIdentity({ id: 'not-an-istio-node-id' }, token)).not.toThrow();
    expect(() => checkConnectionIdentity({ id: 'x', metadata: { NAMESPACE: '', SERVICE_ACCOUNT: '' } }, token)).not.toThrow();
  });

  it.each([
    ['node.metadata.NAMESPACE', node('shop', { NAMESPACE: 'bank' }), /^node\.metadata\.NAMESPACE: .*"bank".*shop\/cart/],
    ['node.id (NAMESPACE agreeing)', node('bank', { NAMESPACE: 'shop' }), /^node\.id: .*"bank"/],
    ['node.id (no metadata)', node('bank'), /^node\.id: .*"bank"/],
    [
      'node.metadata.SERVICE_ACCOUNT',
      node('shop', { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'admin' }),
      /^node\.metadata\.SERVICE_ACCOUNT: .*"admin"/,
    ],
  ])('refuses a node whose claim in %s is not its token’s, naming the field', (_, claimed, message) => {
    expect(() => checkConnectionIdentity(claimed, token)).toThrow(message);
  });

  it('reads an identity only from a result carrying both namespace and ServiceAccount', () => {
    expect(isProvenIdentity(token)).toBe(true);
    expect(isProvenIdentity(undefined)).toBe(false);
    expect(isProvenIdentity({ namespace: 'shop' })).toBe(false);
  });
});
