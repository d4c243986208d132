import { ApiException, type V1TokenReview, type V1Pod, type V1ServiceAccount } from '@kubernetes/client-node';
import {
  AuthenticationError,
  maxReviewTtlMs,
  TokenAuthenticator,
  type AuthenticatorApis,
  type AuthenticatorOptions,
  type WatchedIdentities,
} from './token-authenticator.js';

const notFound = () => new ApiException(404, 'Not Found', { message: 'not found' }, {});
const account = { metadata: { name: 'cart', uid: 'sa-uid' } };
const pod = { metadata: { name: 'cart-1', uid: 'pod-uid' } };
const shopCart = { namespace: 'shop', serviceAccount: 'cart' };

/** A JWT-shaped token (the API server is faked: only `exp` is read, after a successful review). */
const jwt = (name: string, exp?: number) =>
  `h.${Buffer.from(JSON.stringify({ sub: name, ...(exp === undefined ? {} : { exp }) })).toString('base64url')}.s`;

/** The API server, faked: what exists now, and every call made. */
class FakeApiServer {
  account: V1ServiceAccount | 'gone' = account;
  pod: V1Pod | 'gone' = pod;
  bound = true;
  /** Tokens the review rejects. */
  readonly rejected = new Set<string>();
  readonly reviews: string[] = [];
  readonly reads: string[] = [];
  /** When set, reviews wait until the test releases them. */
  held: Array<() => void> | undefined;

  readonly apis: AuthenticatorApis = {
    createTokenReview: async (request) => {
      const token = request.body.spec.token;
      this.reviews.push(token);
      if (this.held) await new Promise<void>((resolve) => this.held?.push(resolve));
      if (this.rejected.has(token)) return { spec: { token }, status: { authenticated: false, error: 'invalid bearer token' } };
      const review: V1TokenReview = {
        spec: { token },
        status: {
          authenticated: true,
          user: {
            username: 'system:serviceaccount:shop:cart',
            uid: 'sa-uid',
            ...(this.bound
              ? { extra: { 'authentication.kubernetes.io/pod-name': ['cart-1'], 'authentication.kubernetes.io/pod-uid': ['pod-uid'] } }
              : {}),
          },
        },
      };
      return review;
    },
    readNamespacedServiceAccount: async () => {
      this.reads.push('serviceaccount');
      if (this.account === 'gone') throw notFound();
      return this.account;
    },
    readNamespacedPod: async () => {
      this.reads.push('pod');
      if (this.pod === 'gone') throw notFound();
      return this.pod;
    },
  };
}

function authenticator(options: { pod?: V1Pod | 'gone'; account?: V1ServiceAccount | 'gone'; bound?: boolean }) {
  const api = new FakeApiServer();
  if (options.pod) api.pod = options.pod;
  if (options.account) api.account = options.account;
  if (options.bound === false) api.bound = false;
  return new TokenAuthenticator(api.apis, ['istio-ca']);
}

/** Lets queued promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('TokenAuthenticator', () => {
  it('returns the ServiceAccount of a token whose account and bound pod exist', async () => {
    await expect(authenticator({}).authenticate('Bearer t')).resolves.toEqual(shopCart);
    await expect(authenticator({ bound: false, pod: 'gone' }).authenticate('Bearer t')).resolves.toEqual(shopCart);
  });

  // Found by `make chaos`: the apiserver's 10 s token cache let a deleted pod's token get certificates.
  it.each([
    ['deleted', 'gone' as const],
    ['re-created with another uid', { metadata: { name: 'cart-1', uid: 'other' } }],
    ['past its deletion time', { metadata: { name: 'cart-1', uid: 'pod-uid', deletionTimestamp: new Date(Date.now() - 1000) } }],
  ])('refuses a token bound to a pod %s', async (_name, gone) => {
    const refusal = authenticator({ pod: gone }).authenticate('Bearer t');
    await expect(refusal).rejects.toBeInstanceOf(AuthenticationError);
    await expect(refusal).rejects.toThrow('pod shop/cart-1, to which the token is bound, no longer exists');
  });

  it('accepts a pod still within its termination grace period, as the apiserver does', async () => {
    const terminating = { metadata: { name: 'cart-1', uid: 'pod-uid', deletionTimestamp: new Date(Date.now() + 30_000) } };
    await expect(authenticator({ pod: terminating }).authenticate('Bearer t')).resolves.toEqual(shopCart);
  });

  it('refuses a token of a deleted or re-created ServiceAccount, and a missing token', async () => {
    await expect(authenticator({ account: 'gone' }).authenticate('Bearer t')).rejects.toThrow('ServiceAccount shop/cart no longer exists');
    await expect(authenticator({ account: { metadata: { uid: 'new' } } }).authenticate('Bearer t')).rejects.toThrow('no longer exists');
    await expect(authenticator({}).authenticate(undefined)).rejects.toThrow('no bearer token');
  });
});

describe('TokenAuthenticator: one review per token at a time, reused as long as the API server reuses it', () => {
  let now = 1_000_000;
  const clock = { now: () => now };
  const make = (api: FakeApiServer, options: AuthenticatorOptions = {}) =>
    new TokenAuthenticator(api.apis, ['istio-ca'], { ...clock, ...options });

  it('reuses a successful review for the same token for 10 s, never past the token expiry, and a new token gets its own', async () => {
    const api = new FakeApiServer();
    const auth = make(api);
    const token = jwt('a', now / 1000 + 3600);
    for (let i = 0; i < 5; i++) await expect(auth.authenticate(`Bearer ${token}`)).resolves.toEqual(shopCart);
    expect(api.reviews).toHaveLength(1);
    now += maxReviewTtlMs - 1;
    await auth.authenticate(`Bearer ${token}`);
    expect(api.reviews).toHaveLength(1);
    now += 1;
    await auth.authenticate(`Bearer ${token}`);
    expect(api.reviews).toHaveLength(2);

    // A token expiring in 2 s is reused for 2 s only: an expired token is the API server's to refuse.
    const expiring = jwt('b', now / 1000 + 2);
    await auth.authenticate(`Bearer ${expiring}`);
    now += 2_000;
    api.rejected.add(expiring);
    await expect(auth.authenticate(`Bearer ${expiring}`)).rejects.toThrow('token rejected by the apiserver: invalid bearer token');
    expect(api.reviews.filter((t) => t === expiring)).toHaveLength(2);
  });

  it('never reuses a refusal, and never reuses a review longer than 10 s whatever it is asked', async () => {
    const api = new FakeApiServer();
    const auth = make(api, { reviewTtlMs: 60_000 });
    api.rejected.add('bad');
    await expect(auth.authenticate('Bearer bad')).rejects.toBeInstanceOf(AuthenticationError);
    await expect(auth.authenticate('Bearer bad')).rejects.toBeInstanceOf(AuthenticationError);
    expect(api.reviews).toEqual(['bad', 'bad']);
    await auth.authenticate('Bearer good');
    now += maxReviewTtlMs;
    await auth.authenticate('Bearer good');
    expect(api.reviews.filter((t) => t === 'good')).toHaveLength(2);
  });

  it('checks that the ServiceAccount and the pod still exist on every use of a reused review', async () => {
    const api = new FakeApiServer();
    const auth = make(api);
    await auth.authenticate('Bearer t');
    api.pod = 'gone';
    await expect(auth.authenticate('Bearer t')).rejects.toThrow('pod shop/cart-1, to which the token is bound, no longer exists');
    api.pod = pod;
    api.account = 'gone';
    await expect(auth.authenticate('Bearer t')).rejects.toThrow('ServiceAccount shop/cart no longer exists');
    expect(api.reviews).toHaveLength(1);
  });

  it('makes one review for every caller presenting a token while it is being reviewed', async () => {
    const api = new FakeApiServer();
    api.held = [];
    const auth = make(api);
    const callers = Array.from({ length: 50 }, () => auth.authenticate('Bearer storm'));
    const other = auth.authenticate('Bearer other');
    await settle();
    expect(api.reviews).toEqual(['storm', 'other']);
    for (const release of api.held) release();
    await expect(Promise.all([...callers, other])).resolves.toHaveLength(51);
    expect(api.reviews).toEqual(['storm', 'other']);
  });

  it('refuses every caller sharing a review the API server refuses', async () => {
    const api = new FakeApiServer();
    api.held = [];
    api.rejected.add('forged');
    const auth = make(api);
    const callers = Array.from({ length: 3 }, () => auth.authenticate('Bearer forged'));
    await settle();
    for (const release of api.held) release();
    for (const caller of callers) await expect(caller).rejects.toThrow('token rejected by the apiserver');
    expect(api.reviews).toEqual(['forged']);
  });

  it('reviews at most maxConcurrentReviews tokens at once, the rest in arrival order; one whose callers left is not made', async () => {
    const api = new FakeApiServer();
    api.held = [];
    const auth = make(api, { maxConcurrentReviews: 2 });
    const leaving = new AbortController();
    const results = ['t0', 't1', 't2', 't3', 't4'].map((token) =>
      auth.authenticate(`Bearer ${token}`, token === 't2' ? leaving.signal : undefined).then(
        () => 'ok',
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      ),
    );
    await settle();
    expect(api.reviews).toEqual(['t0', 't1']);
    expect(auth.reviewsQueued).toBe(3);
    leaving.abort(new Error('the caller left'));
    // Each finished review lets the next one in.
    while (api.reviews.length < 4 || api.held.length > 0) {
      api.held.shift()?.();
      await settle();
    }
    expect(api.reviews).toEqual(['t0', 't1', 't3', 't4']);
    expect(await Promise.all(results)).toEqual(['ok', 'ok', 'the caller left', 'ok', 'ok']);
  });

  it('still makes a review some caller waits for when another caller of the same token leaves', async () => {
    const api = new FakeApiServer();
    api.held = [];
    const auth = make(api, { maxConcurrentReviews: 1 });
    const first = auth.authenticate('Bearer busy');
    const leaving = new AbortController();
    const left = auth.authenticate('Bearer shared', leaving.signal);
    const staying = auth.authenticate('Bearer shared');
    leaving.abort(new Error('gone'));
    await expect(left).rejects.toThrow('gone');
    while (api.reviews.length < 2 || api.held.length > 0) {
      api.held.shift()?.();
      await settle();
    }
    await expect(Promise.all([first, staying])).resolves.toEqual([shopCart, shopCart]);
    expect(api.reviews).toEqual(['busy', 'shared']);
  });
});

describe('TokenAuthenticator with watch caches', () => {
  const watched = (objects: { account?: V1ServiceAccount; pod?: V1Pod }): WatchedIdentities => ({
    serviceAccount: (namespace, name) => (namespace === 'shop' && name === 'cart' ? objects.account : undefined),
    pod: (namespace, name) => (namespace === 'shop' && name === 'cart-1' ? objects.pod : undefined),
  });

  it('reads nothing from the API server but the review when the watches hold the account and the pod', async () => {
    const api = new FakeApiServer();
    const auth = new TokenAuthenticator(api.apis, ['istio-ca'], { watched: watched({ account, pod }) });
    await expect(auth.authenticate('Bearer t')).resolves.toEqual(shopCart);
    expect(api.reads).toEqual([]);
  });

  it('asks the API server when the watch has not seen the object yet: a brand-new pod or account is accepted', async () => {
    const api = new FakeApiServer();
    const auth = new TokenAuthenticator(api.apis, ['istio-ca'], { watched: watched({}) });
    await expect(auth.authenticate('Bearer t')).resolves.toEqual(shopCart);
    expect(api.reads).toEqual(['serviceaccount', 'pod']);
  });

  it.each([
    ['holds another uid (re-created since)', { metadata: { name: 'cart-1', uid: 'old-uid' } }],
    ['holds it past its deletion time', { metadata: { ...pod.metadata, deletionTimestamp: new Date(Date.now() - 1000) } }],
  ])('asks the API server when the watch %s, which decides both ways', async (_name, cachedPod) => {
    const api = new FakeApiServer();
    const auth = new TokenAuthenticator(api.apis, ['istio-ca'], { watched: watched({ account, pod: cachedPod }), reviewTtlMs: 0 });
    await expect(auth.authenticate('Bearer t')).resolves.toEqual(shopCart);
    api.pod = 'gone';
    await expect(auth.authenticate('Bearer t')).rejects.toThrow('pod shop/cart-1, to which the token is bound, no longer exists');
    expect(api.reads).toEqual(['pod', 'pod']);
  });

  it('refuses a deleted ServiceAccount the watch no longer holds, even while its review is reused', async () => {
    const api = new FakeApiServer();
    const objects: { account?: V1ServiceAccount; pod?: V1Pod } = { account, pod };
    const auth = new TokenAuthenticator(api.apis, ['istio-ca'], { watched: watched(objects) });
    await auth.authenticate('Bearer t');
    delete objects.account;
    api.account = 'gone';
    await expect(auth.authenticate('Bearer t')).rejects.toThrow('ServiceAccount shop/cart no longer exists');
    expect(api.reviews).toHaveLength(1);
  });
});
