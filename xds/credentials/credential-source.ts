// The SDS ConfigSource: type `envoy.extensions.transport_sockets.tls.v3.Secret` from
// Kubernetes Secrets, to proxies whose token proved who they are (istiod's SecretGen,
// pilot/pkg/xds/sds.go). Secrets come from a store (kube-credentials.ts watches them);
// this file does no I/O of its own. Never logs a Secret's data: only names, keys, reasons.
import { createHash } from 'node:crypto';
import type { Logger } from '../../lib/logger.js';
import { sdsCertificateErrors } from '../../lib/monitoring.js';
import { any, typeUrls } from '../protos.js';
import type { ConfigChange, ConfigSource, DiscoveryNode, EncodedResource, ResourceSet } from '../server/discovery-types.js';
import { caSuffix, parseResourceName, resourceNamesOfSecret, type SecretReference } from './resource-names.js';
import { authorizeReferences, type AccessVerdict } from './secret-authorization.js';
import { tlsCertificateSecret, validationContextSecret, type KeptSecret } from './secret-layouts.js';

export interface CredentialSourceOptions {
  /** The Secrets known, by namespace and name (only what the layouts read: secret-layouts.ts KeptSecret). */
  secrets: { get(namespace: string, name: string): KeptSecret | undefined };
  /** Whether an identity's ServiceAccount may list Secrets in its namespace (secret-authorization.ts SecretAccessReviews). */
  access: (identity: { namespace: string; serviceAccount: string }) => AccessVerdict;
  log: Logger;
  /**
   * The `kubernetes-gateway://` names a proxy's Gateway API listeners verifiably refer to (istiod's
   * MergedGateway.VerifiedCertificateReferences); without it every such name is refused.
   */
  verifiedCertificateReferences?: (node: DiscoveryNode) => ReadonlySet<string> | undefined;
  now?: () => Date;
}

/** A generated resource, or why it could not be, for one resource name of one Secret version. */
type Generated = { resource: EncodedResource } | { problem: string };

/** Distinct warnings remembered per stream (each is logged once per stream). */
const warningsPerNode = 64;

export class CredentialSource implements ConfigSource {
  private readonly listeners = new Set<(change: ConfigChange) => void>();
  /** Per Secret object (a new version is a new object), per resource name: generated once. */
  private readonly generated = new WeakMap<KeptSecret, Map<string, Generated>>();
  private readonly warned = new WeakMap<DiscoveryNode, Set<string>>();
  private readonly digests = new WeakMap<EncodedResource, string>();

  constructor(private readonly options: CredentialSourceOptions) {}

  serves(typeUrl: string): boolean {
    return typeUrl === typeUrls.secret;
  }

  /**
   * The Secrets `names` asks for that this proxy may read, each as an Envoy Secret named as
   * asked. Names that do not parse, Secrets missing or malformed and references not
   * authorized are left out (logged, once per stream or per Secret version), so one bad
   * reference never keeps the others from the proxy, as istiod. No verified identity (15010):
   * nothing. A wildcard (no names) is nothing too: SDS is always asked by name.
   */
  resources(node: DiscoveryNode, typeUrl: string, names: string[]): ResourceSet {
    if (typeUrl !== typeUrls.secret || names.length === 0) return { version: '', resources: [] };
    const identity = node.verifiedIdentity;
    if (!identity) {
      this.warnOnce(
        node,
        'unverified',
        { node: node.id },
        'proxy is not authorized to receive secrets: connect over 15012 with a ServiceAccount token',
      );
      return { version: '', resources: [] };
    }
    const references: SecretReference[] = [];
    for (const name of names) {
      const parsed = parseResourceName(name, identity.namespace);
      if ('reference' in parsed) references.push(parsed.reference);
      else if ('error' in parsed)
        this.warnOnce(node, `parse ${name}`, { node: node.id, error: parsed.error }, 'cannot parse SDS resource name');
    }
    const verified = this.options.verifiedCertificateReferences?.(node);
    const { allowed, denied } = authorizeReferences(
      references,
      identity,
      () => this.options.access(identity),
      (resourceName) => verified?.has(resourceName) ?? false,
    );
    if (denied.length > 0) {
      const shown = denied.map((d) => d.reference.resourceName);
      this.warnOnce(
        node,
        `denied ${shown.join(' ')} ${denied[0]?.reason}`,
        { node: node.id, resources: atMostThree(shown), reason: denied[0]?.reason },
        'proxy attempted to access unauthorized certificates',
      );
    }
    const resources: EncodedResource[] = [];
    for (const reference of allowed) {
      const resource = this.generate(node, reference);
      if (resource) resources.push(resource);
    }
    return { version: this.versionOf(resources), resources };
  }

  onChange(listener: (change: ConfigChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Secret `namespace/name` was added, changed or deleted: the proxies that may hold one of
   * its resource names (those of `namespace`, and those a Gateway API listener verifiably
   * points there) are told which names changed, so only streams subscribed to them push.
   */
  secretChanged(namespace: string, name: string): void {
    const names = resourceNamesOfSecret(namespace, name);
    this.emit({
      typeUrls: [typeUrls.secret],
      names: new Map([[typeUrls.secret, names]]),
      affects: (node) => {
        if (!node.verifiedIdentity) return false;
        if (node.verifiedIdentity.namespace === namespace) return true;
        const verified = this.options.verifiedCertificateReferences?.(node);
        return verified !== undefined && [...names].some((n) => verified.has(n));
      },
    });
  }

  /** An identity's access verdict changed (a review answered): its proxies are asked again for every name they hold. */
  accessChanged(identity: { namespace: string; serviceAccount: string }): void {
    this.emit({
      typeUrls: [typeUrls.secret],
      affects: (node) =>
        node.verifiedIdentity?.namespace === identity.namespace && node.verifiedIdentity.serviceAccount === identity.serviceAccount,
    });
  }

  private emit(change: ConfigChange): void {
    for (const listener of this.listeners) listener(change);
  }

  /** The Envoy Secret for one authorized reference, made once per Secret version and name. */
  private generate(node: DiscoveryNode, reference: SecretReference): EncodedResource | undefined {
    const { secrets, log } = this.options;
    // `<name>-cacert`: the companion Secret when it exists, else the key pair's own CA key (istiod's GetCaCert).
    const secret = reference.caOnly
      ? (secrets.get(reference.namespace, reference.name) ?? secrets.get(reference.namespace, reference.name.slice(0, -caSuffix.length)))
      : secrets.get(reference.namespace, reference.name);
    if (!secret) {
      const shown = reference.caOnly ? `${reference.name} (or ${reference.name.slice(0, -caSuffix.length)})` : reference.name;
      this.warnOnce(
        node,
        `missing ${reference.resourceName}`,
        { node: node.id, resource: reference.resourceName },
        `secret ${reference.namespace}/${shown} not found`,
      );
      return undefined;
    }
    let byName = this.generated.get(secret);
    if (!byName) {
      byName = new Map();
      this.generated.set(secret, byName);
    }
    let generated = byName.get(reference.resourceName);
    if (!generated) {
      const now = this.options.now?.() ?? new Date();
      const outcome = reference.caOnly
        ? validationContextSecret(reference.resourceName, secret, now)
        : tlsCertificateSecret(reference.resourceName, secret, now);
      const where = { secret: `${secret.metadata.namespace}/${secret.metadata.name}`, resource: reference.resourceName };
      if ('problem' in outcome) {
        sdsCertificateErrors.inc();
        log.warn({ ...where, problem: outcome.problem }, 'Secret cannot be served over SDS');
        generated = { problem: outcome.problem };
      } else {
        for (const warning of outcome.warnings) {
          sdsCertificateErrors.inc();
          log.warn({ ...where, problem: warning }, 'invalid certificates (served anyway, as istiod)');
        }
        generated = { resource: { name: reference.resourceName, resource: any(typeUrls.secret, outcome.secret) } };
      }
      byName.set(reference.resourceName, generated);
    }
    return 'resource' in generated ? generated.resource : undefined;
  }

  /** One warning per distinct message per stream (a proxy asking again and again is logged once). */
  private warnOnce(node: DiscoveryNode, key: string, fields: Record<string, unknown>, message: string): void {
    let seen = this.warned.get(node);
    if (!seen) {
      seen = new Set();
      this.warned.set(node, seen);
    }
    if (seen.has(key)) return;
    if (seen.size >= warningsPerNode) seen.clear();
    seen.add(key);
    sdsCertificateErrors.inc();
    this.options.log.warn(fields, message);
  }

  /** A digest of the names and bytes served: the SotW version changes exactly when the content does. */
  private versionOf(resources: EncodedResource[]): string {
    if (resources.length === 0) return '0';
    const hash = createHash('sha256');
    for (const resource of resources) {
      let digest = this.digests.get(resource);
      if (!digest) {
        digest = createHash('sha256').update(resource.resource.value).digest('base64url');
        this.digests.set(resource, digest);
      }
      hash.update(resource.name).update('\0').update(digest);
    }
    return hash.digest('base64url').slice(0, 16);
  }
}

/** Istio's atMostNJoin(…, 3): the first three, and how many more. */
function atMostThree(names: string[]): string {
  return names.length <= 3 ? names.join(', ') : `${names.slice(0, 3).join(', ')}, and ${names.length - 3} others`;
}
