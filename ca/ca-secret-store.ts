// Where the root of trust lives: a Secret in the control plane's namespace, in
// Istio's key layout. Created exactly once even when replicas race (the apiserver
// refuses the second create); updated only with the resourceVersion it was read at.
import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { checkCaSecret } from '../lib/cacerts.js';
import { isConflict, isNotFound } from '../kube/client.js';
import { pluggedRootOfTrust, selfSignedRootOfTrust, splitPems, type RootOfTrust } from './root-of-trust.js';

export const caSecretName = 'weft-ca-secret';

export interface StoredRoot {
  root: RootOfTrust;
  resourceVersion?: string;
}

const decode = (data: Record<string, string> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));

function toSecretData(root: RootOfTrust): Record<string, string> {
  return {
    'ca-cert.pem': root.signer.certPem,
    'ca-key.pem': root.signer.keyPem,
    'cert-chain.pem': [root.signer.certPem, ...root.chainAbove].join(''),
    'root-cert.pem': root.trustedRoots.join(''),
    ...(root.next
      ? { 'next-ca-cert.pem': root.next.certPem, 'next-ca-key.pem': root.next.keyPem, 'next-staged-at': root.next.stagedAt }
      : {}),
  };
}

function fromSecretData(files: Record<string, string>): RootOfTrust {
  const base = pluggedRootOfTrust(files);
  const next =
    files['next-ca-cert.pem'] && files['next-ca-key.pem'] && files['next-staged-at']
      ? { certPem: files['next-ca-cert.pem'], keyPem: files['next-ca-key.pem'], stagedAt: files['next-staged-at'] }
      : undefined;
  return { ...base, mode: 'SelfSigned', trustedRoots: splitPems(files['root-cert.pem'] ?? ''), ...(next ? { next } : {}) };
}

/**
 * The root of trust in a plugged `cacerts` Secret (Istio's layout), with the Secret's
 * resourceVersion. Throws an Error naming the Secret and the key at fault when it is
 * unusable (`checkCaSecret`); never echoes key material.
 */
export function pluggedFromSecret(secretName: string, secret: V1Secret): StoredRoot {
  const problem = checkCaSecret(secretName, secret.data);
  if (problem) throw new Error(problem);
  return {
    root: pluggedRootOfTrust(decode(secret.data)),
    ...(secret.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
  };
}

export class CaSecretStore {
  private readonly labels: Record<string, string>;

  /** `installation` labels the Secret so that uninstalling the MeshInstallation removes it. */
  constructor(
    private readonly core: CoreV1Api,
    private readonly namespace: string,
    installation?: string,
  ) {
    this.labels = {
      'app.kubernetes.io/part-of': 'weft',
      'app.kubernetes.io/component': 'ca',
      ...(installation ? { 'mesh.weft.dev/installation': installation } : {}),
    };
  }

  async loadPlugged(secretName: string): Promise<StoredRoot> {
    return pluggedFromSecret(secretName, await this.core.readNamespacedSecret({ name: secretName, namespace: this.namespace }));
  }

  /** Reads the self-signed root, creating it if no replica has yet. */
  async loadOrCreateSelfSigned(trustDomain: string): Promise<StoredRoot> {
    const existing = await this.read();
    if (existing) return existing;
    const root = selfSignedRootOfTrust(trustDomain, new Date());
    try {
      const created = await this.core.createNamespacedSecret({
        namespace: this.namespace,
        body: {
          metadata: { name: caSecretName, labels: this.labels },
          type: 'Opaque',
          stringData: toSecretData(root),
        },
      });
      return { root, ...(created.metadata?.resourceVersion ? { resourceVersion: created.metadata.resourceVersion } : {}) };
    } catch (error) {
      // Another replica created it first: its root is the root.
      if (isConflict(error)) {
        const winner = await this.read();
        if (winner) return winner;
      }
      throw error;
    }
  }

  /** Saves a rotated root if nobody changed the Secret since `stored` was read; returns undefined when someone did. */
  async save(stored: StoredRoot, root: RootOfTrust): Promise<StoredRoot | undefined> {
    try {
      const body: V1Secret = {
        metadata: {
          name: caSecretName,
          namespace: this.namespace,
          resourceVersion: stored.resourceVersion,
          labels: this.labels,
        },
        type: 'Opaque',
        stringData: toSecretData(root),
      };
      const saved = await this.core.replaceNamespacedSecret({ name: caSecretName, namespace: this.namespace, body });
      return { root, ...(saved.metadata?.resourceVersion ? { resourceVersion: saved.metadata.resourceVersion } : {}) };
    } catch (error) {
      if (isConflict(error)) return undefined;
      throw error;
    }
  }

  private async read(): Promise<StoredRoot | undefined> {
    try {
      const secret = await this.core.readNamespacedSecret({ name: caSecretName, namespace: this.namespace });
      return {
        root: fromSecretData(decode(secret.data)),
        ...(secret.metadata?.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}
