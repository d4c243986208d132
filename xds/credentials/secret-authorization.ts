// Which Secrets a proxy may read over SDS, as istiod decides it (pilot/pkg/xds/sds.go
// filterAuthorizedResources, pilot/pkg/credentials/kube/secrets.go Authorize): only with a
// verified identity, only in that identity's namespace, a key pair only when the
// identity's ServiceAccount may list Secrets there (a SubjectAccessReview, cached).
import type { SecretReference } from './resource-names.js';

/** A ServiceAccount's verdict: `pending` until its first review has answered. */
export type AccessVerdict = { state: 'allowed' } | { state: 'denied'; reason: string } | { state: 'pending' };

export interface AuthorizedReferences {
  allowed: SecretReference[];
  /** Refused, each with why (no resource is sent for them; the rest of the proxy's secrets still are). */
  denied: Array<{ reference: SecretReference; reason: string }>;
  /** Key pairs held back until the ServiceAccount's review answers. */
  pending: SecretReference[];
}

/**
 * Splits `references` for a proxy whose token proved `identity`, as istiod's four cases:
 * - `kubernetes://`: only in `identity.namespace`; a `-cacert` name (CA certificates are
 *   public) always, a key pair when `access()` says the ServiceAccount may list Secrets there;
 * - `kubernetes-gateway://`: only the references `verified` holds (a Gateway API listener's
 *   certificateRefs in the Gateway's namespace, or allowed by a ReferenceGrant).
 * `access` is called at most once, and only when a key pair needs it.
 */
export function authorizeReferences(
  references: readonly SecretReference[],
  identity: { namespace: string; serviceAccount: string },
  access: () => AccessVerdict,
  verified: (resourceName: string) => boolean = () => false,
): AuthorizedReferences {
  const result: AuthorizedReferences = { allowed: [], denied: [], pending: [] };
  let verdict: AccessVerdict | undefined;
  for (const reference of references) {
    if (reference.type === 'kubernetes-gateway') {
      if (verified(reference.resourceName)) result.allowed.push(reference);
      else
        result.denied.push({
          reference,
          reason: 'not a certificate reference of a Gateway of this proxy (a cross-namespace reference needs a ReferenceGrant)',
        });
      continue;
    }
    if (reference.namespace !== identity.namespace) {
      result.denied.push({
        reference,
        reason: `Secret namespace ${reference.namespace} is not the proxy's namespace ${identity.namespace}`,
      });
      continue;
    }
    if (reference.caOnly) {
      result.allowed.push(reference);
      continue;
    }
    verdict ??= access();
    if (verdict.state === 'allowed') result.allowed.push(reference);
    else if (verdict.state === 'pending') result.pending.push(reference);
    else result.denied.push({ reference, reason: verdict.reason });
  }
  return result;
}

/** One SubjectAccessReview: may `user` list Secrets in `namespace`? (`reason`: the API server's, when denied.) */
export type ReviewSecretAccess = (user: string, namespace: string) => Promise<{ allowed: boolean; reason?: string }>;

/** A ServiceAccount's user name, as the API server authenticates its tokens. */
export const serviceAccountUser = (namespace: string, serviceAccount: string) => `system:serviceaccount:${namespace}:${serviceAccount}`;

/**
 * SubjectAccessReviews for `list secrets` per ServiceAccount, cached as istiod's: an
 * allowed verdict for 5 minutes, a denial (or a failed review) for 1 minute. `verdict`
 * never waits: the first ask answers `pending` and starts the review; an expired verdict
 * is still answered while a new review runs. When a review settles with another verdict
 * than the one answered so far, `onSettled` is called with the identity, so the caller can
 * push again to that ServiceAccount's proxies. A review without an answer in `timeoutMs`
 * (default 10 s) counts as failed.
 */
export class SecretAccessReviews {
  private readonly verdicts = new Map<string, { verdict: AccessVerdict; expires: number }>();
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly review: ReviewSecretAccess,
    private readonly onSettled: (identity: { namespace: string; serviceAccount: string }) => void,
    private readonly options: { allowedMs?: number; deniedMs?: number; timeoutMs?: number; now?: () => number } = {},
  ) {}

  verdict(identity: { namespace: string; serviceAccount: string }): AccessVerdict {
    const user = serviceAccountUser(identity.namespace, identity.serviceAccount);
    const now = (this.options.now ?? Date.now)();
    const cached = this.verdicts.get(user);
    if (!cached || cached.expires <= now) this.start(user, identity);
    return cached?.verdict ?? { state: 'pending' };
  }

  /** ServiceAccounts with a verdict held (expired ones are dropped as new reviews replace them). */
  get size(): number {
    return this.verdicts.size;
  }

  private start(user: string, identity: { namespace: string; serviceAccount: string }): void {
    if (this.inFlight.has(user)) return;
    this.inFlight.add(user);
    const settle = (verdict: AccessVerdict) => {
      this.inFlight.delete(user);
      const before = this.verdicts.get(user)?.verdict;
      const ttl = verdict.state === 'allowed' ? (this.options.allowedMs ?? 5 * 60_000) : (this.options.deniedMs ?? 60_000);
      this.verdicts.set(user, { verdict, expires: (this.options.now ?? Date.now)() + ttl });
      this.sweep();
      if (before?.state !== verdict.state) this.onSettled(identity);
    };
    // A review that never answers would leave the ServiceAccount pending for good: it fails after `timeoutMs`.
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      timer.unref();
    });
    Promise.race([Promise.resolve().then(() => this.review(user, identity.namespace)), timeout])
      .finally(() => clearTimeout(timer))
      .then(
        (answer) =>
          settle(
            answer.allowed
              ? { state: 'allowed' }
              : {
                  state: 'denied',
                  reason: `${identity.namespace}/${identity.serviceAccount} is not authorized to list secrets in ${identity.namespace}${answer.reason ? `: ${answer.reason}` : ''}`,
                },
          ),
        (error: unknown) =>
          settle({
            state: 'denied',
            reason: `SubjectAccessReview for ${identity.namespace}/${identity.serviceAccount} failed: ${error instanceof Error ? error.message : String(error)}`,
          }),
      );
  }

  /** Drops verdicts expired long ago (a ServiceAccount not seen since), keeping the map to the live ones. */
  private sweep(): void {
    if (this.verdicts.size < 1_000) return;
    const now = (this.options.now ?? Date.now)();
    for (const [user, entry] of this.verdicts) if (entry.expires <= now) this.verdicts.delete(user);
  }
}
