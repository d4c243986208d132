// Who is calling: a Kubernetes ServiceAccount token (authorization: Bearer),
// checked by the apiserver with TokenReview for the CA's audience. The apiserver
// also refuses tokens of deleted ServiceAccounts and pods.
import { AuthenticationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { isNotFound } from '../../kube/client.js';

export interface Caller {
  namespace: string;
  serviceAccount: string;
}

export class AuthenticationError extends Error {}

export class TokenAuthenticator {
  private readonly api: AuthenticationV1Api;
  private readonly core: CoreV1Api;

  constructor(
    config: KubeConfig,
    private readonly audiences: string[],
  ) {
    this.api = config.makeApiClient(AuthenticationV1Api);
    this.core = config.makeApiClient(CoreV1Api);
  }

  async authenticate(authorization: string | undefined): Promise<Caller> {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match) throw new AuthenticationError('no bearer token: send a ServiceAccount token in the authorization metadata');
    const review = await this.api.createTokenReview({ body: { spec: { token: match[1] as string, audiences: this.audiences } } });
    if (!review.status?.authenticated) {
      throw new AuthenticationError(
        `token rejected by the apiserver${review.status?.error ? `: ${review.status.error}` : ''} (expected audience ${this.audiences.join(', ')})`,
      );
    }
    const username = review.status.user?.username ?? '';
    const parts = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
    if (!parts) throw new AuthenticationError(`token belongs to ${username}, not to a ServiceAccount`);
    const caller = { namespace: parts[1] as string, serviceAccount: parts[2] as string };
    // The apiserver caches token reviews for a few seconds; a deleted (or re-created) account must not get a certificate meanwhile.
    const account = await this.core
      .readNamespacedServiceAccount({ name: caller.serviceAccount, namespace: caller.namespace })
      .catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
    if (!account || (review.status.user?.uid && account.metadata?.uid !== review.status.user.uid)) {
      throw new AuthenticationError(`ServiceAccount ${caller.namespace}/${caller.serviceAccount} no longer exists`);
    }
    return caller;
  }
}
