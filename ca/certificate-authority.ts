// The running CA: loads (or creates, once) the root of trust, keeps the trust
// bundle distributed, rotates a self-signed root on schedule, reloads a plugged
// `cacerts` Secret when it changes (as istiod reloads /etc/cacerts), and issues the
// control plane's own serving certificate.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { watchForever } from '../kube/watch.js';
import type { Logger } from '../lib/logger.js';
import { rootCertExpiry } from '../lib/monitoring.js';
import { CaSecretStore, pluggedFromSecret, type StoredRoot } from './ca-secret-store.js';
import { signLeafCertificate, type SigningCa } from './pki/workload-certificate.js';
import {
  defaultRotationPolicy,
  distributedRoots,
  fingerprintOf,
  rootBundleChange,
  rootOfChain,
  rotateRoot,
  signingCa,
  type RetainedRoot,
  type RootOfTrust,
  type RotationPolicy,
} from './root-of-trust.js';
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
  /** Plugged: how often the cacerts Secret is read again, besides the watch (ms; default 60 s). */
  pluggedResyncMs?: number;
}

const subjectOf = (pem: string): string => new X509Certificate(pem).subject.replace(/\n/g, ', ');

export class CertificateAuthority {
  /** The root of trust as last loaded: what the trust bundle is made of and what should sign. */
  private stored!: StoredRoot;
  /** What signs now: `stored.root`, or the previous plugged CA while a new one waits for its root to reach every workload. */
  private active!: RootOfTrust;
  private signer!: SigningCa;
  /**
   * Per root fingerprint, when a CA under that root may start signing (epoch ms): once
   * every certificate issued before the root entered the trust bundle has expired, every
   * workload still running has renewed since, and so trusts it.
   */
  private readonly rootSafeAt = new Map<string, number>();
  private promoteTimer: NodeJS.Timeout | undefined;
  private distributor: TrustBundleDistributor | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private stopWatch: (() => void) | undefined;
  /** Roots no longer in root-cert.pem that certificates this CA issued still chain to, by fingerprint. */
  private readonly retained = new Map<string, RetainedRoot>();
  /** Per root fingerprint, the latest notAfter (epoch ms) of a workload certificate issued under it. */
  private readonly liveUntil = new Map<string, number>();
  private readonly listeners = new Set<() => void>();
  private published = '';
  private pruneTimer: NodeJS.Timeout | undefined;
  /** Reloads run one at a time, in the order the Secret changed. */
  private reloads: Promise<void> = Promise.resolve();
  private refusedVersion: string | undefined;

  private constructor(
    private readonly settings: CaSettings,
    private readonly store: CaSecretStore,
    private readonly core: CoreV1Api,
    private readonly log: Logger,
  ) {}

  static async start(
    config: KubeConfig,
    settings: CaSettings,
    log: Logger,
    options: { distributeTrustBundle?: boolean } = {},
  ): Promise<CertificateAuthority> {
    const core = config.makeApiClient(CoreV1Api);
    const store = new CaSecretStore(core, settings.namespace, settings.installation);
    const ca = new CertificateAuthority(settings, store, core, log);
    const stored =
      settings.mode === 'Plugged'
        ? await store.loadPlugged(ca.pluggedSecretName)
        : await store.loadOrCreateSelfSigned(settings.trustDomain);
    ca.adopt(stored);
    ca.published = ca.trustBundle();
    log.info(
      { mode: settings.mode, roots: stored.root.trustedRoots.length, expires: new X509Certificate(stored.root.signer.certPem).validTo },
      'CA ready',
    );
    if (options.distributeTrustBundle !== false) {
      ca.distributor = new TrustBundleDistributor(config, ca.published, log.child({ component: 'trust-bundle' }));
      ca.distributor.start();
    }
    if (settings.mode === 'Plugged') ca.watchPlugged(config);
    const rotation = setInterval(() => void ca.checkRotation(), settings.rotationCheckMs ?? 3_600_000);
    rotation.unref();
    ca.timers.push(rotation);
    return ca;
  }

  signingCa(): SigningCa {
    return this.signer;
  }

  /**
   * The PEM roots workloads must trust now, one after another: root-cert.pem's roots,
   * then roots taken out of it that still anchor a live certificate this CA issued.
   */
  trustBundle(): string {
    const roots = distributedRoots(this.stored.root.trustedRoots, [...this.retained.values()], Date.now());
    return roots.map((pem) => pem.trim()).join('\n') + '\n';
  }

  /**
   * Calls `listener` after the signing CA or the trust bundle changed (a reloaded
   * cacerts, a rotation step, a retained root let go), so that serving certificates
   * are issued again and bundles handed out elsewhere are replaced. Returns the
   * function that removes it.
   */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Notes a workload certificate chain (leaf first) this CA just issued, so that its
   * root stays in the trust bundle until the leaf expires even if the operator takes
   * that root out of root-cert.pem first.
   */
  recordIssued(chain: string[]): void {
    const leaf = chain[0];
    if (!leaf) return;
    const root = rootOfChain(chain, [...this.stored.root.trustedRoots, ...[...this.retained.values()].map((r) => r.pem)]);
    if (!root) return;
    const fp = fingerprintOf(root);
    const notAfter = Date.parse(new X509Certificate(leaf).validTo);
    if (notAfter > (this.liveUntil.get(fp) ?? 0)) this.liveUntil.set(fp, notAfter);
    const retained = this.retained.get(fp);
    // A request that began before a reload, signed by the previous CA, extends its root's stay.
    if (retained && notAfter > retained.untilMs) {
      retained.untilMs = notAfter;
      this.schedulePrune();
    }
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
    await this.publish();
  }

  /**
   * A plugged cacerts Secret as it is now (from the watch or a read): reloaded when
   * usable, as istiod's handleCACertsFileWatch does. Refused, with an error log naming
   * the problem, while the previous CA keeps signing: a Secret that fails
   * `checkCaSecret`, or whose root-cert.pem swaps roots without an overlap.
   */
  reloadPlugged(secret: V1Secret): Promise<void> {
    this.reloads = this.reloads
      .then(() => this.reload(secret))
      .catch((error: unknown) => {
        this.log.error({ error: error instanceof Error ? error.message : String(error) }, 'cacerts reload failed');
      });
    return this.reloads;
  }

  stop(): void {
    this.distributor?.stop();
    this.stopWatch?.();
    for (const timer of this.timers) clearInterval(timer);
    if (this.pruneTimer) clearTimeout(this.pruneTimer);
    if (this.promoteTimer) clearTimeout(this.promoteTimer);
  }

  private get pluggedSecretName(): string {
    return this.settings.pluggedSecretName ?? 'cacerts';
  }

  private watchPlugged(config: KubeConfig): void {
    const name = this.pluggedSecretName;
    const changed = (secret: V1Secret) => {
      const version = secret.metadata?.resourceVersion;
      return version !== this.stored.resourceVersion && version !== this.refusedVersion;
    };
    this.stopWatch = watchForever<V1Secret>(
      config,
      `/api/v1/namespaces/${this.settings.namespace}/secrets`,
      { fieldSelector: `metadata.name=${name}` },
      (type, secret) => {
        if ((type === 'ADDED' || type === 'MODIFIED') && changed(secret)) void this.reloadPlugged(secret);
        // As istiod with its cacerts volume gone: the CA already loaded keeps signing.
        if (type === 'DELETED') this.log.warn({ secret: name }, 'cacerts Secret deleted; still signing with the CA loaded from it');
      },
      this.log,
    );
    // A watch can miss an event while it restarts; a periodic read catches up.
    const resync = setInterval(() => {
      this.core.readNamespacedSecret({ name, namespace: this.settings.namespace }).then(
        (secret) => (changed(secret) ? this.reloadPlugged(secret) : undefined),
        () => undefined,
      );
    }, this.settings.pluggedResyncMs ?? 60_000);
    resync.unref();
    this.timers.push(resync);
  }

  private async reload(secret: V1Secret): Promise<void> {
    const name = this.pluggedSecretName;
    const version = secret.metadata?.resourceVersion;
    if (version !== undefined && (version === this.stored.resourceVersion || version === this.refusedVersion)) return;
    let next: StoredRoot;
    try {
      next = pluggedFromSecret(name, secret);
    } catch (error) {
      this.refusedVersion = version;
      this.log.error(
        { secret: name, problem: (error as Error).message },
        'cacerts changed but cannot be used; still signing with the CA loaded before',
      );
      return;
    }
    const current = this.stored.root;
    const change = rootBundleChange(current.trustedRoots, next.root.trustedRoots);
    if (change === 'unrelated') {
      this.refusedVersion = version;
      this.log.error(
        { secret: name, roots: next.root.trustedRoots.map(subjectOf) },
        'cacerts root-cert.pem replaces the trusted roots with no root in common; refused, still signing with the CA loaded before. ' +
          'Rotate in two steps: first root-cert.pem with the old and the new root, then without the old one',
      );
      return;
    }
    const sameSigner =
      fingerprintOf(current.signer.certPem) === fingerprintOf(next.root.signer.certPem) &&
      current.signer.keyPem === next.root.signer.keyPem &&
      current.chainAbove.join('') === next.root.chainAbove.join('');
    this.refusedVersion = undefined;
    if (change === 'unchanged' && sameSigner) {
      this.stored = next;
      return;
    }
    const now = Date.now();
    const nextFingerprints = new Set(next.root.trustedRoots.map(fingerprintOf));
    for (const pem of current.trustedRoots) {
      const fp = fingerprintOf(pem);
      const until = this.liveUntil.get(fp) ?? 0;
      if (!nextFingerprints.has(fp) && until > now) this.retained.set(fp, { pem, untilMs: until });
    }
    for (const fp of nextFingerprints) this.retained.delete(fp);
    // A root new to the bundle is safe to sign under once every certificate issued so far has expired.
    const distributed = new Set(distributedRoots(current.trustedRoots, [...this.retained.values()], now).map(fingerprintOf));
    const issuedSoFar = Math.max(now, ...this.liveUntil.values());
    for (const fp of nextFingerprints) if (!distributed.has(fp) && !this.rootSafeAt.has(fp)) this.rootSafeAt.set(fp, issuedSoFar);
    this.stored = next;
    this.log.info(
      {
        secret: name,
        rootChange: change,
        signer: subjectOf(next.root.signer.certPem),
        roots: next.root.trustedRoots.map(subjectOf),
        retained: [...this.retained.values()].map((r) => ({ root: subjectOf(r.pem), until: new Date(r.untilMs).toISOString() })),
      },
      'cacerts reloaded',
    );
    this.schedulePrune();
    const signerChanged = this.chooseSigner(now);
    await this.publish(signerChanged);
  }

  /**
   * Signs with the loaded CA unless its root is new to the trust bundle and some
   * workload may not have that bundle yet: then the previous CA keeps signing (while
   * root-cert.pem still holds its root and it has not expired) until `rootSafeAt`.
   * pilot-agent takes a new trust bundle with each renewed certificate (the CA
   * response's last element), so a certificate from the new root shown to a peer
   * that has not renewed since would be refused; istiod avoids that only with
   * ISTIO_MULTIROOT_MESH's PCDS push, which proxyless gRPC does not get.
   * Returns whether the signer changed.
   */
  private chooseSigner(now: number): boolean {
    if (this.promoteTimer) clearTimeout(this.promoteTimer);
    this.promoteTimer = undefined;
    const wanted = this.stored.root;
    if (this.active === wanted) return false;
    const sameSigner = fingerprintOf(this.active.signer.certPem) === fingerprintOf(wanted.signer.certPem);
    const anchor = rootOfChain([wanted.signer.certPem, ...wanted.chainAbove], wanted.trustedRoots);
    const safeAt = anchor ? (this.rootSafeAt.get(fingerprintOf(anchor)) ?? 0) : 0;
    const activeAnchor = rootOfChain([this.active.signer.certPem, ...this.active.chainAbove], wanted.trustedRoots);
    const activeValid = Date.parse(new X509Certificate(this.active.signer.certPem).validTo) > now + 60_000;
    if (!sameSigner && now < safeAt && activeAnchor && activeValid) {
      this.log.info(
        { staged: subjectOf(wanted.signer.certPem), signing: subjectOf(this.active.signer.certPem), until: new Date(safeAt).toISOString() },
        'new signing CA staged: its root is new to the trust bundle; it signs once every earlier certificate has expired',
      );
      this.promoteTimer = setTimeout(
        () => {
          if (this.chooseSigner(Date.now())) void this.publish(true);
        },
        Math.min(safeAt - now + 100, 2 ** 31 - 1),
      );
      this.promoteTimer.unref();
      // The trust bundle (and chain above) may still have changed: take all but the signer.
      this.active = { ...wanted, signer: this.active.signer, chainAbove: this.active.chainAbove };
      return false;
    }
    this.adopt(this.stored);
    if (!sameSigner) this.log.info({ signer: subjectOf(wanted.signer.certPem) }, 'signing with the CA from cacerts');
    return !sameSigner;
  }

  /** Sends the bundle out when it changed, then tells the listeners (always when `signerChanged`). */
  private async publish(signerChanged = true): Promise<void> {
    const bundle = this.trustBundle();
    const bundleChanged = bundle !== this.published;
    this.published = bundle;
    if (bundleChanged) await this.distributor?.setBundle(bundle);
    if (!bundleChanged && !signerChanged) return;
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        this.log.error({ error: error instanceof Error ? error.message : String(error) }, 'CA change listener failed');
      }
    }
  }

  /** Lets go of retained roots when their last certificate expires, and sends the smaller bundle out. */
  private schedulePrune(): void {
    if (this.pruneTimer) clearTimeout(this.pruneTimer);
    this.pruneTimer = undefined;
    const next = Math.min(...[...this.retained.values()].map((r) => r.untilMs));
    if (!Number.isFinite(next)) return;
    this.pruneTimer = setTimeout(
      () => {
        const now = Date.now();
        for (const [fp, root] of this.retained) {
          if (root.untilMs <= now) {
            this.retained.delete(fp);
            this.log.info(
              { root: subjectOf(root.pem) },
              'retired root left the trust bundle: no certificate issued under it is still valid',
            );
          }
        }
        this.schedulePrune();
        void this.publish(false);
      },
      // A little after the last certificate expires: a clock a second behind still sees it expired.
      Math.min(Math.max(0, next - Date.now()) + 1_000, 2 ** 31 - 1),
    );
    this.pruneTimer.unref();
  }

  private adopt(stored: StoredRoot): void {
    this.stored = stored;
    this.active = stored.root;
    this.signer = signingCa(stored.root);
    rootCertExpiry.set(new Date(new X509Certificate(stored.root.signer.certPem).validTo).getTime() / 1000);
  }
}
