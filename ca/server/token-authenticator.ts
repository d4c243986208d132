// Who is calling: a Kubernetes ServiceAccount token (authorization: Bearer),
// checked by the apiserver with TokenReview for the CA's audience, then checked
// against the ServiceAccount and the pod a bound token names, which must still exist.
//
// An authentication usually costs one API call or none: a TokenReview, unless the same
// token was reviewed in the last 10 s (or is being reviewed now); the ServiceAccount and
// pod are read from weftd's watch caches (a cache that has not seen the object yet, or
// holds another uid, falls back to GET). Before, every one cost three (#19: 2,000 proxies). The CA, ADS and LRS on 15012 share one authenticator,
// so a proxy's CSR and its xDS stream, made with one token, cost one review.
import { createHash } from 'node:crypto';
import { AuthenticationV1Api, CoreV1Api, KubeConfig, type V1Pod, type V1ServiceAccount, type V1UserInfo } from '@kubernetes/client-node';
import { isNotFound } from '../../kube/client.js';

export interface Caller {
  namespace: string;
  serviceAccount: string;
}

export class AuthenticationError extends Error {}

/** The three API calls authentication may make; a KubeConfig gives the real ones. */
export interface AuthenticatorApis {
  createTokenReview: AuthenticationV1Api['createTokenReview'];
  readNamespacedServiceAccount: CoreV1Api['readNamespacedServiceAccount'];
  readNamespacedPod: CoreV1Api['readNamespacedPod'];
}

/**
 * ServiceAccounts and Pods as weftd's watches last saw them (undefined: not in the cache).
 * Only an object with the token's uid, not past its deletion, is taken from here; anything
 * else is read from the API server, so the cache can make an authentication cheaper but
 * never refuse one the API server would accept (a brand-new pod) nor accept one it would
 * refuse, beyond the watch's own delivery delay. The API server checks bound tokens the
 * same way (Kubernetes pkg/controller/serviceaccount/tokengetter.go: a lister, then GET).
 */
export interface WatchedIdentities {
  serviceAccount(namespace: string, name: string): V1ServiceAccount | undefined;
  pod(namespace: string, name: string): V1Pod | undefined;
}

export interface AuthenticatorOptions {
  /** Watch caches for the existence checks; without them every check is a GET. */
  watched?: WatchedIdentities;
  /**
   * How long a successful TokenReview is reused for the same token, in ms (default and
   * most 10,000: the API server caches successful token authentications as long, its
   * TokenSuccessCacheTTL in pkg/kubeapiserver/options/authentication.go), and never past
   * the token's `exp`. Failures are never reused (its TokenFailureCacheTTL is 0). 0 turns reuse off.
   */
  reviewTtlMs?: number;
  /** TokenReviews in flight at once, the rest waiting in arrival order (default 32). */
  maxConcurrentReviews?: number;
  now?: () => number;
}

/** The longest a successful review is reused: the API server's own success cache for tokens (10 s). */
export const maxReviewTtlMs = 10_000;
/** TokenReviews in flight at once (see ReviewSlots): about what an API server answers at once without queueing. */
export const maxConcurrentTokenReviews = 32;
/** Reviews kept for reuse at most; beyond this, expired ones are swept and new ones not kept until there is room. */
const maxKeptReviews = 10_000;

// The claims of a bound token, as TokenReview reports them (k8s.io/apiserver serviceaccount.PodNameKey, PodUIDKey).
const podNameKey = 'authentication.kubernetes.io/pod-name';
const podUidKey = 'authentication.kubernetes.io/pod-uid';

/** A review given up because every caller waiting for it left before it started (no API call was made). */
export class ReviewAbandoned extends Error {
  constructor() {
    super('token review abandoned: the caller left before it started');
  }
}

/**
 * At most `limit` API calls in flight, the rest started in arrival order as earlier ones
 * finish. 1,000 proxies reconnecting at once would otherwise open 1,000 requests to the
 * API server at the same moment (in the chaos run on two cores, connections timed out and
 * every one failed "fetch failed"); istiod likewise queues them behind its API client's
 * rate limit (`--kubernetesApiQPS` 80, burst 160). A call whose callers all left before its
 * turn is skipped (ReviewAbandoned) and costs nothing.
 */
export class ReviewSlots {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(readonly limit: number) {}

  async run<T>(task: () => Promise<T>, abandoned: () => boolean = () => false): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      if (abandoned()) throw new ReviewAbandoned();
      return await task();
    } finally {
      // The slot passes to the next waiter, or frees.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }
}

/** A review being made (shared by every caller presenting the token meanwhile) or made (reused until `expiresAt`). */
type ReviewEntry =
  { kind: 'pending'; waiters: number; result: Promise<V1UserInfo> } | { kind: 'done'; user: V1UserInfo; expiresAt: number };

export class TokenAuthenticator {
  private readonly apis: AuthenticatorApis;
  private readonly watched: WatchedIdentities | undefined;
  private readonly reviewTtlMs: number;
  private readonly now: () => number;
  private readonly slots: ReviewSlots;
  /** By the token's SHA-256 (the token itself is never kept). */
  private readonly reviews = new Map<string, ReviewEntry>();

  constructor(
    source: KubeConfig | AuthenticatorApis,
    private readonly audiences: string[],
    options: AuthenticatorOptions = {},
  ) {
    if (source instanceof KubeConfig) {
      const authentication = source.makeApiClient(AuthenticationV1Api);
      const core = source.makeApiClient(CoreV1Api);
      this.apis = {
        createTokenReview: (request) => authentication.createTokenReview(request),
        readNamespacedServiceAccount: (request) => core.readNamespacedServiceAccount(request),
        readNamespacedPod: (request) => core.readNamespacedPod(request),
      };
    } else this.apis = source;
    this.watched = options.watched;
    this.reviewTtlMs = Math.min(options.reviewTtlMs ?? maxReviewTtlMs, maxReviewTtlMs);
    this.now = options.now ?? Date.now;
    this.slots = new ReviewSlots(options.maxConcurrentReviews ?? maxConcurrentTokenReviews);
  }

  /** TokenReviews waiting for a slot (see ReviewSlots). */
  get reviewsQueued(): number {
    return this.slots.queued;
  }

  /**
   * The ServiceAccount a `Bearer` token proves, for the CA's audiences. Throws
   * AuthenticationError when the apiserver rejects the token, when it is not a
   * ServiceAccount's, or when its ServiceAccount, or the pod a bound token names, no
   * longer exists (or was re-created with another uid); other errors are the apiserver's.
   * A token's successful review is shared while in flight and reused for `reviewTtlMs`; the
   * existence checks run on every call. `signal`: the caller left (a stream cancelled); rejects with its reason, and a review
   * no other caller waits for is not made.
   */
  async authenticate(authorization: string | undefined, signal?: AbortSignal): Promise<Caller> {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match) throw new AuthenticationError('no bearer token: send a ServiceAccount token in the authorization metadata');
    const user = await this.review(match[1] as string, signal);
    const username = user.username ?? '';
    const parts = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
    if (!parts) throw new AuthenticationError(`token belongs to ${username}, not to a ServiceAccount`);
    const caller = { namespace: parts[1] as string, serviceAccount: parts[2] as string };
    // The apiserver caches successful token authentications for 10 s (its TokenSuccessCacheTTL), and so do we:
    // a deleted (or re-created) account or pod must not get a certificate meanwhile. Checked on every use. Found by `make chaos`.
    if (!(await this.serviceAccountExists(caller, user.uid))) {
      throw new AuthenticationError(`ServiceAccount ${caller.namespace}/${caller.serviceAccount} no longer exists`);
    }
    const podName = user.extra?.[podNameKey]?.[0];
    if (podName && !(await this.podExists(caller.namespace, podName, user.extra?.[podUidKey]?.[0]))) {
      throw new AuthenticationError(`pod ${caller.namespace}/${podName}, to which the token is bound, no longer exists`);
    }
    return caller;
  }

  /** The user a token proves: a review made in the last `reviewTtlMs`, the one in flight, or a new one. */
  private async review(token: string, signal: AbortSignal | undefined): Promise<V1UserInfo> {
    signal?.throwIfAborted();
    const key = createHash('sha256').update(token).digest('base64');
    const now = this.now();
    let entry = this.reviews.get(key);
    if (entry?.kind === 'done') {
      if (entry.expiresAt > now) return entry.user;
      this.reviews.delete(key);
      entry = undefined;
    }
    let pending: ReviewEntry & { kind: 'pending' };
    if (entry) {
      pending = entry;
      pending.waiters++;
    } else pending = this.startReview(key, token);
    if (!signal) return pending.result;
    // The caller may leave while the review waits for a slot: once no one waits, it is not made.
    return new Promise<V1UserInfo>((resolve, reject) => {
      const leave = () => {
        pending.waiters--;
        reject(signal.reason);
      };
      signal.addEventListener('abort', leave, { once: true });
      pending.result.then(
        (user) => {
          signal.removeEventListener('abort', leave);
          resolve(user);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', leave);
          reject(error);
        },
      );
    });
  }

  /** A review, shared by every caller presenting the token until it settles; counts its first caller as waiting. */
  private startReview(key: string, token: string): ReviewEntry & { kind: 'pending' } {
    const pending: ReviewEntry & { kind: 'pending' } = { kind: 'pending', waiters: 1, result: Promise.resolve({}) };
    pending.result = this.slots.run(
      () => this.tokenReview(token),
      () => pending.waiters === 0,
    );
    this.reviews.set(key, pending);
    pending.result.then(
      (user) => this.keep(key, pending, user, token),
      () => {
        if (this.reviews.get(key) === pending) this.reviews.delete(key);
      },
    );
    return pending;
  }

  private async tokenReview(token: string): Promise<V1UserInfo> {
    const review = await this.apis.createTokenReview({ body: { spec: { token, audiences: this.audiences } } });
    if (!review.status?.authenticated) {
      throw new AuthenticationError(
        `token rejected by the apiserver${review.status?.error ? `: ${review.status.error}` : ''} (expected audience ${this.audiences.join(', ')})`,
      );
    }
    return review.status.user ?? {};
  }

  /** Keeps a successful review for reuse, for `reviewTtlMs` and never past the token's own expiry. */
  private keep(key: string, pending: ReviewEntry, user: V1UserInfo, token: string): void {
    if (this.reviews.get(key) !== pending) return;
    const now = this.now();
    const expiresAt = Math.min(now + this.reviewTtlMs, expiryOf(token) ?? Number.POSITIVE_INFINITY);
    if (expiresAt <= now || !this.roomToKeep(now)) {
      this.reviews.delete(key);
      return;
    }
    this.reviews.set(key, { kind: 'done', user, expiresAt });
  }

  private roomToKeep(now: number): boolean {
    if (this.reviews.size < maxKeptReviews) return true;
    for (const [key, entry] of this.reviews) if (entry.kind === 'done' && entry.expiresAt <= now) this.reviews.delete(key);
    return this.reviews.size < maxKeptReviews;
  }

  private async serviceAccountExists(caller: Caller, uid: string | undefined): Promise<boolean> {
    const matches = (account: V1ServiceAccount | undefined) => account !== undefined && (!uid || account.metadata?.uid === uid);
    if (matches(this.watched?.serviceAccount(caller.namespace, caller.serviceAccount))) return true;
    // Not (yet) in the watch cache, or another uid there: the API server decides.
    const account = await this.apis
      .readNamespacedServiceAccount({ name: caller.serviceAccount, namespace: caller.namespace })
      .catch(orNothing);
    return matches(account);
  }

  private async podExists(namespace: string, name: string, uid: string | undefined): Promise<boolean> {
    const alive = (pod: V1Pod | undefined) => {
      // As the apiserver's own check (serviceaccount legacy validator): a pod past its deletion time is gone.
      const deletion = pod?.metadata?.deletionTimestamp;
      const deleted = deletion !== undefined && new Date(deletion).getTime() <= this.now();
      return pod !== undefined && !deleted && (!uid || pod.metadata?.uid === uid);
    };
    if (alive(this.watched?.pod(namespace, name))) return true;
    return alive(await this.apis.readNamespacedPod({ name, namespace }).catch(orNothing));
  }
}

function orNothing(error: unknown): undefined {
  if (isNotFound(error)) return undefined;
  throw error;
}

/** A JWT's `exp` in ms, read only once the API server has authenticated the token; undefined when it has none. */
function expiryOf(token: string): number | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
