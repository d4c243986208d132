import { LogLevels } from '../../lib/logger.js';
import { genericSecretData, serverCredential, tlsSecretData, type ServerCredential } from '../../testing/fixtures/gateway-credentials.js';
import { testRoot } from '../../testing/fixtures/plugged-ca.js';
import { generateRsaKeyPair } from '../../lib/x509.js';
import { typeOf, typeUrls } from '../protos.js';
import type { ConfigChange, ConfigSource, DiscoveryNode, ResourceSet } from '../server/discovery-types.js';
import { SourceByType } from '../server/source-by-type.js';
import { CredentialSource } from './credential-source.js';
import { parseResourceName, resourceNamesOfSecret, type SecretReference } from './resource-names.js';
import { authorizeReferences, SecretAccessReviews, type AccessVerdict } from './secret-authorization.js';
import { keptSecret, tlsCertificateSecret, validationContextSecret, type KeptSecret } from './secret-layouts.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const secret = (namespace: string, name: string, data: Record<string, string>, resourceVersion = '1'): KeptSecret =>
  keptSecret({ metadata: { namespace, name, resourceVersion }, data });

let credential: ServerCredential;
beforeAll(() => {
  credential = serverCredential(['bookinfo.example.com']);
});

describe('SDS resource names (Istio: pilot/pkg/model/credentials)', () => {
  it("reads kubernetes://name in the proxy's namespace and kubernetes://ns/name in its own", () => {
    expect(parseResourceName('kubernetes://cred', 'gw')).toEqual({
      reference: { type: 'kubernetes', name: 'cred', namespace: 'gw', resourceName: 'kubernetes://cred', caOnly: false },
    });
    expect(parseResourceName('kubernetes://other/cred-cacert', 'gw')).toEqual({
      reference: {
        type: 'kubernetes',
        name: 'cred-cacert',
        namespace: 'other',
        resourceName: 'kubernetes://other/cred-cacert',
        caOnly: true,
      },
    });
    expect(parseResourceName('kubernetes-gateway://ns/cred', 'gw')).toMatchObject({
      reference: { type: 'kubernetes-gateway', namespace: 'ns', name: 'cred' },
    });
  });

  it('refuses names without a namespace where one is required, and unknown schemes, naming the resource', () => {
    expect(parseResourceName('kubernetes-gateway://cred', 'gw')).toEqual({
      error: 'invalid resource name "kubernetes-gateway://cred": expected namespace and name',
    });
    expect(parseResourceName('kubernetes-gateway:///cred', 'gw')).toEqual({
      error: 'invalid resource name "kubernetes-gateway:///cred": expected namespace',
    });
    expect(parseResourceName('vault://cred', 'gw')).toEqual({
      error: 'unknown resource type: "vault://cred" (expected kubernetes:// or kubernetes-gateway://)',
    });
    expect(parseResourceName('configmap://ns/ca', 'gw')).toHaveProperty('error');
    expect(parseResourceName('invalid://', 'gw')).toEqual({ ignored: true });
  });

  it('names what a Secret change touches: its own names and its -cacert companion, in every form', () => {
    expect([...resourceNamesOfSecret('gw', 'cred')].sort()).toEqual([
      'kubernetes-gateway://gw/cred',
      'kubernetes-gateway://gw/cred-cacert',
      'kubernetes://cred',
      'kubernetes://cred-cacert',
      'kubernetes://gw/cred',
      'kubernetes://gw/cred-cacert',
    ]);
    expect(resourceNamesOfSecret('gw', 'cred-cacert')).toEqual(resourceNamesOfSecret('gw', 'cred'));
  });
});

describe('Secret layouts (Istio: pilot/pkg/credentials/kube/secrets.go)', () => {
  const decode = (outcome: ReturnType<typeof tlsCertificateSecret>) => {
    if ('problem' in outcome) throw new Error(outcome.problem);
    return outcome.secret;
  };

  it('serves tls.crt/tls.key (with tls.ocsp-staple) as a tls_certificate named as asked', () => {
    const staple = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x00]);
    const s = secret('gw', 'cred', { ...tlsSecretData(credential), 'tls.ocsp-staple': staple.toString('base64') });
    const out = decode(tlsCertificateSecret('kubernetes://cred', s)) as {
      name: string;
      tls_certificate: {
        certificate_chain: { inline_bytes: Buffer };
        private_key: { inline_bytes: Buffer };
        ocsp_staple: { inline_bytes: Buffer };
      };
    };
    expect(out.name).toBe('kubernetes://cred');
    expect(out.tls_certificate.certificate_chain.inline_bytes.toString()).toBe(credential.certPem);
    expect(out.tls_certificate.private_key.inline_bytes.toString()).toBe(credential.keyPem);
    expect(out.tls_certificate.ocsp_staple.inline_bytes).toEqual(staple);
  });

  it('prefers the generic cert/key layout when both are present, as istiod', () => {
    const other = serverCredential(['other.example.com']);
    const s = secret('gw', 'cred', { ...genericSecretData(other), ...tlsSecretData(credential) });
    const out = decode(tlsCertificateSecret('kubernetes://cred', s)) as {
      tls_certificate: { certificate_chain: { inline_bytes: Buffer } };
    };
    expect(out.tls_certificate.certificate_chain.inline_bytes.toString()).toBe(other.certPem);
  });

  it('serves the CA of ca.crt, or cacert with its crl, as a validation_context', () => {
    const tls = validationContextSecret('kubernetes://cred-cacert', secret('gw', 'cred', tlsSecretData(credential, true)));
    expect(tls).toMatchObject({ secret: { name: 'kubernetes://cred-cacert', validation_context: { trusted_ca: {} } } });
    const crl = b64('not parsed: passed to Envoy as istiod does');
    const generic = validationContextSecret(
      'kubernetes://cred-cacert',
      secret('gw', 'cred', { ...genericSecretData(credential, true), crl }),
    );
    if ('problem' in generic) throw new Error(generic.problem);
    const context = generic.secret['validation_context'] as { trusted_ca: { inline_bytes: Buffer }; crl: { inline_bytes: Buffer } };
    expect(context.trusted_ca.inline_bytes.toString()).toBe(credential.ca.certPem);
    expect(context.crl.inline_bytes).toEqual(Buffer.from(crl, 'base64'));
  });

  it('refuses a malformed Secret with a message naming the key, never its value', () => {
    const data = tlsSecretData(credential);
    const other = serverCredential(['other.example.com']);
    const encrypted = generateRsaKeyPair().privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' });
    const cases: Array<[Record<string, string>, string]> = [
      [{ 'tls.crt': data['tls.crt'] as string }, 'key "tls.key" is missing ("tls.crt" is present)'],
      [{ ...data, 'tls.key': '' }, 'key "tls.key" is empty'],
      [{ 'tls.crt': b64('garbage'), 'tls.key': data['tls.key'] as string }, 'key "tls.crt": not a PEM X.509 certificate chain'],
      [
        { ...data, 'tls.key': b64('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n') },
        'key "tls.key": not an unencrypted PEM private key',
      ],
      [{ ...data, 'tls.key': b64(encrypted.toString()) }, 'key "tls.key": not an unencrypted PEM private key'],
      [{ ...data, 'tls.key': b64(other.keyPem) }, 'key "tls.key": does not match the certificate in "tls.crt"'],
      [
        { a: b64('x'), b: b64('y'), c: b64('z'), d: b64('w') },
        'no key pair: expected keys (cert and key) or (tls.crt and tls.key); found: a, b, c, and 1 more...',
      ],
    ];
    for (const [secretData, problem] of cases) {
      const outcome = tlsCertificateSecret('kubernetes://cred', secret('gw', 'cred', secretData));
      expect(outcome).toEqual({ problem });
    }
    expect(validationContextSecret('kubernetes://cred-cacert', secret('gw', 'cred', data))).toEqual({
      problem: 'no CA certificate: expected key "cacert" or "ca.crt"; found: tls.crt, tls.key',
    });
    expect(validationContextSecret('kubernetes://cred-cacert', secret('gw', 'cred', { 'ca.crt': b64('nope') }))).toEqual({
      problem: 'key "ca.crt": not a PEM X.509 certificate bundle',
    });
  });

  it('serves an expired certificate with a warning, as istiod does', () => {
    const later = new Date(Date.now() + 2 * 86_400_000);
    const outcome = tlsCertificateSecret('kubernetes://cred', secret('gw', 'cred', tlsSecretData(credential)), later);
    expect(outcome).toMatchObject({ warnings: [expect.stringMatching(/^key "tls.crt", certificate 1: expired at /)] });
  });

  it('keeps only the keys the layouts read', () => {
    const kept = keptSecret({
      metadata: { name: 'cred', namespace: 'gw', resourceVersion: '7', annotations: { big: 'x'.repeat(1000) }, managedFields: [{}] },
      data: { ...tlsSecretData(credential), 'unrelated.json': b64('{"password":"p"}') },
      type: 'kubernetes.io/tls',
    });
    expect(kept).toEqual({
      metadata: { name: 'cred', namespace: 'gw', resourceVersion: '7' },
      data: tlsSecretData(credential),
      foundKeys: 'tls.crt, tls.key, unrelated.json',
    });
  });
});

describe('who may read a Secret (Istio: filterAuthorizedResources)', () => {
  const identity = { namespace: 'gw', serviceAccount: 'ingress' };
  const ref = (name: string) => (parseResourceName(name, 'gw') as { reference: SecretReference }).reference;

  it("refuses other namespaces' Secrets, serves -cacert without a review, and key pairs only when the review allows", () => {
    let asked = 0;
    const allow = (): AccessVerdict => (asked++, { state: 'allowed' });
    const result = authorizeReferences(
      [ref('kubernetes://cred'), ref('kubernetes://other/cred'), ref('kubernetes://cred-cacert')],
      identity,
      allow,
    );
    expect(result.allowed.map((r) => r.resourceName)).toEqual(['kubernetes://cred', 'kubernetes://cred-cacert']);
    expect(result.denied).toEqual([
      { reference: ref('kubernetes://other/cred'), reason: "Secret namespace other is not the proxy's namespace gw" },
    ]);
    expect(asked).toBe(1);

    const denied = authorizeReferences([ref('kubernetes://cred'), ref('kubernetes://cred-cacert')], identity, () => ({
      state: 'denied',
      reason: 'no',
    }));
    expect(denied.allowed.map((r) => r.resourceName)).toEqual(['kubernetes://cred-cacert']);
    expect(denied.denied.map((d) => d.reason)).toEqual(['no']);
    const noReview = authorizeReferences([ref('kubernetes://cred-cacert')], identity, () => {
      throw new Error('a CA alone needs no review');
    });
    expect(noReview.allowed).toHaveLength(1);
  });

  it('serves kubernetes-gateway:// only for verified certificate references', () => {
    const r = ref('kubernetes-gateway://gw/cred');
    expect(authorizeReferences([r], identity, () => ({ state: 'allowed' })).allowed).toEqual([]);
    expect(
      authorizeReferences(
        [r],
        identity,
        () => ({ state: 'denied', reason: '' }),
        (n) => n === r.resourceName,
      ).allowed,
    ).toEqual([r]);
  });

  it('reviews each ServiceAccount once, caches allowed for 5 minutes and denied for 1, and reports a changed verdict', async () => {
    let now = 0;
    const answers: Array<{ allowed: boolean; reason?: string } | Error> = [{ allowed: true }, { allowed: false, reason: 'RBAC: no' }];
    const users: string[] = [];
    const settled: string[] = [];
    const reviews = new SecretAccessReviews(
      async (user) => {
        users.push(user);
        const answer = answers.shift() as { allowed: boolean } | Error;
        if (answer instanceof Error) throw answer;
        return answer;
      },
      (who) => settled.push(`${who.namespace}/${who.serviceAccount}`),
      { now: () => now },
    );
    expect(reviews.verdict(identity)).toEqual({ state: 'pending' });
    expect(reviews.verdict(identity)).toEqual({ state: 'pending' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(users).toEqual(['system:serviceaccount:gw:ingress']);
    expect(settled).toEqual(['gw/ingress']);
    now = 5 * 60_000 - 1;
    expect(reviews.verdict(identity)).toEqual({ state: 'allowed' });
    expect(users).toHaveLength(1);
    // Expired: the old verdict answers while the new review runs.
    now = 5 * 60_000;
    expect(reviews.verdict(identity)).toEqual({ state: 'allowed' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(users).toHaveLength(2);
    expect(settled).toEqual(['gw/ingress', 'gw/ingress']);
    expect(reviews.verdict(identity)).toEqual({ state: 'denied', reason: 'gw/ingress is not authorized to list secrets in gw: RBAC: no' });
    now += 60_000 - 1;
    reviews.verdict(identity);
    expect(users).toHaveLength(2);
    answers.push(new Error('connect ECONNREFUSED'));
    now += 1;
    reviews.verdict(identity);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reviews.verdict(identity)).toEqual({
      state: 'denied',
      reason: 'SubjectAccessReview for gw/ingress failed: connect ECONNREFUSED',
    });
    // Denied twice: the verdict did not change, nobody is pushed to.
    expect(settled).toHaveLength(2);
  });
});

describe('SecretAccessReviews without an answer', () => {
  it('counts a review the API server never answers as failed, so the ServiceAccount is not pending for good', async () => {
    const identity = { namespace: 'gw', serviceAccount: 'ingress' };
    let settle: () => void = () => undefined;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const reviews = new SecretAccessReviews(
      () => new Promise(() => undefined),
      () => settle(),
      { timeoutMs: 10 },
    );
    expect(reviews.verdict(identity)).toEqual({ state: 'pending' });
    await settled;
    expect(reviews.verdict(identity)).toEqual({
      state: 'denied',
      reason: 'SubjectAccessReview for gw/ingress failed: no answer within 0.01 s',
    });
  });
});

describe('CredentialSource (Istio: SecretGen)', () => {
  const node = (namespace: string, serviceAccount?: string): DiscoveryNode => ({
    id: `router~10.244.0.5~ingress-1.${namespace}~${namespace}.svc.cluster.local`,
    ...(serviceAccount ? { verifiedIdentity: { namespace, serviceAccount } } : {}),
  });
  const secretType = typeOf(typeUrls.secret);
  const decoded = (set: ResourceSet) =>
    set.resources.map((r) => secretType.toObject(secretType.decode(r.resource.value), { bytes: String }) as Record<string, unknown>);

  function harness(verdict: AccessVerdict = { state: 'allowed' }) {
    const store = new Map<string, KeptSecret>();
    const lines: string[] = [];
    const log = new LogLevels('debug', { write: (line: string) => void lines.push(line) }).root;
    const source = new CredentialSource({ secrets: { get: (ns, name) => store.get(`${ns}/${name}`) }, access: () => verdict, log });
    const put = (s: KeptSecret) => {
      store.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
      source.secretChanged(s.metadata.namespace, s.metadata.name);
    };
    return { store, lines, source, put };
  }

  it('serves a proxy the key pair and CA of its namespace, and nothing without a verified identity', () => {
    const { source, put, lines } = harness();
    put(secret('gw', 'cred', tlsSecretData(credential, true)));
    const names = ['kubernetes://cred', 'kubernetes://cred-cacert'];
    const set = source.resources(node('gw', 'ingress'), typeUrls.secret, names);
    expect(decoded(set).map((s) => Object.keys(s))).toEqual([
      ['name', 'tls_certificate'],
      ['name', 'validation_context'],
    ]);
    expect(decoded(set).map((s) => s['name'])).toEqual(names);
    expect(source.resources(node('gw'), typeUrls.secret, names).resources).toEqual([]);
    expect(lines.join('')).toContain('connect over 15012');
    // The same content has the same version; a new Secret version another.
    expect(source.resources(node('gw', 'ingress'), typeUrls.secret, names).version).toBe(set.version);
    put(secret('gw', 'cred', tlsSecretData(serverCredential(['new.example.com']), true), '2'));
    expect(source.resources(node('gw', 'ingress'), typeUrls.secret, names).version).not.toBe(set.version);
  });

  it('takes -cacert from the companion Secret when it exists, else from the key pair Secret', () => {
    const { source, put } = harness();
    put(secret('gw', 'cred', tlsSecretData(credential, true)));
    const caOf = () =>
      (
        decoded(source.resources(node('gw', 'ingress'), typeUrls.secret, ['kubernetes://cred-cacert']))[0]?.['validation_context'] as {
          trusted_ca: { inline_bytes: string };
        }
      )?.trusted_ca.inline_bytes;
    expect(Buffer.from(caOf() ?? '', 'base64').toString()).toBe(credential.ca.certPem);
    const companion = testRoot('companion CA');
    put(secret('gw', 'cred-cacert', { cacert: b64(companion.certPem) }));
    expect(Buffer.from(caOf() ?? '', 'base64').toString()).toBe(companion.certPem);
  });

  it('leaves out what it may not serve, keeps the rest, and logs each problem once, naming keys but no material', () => {
    const { source, put, lines } = harness({ state: 'denied', reason: 'gw/ingress is not authorized to list secrets in gw' });
    put(secret('gw', 'cred', tlsSecretData(credential, true)));
    put(secret('gw', 'broken', { 'tls.crt': tlsSecretData(credential)['tls.crt'] as string }));
    put(secret('other', 'cred', tlsSecretData(credential, true)));
    const n = node('gw', 'ingress');
    const names = ['kubernetes://cred', 'kubernetes://other/cred', 'kubernetes://cred-cacert', 'kubernetes://broken-cacert', 'vault://x'];
    for (let i = 0; i < 3; i++)
      expect(decoded(source.resources(n, typeUrls.secret, names)).map((s) => s['name'])).toEqual(['kubernetes://cred-cacert']);
    const warnings = lines.map((l) => JSON.parse(l) as { msg: string; problem?: string; reason?: string });
    expect(warnings.map((w) => w.msg).sort()).toEqual([
      'Secret cannot be served over SDS',
      'cannot parse SDS resource name',
      'proxy attempted to access unauthorized certificates',
    ]);
    expect(warnings.find((w) => w.problem)?.problem).toBe('no CA certificate: expected key "cacert" or "ca.crt"; found: tls.crt');
    const text = lines.join('\n');
    for (const material of [credential.keyPem, credential.certPem, tlsSecretData(credential)['tls.key'] as string])
      for (const line of material.split('\n').filter((l) => l.length > 20)) expect(text).not.toContain(line);
  });

  it('announces a Secret change to the proxies of its namespace only, with the names it touches', () => {
    const { source, put } = harness();
    const changes: ConfigChange[] = [];
    source.onChange((c) => changes.push(c));
    put(secret('gw', 'cred', tlsSecretData(credential)));
    const [change] = changes;
    expect(change?.typeUrls).toEqual([typeUrls.secret]);
    expect(change?.names?.get(typeUrls.secret)).toEqual(resourceNamesOfSecret('gw', 'cred'));
    expect(change?.affects?.(node('gw', 'ingress'), typeUrls.secret)).toBe(true);
    expect(change?.affects?.(node('other', 'ingress'), typeUrls.secret)).toBe(false);
    expect(change?.affects?.(node('gw'), typeUrls.secret)).toBe(false);
  });
});

describe('SourceByType', () => {
  const fake = (tag: string, changes: Array<(c: ConfigChange) => void>, connects: string[]): ConfigSource => ({
    serves: () => true,
    resources: () => ({ version: tag, resources: [] }),
    connected: () => {
      connects.push(tag);
      return () => connects.push(`-${tag}`);
    },
    onChange: (listener) => {
      changes.push(listener);
      return () => undefined;
    },
  });

  it('routes each type to its source, tells every source of a connection, and narrows changes to the types each serves', () => {
    const listeners: Array<(c: ConfigChange) => void> = [];
    const connects: string[] = [];
    const composite = new SourceByType(fake('groups', listeners, connects), { [typeUrls.secret]: fake('sds', listeners, connects) });
    expect(composite.resources({ id: 'n' }, typeUrls.secret, []).version).toBe('sds');
    expect(composite.resources({ id: 'n' }, typeUrls.cluster, []).version).toBe('groups');
    composite.connected({ id: 'n' })();
    expect(connects).toEqual(['groups', 'sds', '-groups', '-sds']);
    const seen: string[][] = [];
    composite.onChange((c) => seen.push(c.typeUrls));
    listeners[0]?.({ typeUrls: [typeUrls.cluster, typeUrls.secret] });
    listeners[1]?.({ typeUrls: [typeUrls.cluster, typeUrls.secret] });
    expect(seen).toEqual([[typeUrls.cluster], [typeUrls.secret]]);
  });
});
