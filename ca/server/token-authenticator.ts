// Who is calling: a Kubernetes ServiceAccount token (authorization: Bearer),
// checked by the apiserver with TokenReview for the CA's audience. The apiserver
// also refuses tokens of deleted ServiceAccounts and pods.
import { AuthenticationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { isNotFound } from '../../kube/client.js';

export interface Caller {
  namespace: string;
  serviceAccount: string;
}

export class AuthenticationError extends Error {}

/** The three API calls authentication makes; a KubeConfig gives the real ones. */
export interface AuthenticatorApis {
  createTokenReview: AuthenticationV1Api['createTokenReview'];
  readNamespacedServiceAccount: CoreV1Api['readNamespacedServiceAccount'];
  readNamespacedPod: CoreV1Api['readNamespacedPod'];
}

// The claims of a bound token, as TokenReview reports them (k8s.io/apiserver serviceaccount.PodNameKey, PodUIDKey).
const podNameKey = 'authentication.kubernetes.io/pod-name';
const podUidKey = 'authentication.kubernetes.io/pod-uid';

export class TokenAuthenticator {
  private readonly apis: AuthenticatorApis;

  constructor(
    source: KubeConfig | AuthenticatorApis,
    private readonly audiences: string[],
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
  }

  /**
   * The ServiceAccount a `Bearer` token proves, for the CA's audiences. Throws
   * AuthenticationError when the apiserver rejects the token, when it is not a
   * ServiceAccount's, or when its ServiceAccount, or the pod a bound token names, no
   * longer exists (or was re-created with another uid); other errors are the apiserver's.
   */
  async authenticate(authorization: string | undefined): Promise<Caller> {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match) throw new AuthenticationError('no bearer token: send a ServiceAccount token in the authorization metadata');
    const review = await this.apis.createTokenReview({ body: { spec: { token: match[1] as string, audiences: this.audiences } } });
    if (!review.status?.authenticated) {
      throw new AuthenticationError(
        `token rejected by the apiserver${review.status?.error ? `: ${review.status.error}` : ''} (expected audience ${this.audiences.join(', ')})`,
      );
    }
    const username = review.status.user?.username ?? '';
    const parts = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
    if (!parts) throw new AuthenticationError(`token belongs to ${username}, not to a ServiceAccount`);
    const caller = { namespace: parts[1] as string, serviceAccount: parts[2] as string };
    // The apiserver caches successful token authentications for 10 s (its TokenSuccessCacheTTL): a deleted
    // (or re-created) account or pod must not get a certificate meanwhile. Found by `make chaos`.
    const orNothing = (error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    };
    const account = await this.apis
      .readNamespacedServiceAccount({ name: caller.serviceAccount, namespace: caller.namespace })
      .catch(orNothing);
    if (!account || (review.status.user?.uid && account.metadata?.uid !== review.status.user.uid)) {
      throw new AuthenticationError(`ServiceAccount ${caller.namespace}/${caller.serviceAccount} no longer exists`);
    }
    const podName = review.status.user?.extra?.[podNameKey]?.[0];
    const podUid = review.status.user?.extra?.[podUidKey]?.[0];
    if (podName) {
      const pod = await this.apis.readNamespacedPod({ name: podName, namespace: caller.namespace }).catch(orNothing);
      // As the apiserver's own check (serviceaccount legacy validator): a pod past its deletion time is gone.
      const deleted = pod?.metadata?.deletionTimestamp !== undefined && new Date(pod.metadata.deletionTimestamp).getTime() <= Date.now();
      if (!pod || deleted || (podUid && pod.metadata?.uid !== podUid)) {
        throw new AuthenticationError(`pod ${caller.namespace}/${podName}, to which the token is bound, no longer exists`);
      }
    }
    return caller;
  }
}
