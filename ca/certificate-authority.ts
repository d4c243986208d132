// The running CA: loads (or creates, once) the root of trust, keeps the trust
// bundle distributed, rotates a self-signed root on schedule, and issues the
// control plane's own serving certificate.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../lib/logger.js';
import { rootCertExpiry } from '../lib/monitoring.js';
import { CaSecretStore, type StoredRoot } from './ca-secret-store.js';
import { signLeafCertificate, type SigningCa } from './pki/workload-certificate.js';
import { defaultRotationPolicy, rotateRoot, signingCa, trustBundlePem, type RotationPolicy } from './root-of-trust.js';
import { TrustBundleDistributor } from './trust-bundle-distributor.js';

export interface CaSettings {
  namespace: string;
  trustDomain: string;
  mode: 'SelfSigned' | 'Plugged';
  /** The MeshInstallation this CA belongs to; its Secret is labelled for uninstall. */
  installation?: string;
  pluggedSecretName?: string;
  rotation?: RotationPolicy;
  rotationCheckMs?: number;
}

export class CertificateAuthority {
  private stored!: StoredRoot;
  private signer!: SigningCa;
  private distributor: TrustBundleDistributor | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly settings: CaSettings,
    private readonly store: CaSecretStore,
    private readonly log: Logger,
  ) {}

  static async start(
    config: KubeConfig,
    settings: CaSettings,
    log: Logger,
    options: { distributeTrustBundle?: boolean } = {},
  ): Promise<CertificateAuthority> {
    const store = new CaSecretStore(config.makeApiClient(CoreV1Api), settings.namespace, settings.installation);
    const ca = new CertificateAuthority(settings, store, log);
    const stored =
      settings.mode === 'Plugged'
        ? await store.loadPlugged(settings.pluggedSecretName ?? 'cacerts')
        : await store.loadOrCreateSelfSigned(settings.trustDomain);
    ca.adopt(stored);
    log.info(
      { mode: settings.mode, roots: stored.root.trustedRoots.length, expires: new X509Certificate(stored.root.signer.certPem).validTo },
      'CA ready',
    );
    if (options.distributeTrustBundle !== false) {
      ca.distributor = new TrustBundleDistributor(config, ca.trustBundle(), log.child({ component: 'trust-bundle' }));
      ca.distributor.start();
    }
    ca.timer = setInterval(() => void ca.checkRotation(), settings.rotationCheckMs ?? 3_600_000);
    ca.timer.unref();
    return ca;
  }

  signingCa(): SigningCa {
    return this.signer;
  }

  trustBundle(): string {
    return trustBundlePem(this.stored.root);
  }

  /** A serving certificate for the control plane's own names, signed by this CA. */
  servingCertificate(dnsNames: string[], ttlSeconds = 30 * 86_400): { certChainPem: string; privateKeyPem: string } {
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const chain = signLeafCertificate(
      { spkiDer: keys.publicKey.export({ type: 'spki', format: 'der' }), dnsNames, ttlSeconds },
      this.signer,
    );
    // The root is not sent: peers trust it through the bundle.
    return {
      certChainPem: chain.slice(0, -1).join(''),
      privateKeyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  }

  async checkRotation(now = new Date()): Promise<void> {
    const { root, step } = rotateRoot(this.stored.root, now, this.settings.rotation ?? defaultRotationPolicy);
    if (step === 'none') return;
    const saved = await this.store.save(this.stored, root);
    if (!saved) {
      // Another replica rotated first: take its result.
      const reloaded = await this.store.loadOrCreateSelfSigned(this.settings.trustDomain);
      this.adopt(reloaded);
    } else {
      this.adopt(saved);
      this.log.info({ step }, 'root rotation step');
    }
    await this.distributor?.setBundle(this.trustBundle());
  }

  stop(): void {
    this.distributor?.stop();
    if (this.timer) clearInterval(this.timer);
  }

  private adopt(stored: StoredRoot): void {
    this.stored = stored;
    this.signer = signingCa(stored.root);
    rootCertExpiry.set(new Date(new X509Certificate(stored.root.signer.certPem).validTo).getTime() / 1000);
  }
}
