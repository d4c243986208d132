// The I/O of SDS: a watch on Secrets (every namespace but ServiceAccount-token and Helm
// release Secrets, as istiod's SecretsFieldSelector), keeping only what the layouts read,
// and SubjectAccessReviews for `list secrets`, cached (pilot/pkg/credentials/kube/secrets.go).
import { AuthorizationV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { listCollection } from '../../kube/watch.js';
import { clientWatchTransport, Reflector, type WatchTransport, type WatchTuning } from '../../kube/reflector.js';
import type { Logger } from '../../lib/logger.js';
import type { DiscoveryNode } from '../server/discovery-types.js';
import { CredentialSource } from './credential-source.js';
import { SecretAccessReviews, type ReviewSecretAccess } from './secret-authorization.js';
import { keptSecret, type KeptSecret } from './secret-layouts.js';

/**
 * istiod's SecretsFieldSelector: ServiceAccount tokens and Helm releases, the two kinds of
 * Secret most clusters hold in numbers and that never carry TLS credentials, are not watched.
 */
export const secretsFieldSelector = 'type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token';

const secretsPath = '/api/v1/secrets';

/** A watch transport whose objects are trimmed to KeptSecret as they arrive (BOOKMARK and ERROR events pass as they are). */
function keptSecretsTransport(inner: WatchTransport): WatchTransport {
  return {
    watch: (path, query, onEvent, done) =>
      inner.watch(
        path,
        query,
        (type, object) => onEvent(type, type === 'ERROR' || type === 'BOOKMARK' ? object : keptSecret(object as V1Secret)),
        done,
      ),
  };
}

/** `list secrets` in a namespace for `user`, asked of the API server as istiod asks it (user only, no groups). */
export function subjectAccessReviewer(config: KubeConfig): ReviewSecretAccess {
  const authorization = config.makeApiClient(AuthorizationV1Api);
  return async (user, namespace) => {
    const review = await authorization.createSubjectAccessReview({
      body: { spec: { user, resourceAttributes: { namespace, verb: 'list', resource: 'secrets' } } },
    });
    return { allowed: review.status?.allowed === true, ...(review.status?.reason ? { reason: review.status.reason } : {}) };
  };
}

export interface KubeCredentialsOptions {
  /** SubjectAccessReviews (default: the API server's, through `config`). */
  review?: ReviewSecretAccess;
  /** See CredentialSourceOptions.verifiedCertificateReferences. */
  verifiedCertificateReferences?: (node: DiscoveryNode) => ReadonlySet<string> | undefined;
  tuning?: WatchTuning;
  transport?: WatchTransport;
}

/** SDS for weftd: the Secrets watch and the access reviews behind a CredentialSource. */
export class KubeCredentials {
  readonly source: CredentialSource;
  readonly reviews: SecretAccessReviews;
  private readonly reflector: Reflector<KeptSecret>;

  constructor(config: KubeConfig, log: Logger, options: KubeCredentialsOptions = {}) {
    const query = { fieldSelector: secretsFieldSelector };
    this.reviews = new SecretAccessReviews(options.review ?? subjectAccessReviewer(config), (identity) =>
      this.source.accessChanged(identity),
    );
    this.source = new CredentialSource({
      secrets: { get: (namespace, name) => this.reflector.get(`${namespace}/${name}`) },
      access: (identity) => this.reviews.verdict(identity),
      log,
      ...(options.verifiedCertificateReferences ? { verifiedCertificateReferences: options.verifiedCertificateReferences } : {}),
    });
    this.reflector = new Reflector<KeptSecret>({
      path: secretsPath,
      query,
      // The list is trimmed as soon as it is read: the cache never holds whole Secrets.
      list: async () => {
        const list = await listCollection<V1Secret>(config, secretsPath, query);
        return { ...list, items: list.items.map(keptSecret) };
      },
      transport: keptSecretsTransport(options.transport ?? clientWatchTransport(config, options.tuning)),
      // A Secret's key material is never logged: the event names it only.
      onEvent: (event) => this.source.secretChanged(event.object.metadata.namespace, event.object.metadata.name),
      log,
      ...(options.tuning ? { tuning: options.tuning } : {}),
    });
  }

  /** Lists the Secrets and starts watching; resolves once the first list is held (or failed, and is being retried). */
  start(): Promise<void> {
    return this.reflector.start();
  }

  stop(): Promise<void> {
    return this.reflector.stop();
  }

  /** Secrets held (trimmed), for tests and debugging. */
  get secretCount(): number {
    return this.reflector.list().length;
  }
}
