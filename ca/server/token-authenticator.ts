// Who is calling: a Kubernetes ServiceAccount token (authorization: Bearer),
// checked by the apiserver with TokenReview for the CA's audience. The apiserver
// also refuses tokens of deleted ServiceAccounts and pods.
import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';

export interface Caller {
  namespace: string;
  serviceAccount: string;
}

export class AuthenticationError extends Error {}

export class TokenAuthenticator {
  private readonly api: AuthenticationV1Api;

  constructor(
    config: KubeConfig,
    private readonly audiences: string[],
  ) {
    this.api = config.makeApiClient(AuthenticationV1Api);
  }

  async authenticate(authorization: string | undefined): Promise<Caller> {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!match) throw new AuthenticationError('no bearer token: send a ServiceAccount token in the authorization metadata');
    const review = await this.api.createTokenReview({ body: { spec: { token: match[1] as string, audiences: this.audiences } } });
    if (!review.status?.authenticated) {
      throw new AuthenticationError(`token rejected by the apiserver${review.status?.error ? `: ${review.status.error}` : ''} (expected audience ${this.audiences.join(', ')})`);
    }
    const username = review.status.user?.username ?? '';
    const parts = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
    if (!parts) throw new AuthenticationError(`token belongs to ${username}, not to a ServiceAccount`);
    return { namespace: parts[1] as string, serviceAccount: parts[2] as string };
  }
}
