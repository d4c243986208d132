import { ApiException, type V1TokenReview, type V1Pod, type V1ServiceAccount } from '@kubernetes/client-node';
import { AuthenticationError, TokenAuthenticator, type AuthenticatorApis } from './token-authenticator.js';

const notFound = () => new ApiException(404, 'Not Found', { message: 'not found' }, {});

function authenticator(options: { pod?: V1Pod | 'gone'; account?: V1ServiceAccount | 'gone'; bound?: boolean }) {
  const review: V1TokenReview = {
    spec: { token: 't' },
    status: {
      authenticated: true,
      user: {
        username: 'system:serviceaccount:shop:cart',
        uid: 'sa-uid',
        ...(options.bound === false
          ? {}
          : { extra: { 'authentication.kubernetes.io/pod-name': ['cart-1'], 'authentication.kubernetes.io/pod-uid': ['pod-uid'] } }),
      },
    },
  };
  const apis: AuthenticatorApis = {
    createTokenReview: async () => review,
    readNamespacedServiceAccount: async () => {
      if (options.account === 'gone') throw notFound();
      return options.account ?? { metadata: { name: 'cart', uid: 'sa-uid' } };
    },
    readNamespacedPod: async () => {
      if (options.pod === 'gone') throw notFound();
      return options.pod ?? { metadata: { name: 'cart-1', uid: 'pod-uid' } };
    },
  };
  return new TokenAuthenticator(apis, ['istio-ca']);
}

describe('TokenAuthenticator', () => {
  it('returns the ServiceAccount of a token whose account and bound pod exist', async () => {
    await expect(authenticator({}).authenticate('Bearer t')).resolves.toEqual({ namespace: 'shop', serviceAccount: 'cart' });
    await expect(authenticator({ bound: false, pod: 'gone' }).authenticate('Bearer t')).resolves.toEqual({
      namespace: 'shop',
      serviceAccount: 'cart',
    });
  });

  // Found by `make chaos`: the apiserver's 10 s token cache let a deleted pod's token get certificates.
  it.each([
    ['deleted', 'gone' as const],
    ['re-created with another uid', { metadata: { name: 'cart-1', uid: 'other' } }],
    ['past its deletion time', { metadata: { name: 'cart-1', uid: 'pod-uid', deletionTimestamp: new Date(Date.now() - 1000) } }],
  ])('refuses a token bound to a pod %s', async (_name, pod) => {
    const refusal = authenticator({ pod }).authenticate('Bearer t');
    await expect(refusal).rejects.toBeInstanceOf(AuthenticationError);
    await expect(refusal).rejects.toThrow('pod shop/cart-1, to which the token is bound, no longer exists');
  });

  it('accepts a pod still within its termination grace period, as the apiserver does', async () => {
    const terminating = { metadata: { name: 'cart-1', uid: 'pod-uid', deletionTimestamp: new Date(Date.now() + 30_000) } };
    await expect(authenticator({ pod: terminating }).authenticate('Bearer t')).resolves.toEqual({
      namespace: 'shop',
      serviceAccount: 'cart',
    });
  });

  it('refuses a token of a deleted or re-created ServiceAccount, and a missing token', async () => {
    await expect(authenticator({ account: 'gone' }).authenticate('Bearer t')).rejects.toThrow('ServiceAccount shop/cart no longer exists');
    await expect(authenticator({ account: { metadata: { uid: 'new' } } }).authenticate('Bearer t')).rejects.toThrow('no longer exists');
    await expect(authenticator({}).authenticate(undefined)).rejects.toThrow('no bearer token');
  });
});
