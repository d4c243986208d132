import { componentLogger } from '../lib/logger.js';
import { generateRsaKeyPair, issueCertificate, privateKeyToPem, type Issuer } from '../lib/x509.js';
import { checkWebhookReadiness, type WebhookConfigurationView } from './webhook-readiness.js';
import { WebhookServer } from './webhook-server.js';

const serverName = 'weftd.weft-system.svc';

function rootCa(commonName: string): Issuer {
  const keys = generateRsaKeyPair();
  const certificatePem = issueCertificate(
    { commonName, usages: [], isCA: true, notAfter: new Date(Date.now() + 3_600_000) },
    keys.publicKey,
    { selfSigningKey: keys.privateKey },
  );
  return { certificatePem, privateKey: keys.privateKey };
}

function servingCertificate(issuer: Issuer, dnsNames = [serverName]) {
  const keys = generateRsaKeyPair();
  const pem = issueCertificate(
    { commonName: 'weftd', dnsNames, usages: ['serverAuth'], isCA: false, notAfter: new Date(Date.now() + 3_600_000) },
    keys.publicKey,
    issuer,
  );
  return { certChainPem: pem, privateKeyPem: privateKeyToPem(keys.privateKey) };
}

const base64 = (pem: string) => Buffer.from(pem).toString('base64');

function configurations(caBundle: string | undefined): WebhookConfigurationView[] {
  const hook = (name: string) => ({ name, ...(caBundle ? { caBundle } : {}) });
  return [
    {
      kind: 'MutatingWebhookConfiguration',
      name: 'weft-sidecar-injector-weft-system',
      found: true,
      webhooks: [hook('rev.namespace.sidecar-injector.weft.dev'), hook('rev.object.sidecar-injector.weft.dev')],
    },
    { kind: 'ValidatingWebhookConfiguration', name: 'weft-validator-weft-system', found: true, webhooks: [hook('validation.weft.dev')] },
  ];
}

describe('checkWebhookReadiness', () => {
  const ca = rootCa('weft root');
  const stranger = rootCa('another root');
  const serving = servingCertificate(ca);
  const server = new WebhookServer(serving, {}, componentLogger('test'));
  beforeAll(() => server.listen('127.0.0.1', 0));
  afterAll(() => server.close());
  const address = () => ({ host: '127.0.0.1', port: server.port });

  it('is met when 15017 serves the loaded certificate and every webhook caBundle verifies it for the Service name', async () => {
    await expect(
      checkWebhookReadiness({
        address: address(),
        serverName,
        servedChainPem: server.servedChainPem,
        configurations: configurations(base64(ca.certificatePem)),
      }),
    ).resolves.toEqual({ serving: undefined, caBundle: undefined });
  });

  it('names each webhook whose caBundle is not set yet, and each configuration not found', async () => {
    const views = configurations(undefined);
    views[1] = { kind: 'ValidatingWebhookConfiguration', name: 'weft-validator-weft-system', found: false, webhooks: [] };
    const result = await checkWebhookReadiness({
      address: address(),
      serverName,
      servedChainPem: server.servedChainPem,
      configurations: views,
    });
    expect(result.serving).toBeUndefined();
    expect(result.caBundle).toBe(
      'MutatingWebhookConfiguration weft-sidecar-injector-weft-system webhook rev.namespace.sidecar-injector.weft.dev has no caBundle yet (weftd sets it); ' +
        'MutatingWebhookConfiguration weft-sidecar-injector-weft-system webhook rev.object.sidecar-injector.weft.dev has no caBundle yet (weftd sets it); ' +
        'ValidatingWebhookConfiguration weft-validator-weft-system not found (the operator creates it; weftd sets its caBundle)',
    );
  });

  it('is missing when a caBundle is another CA (as after a new root the API server has not been given)', async () => {
    const views = configurations(base64(ca.certificatePem));
    views[1]!.webhooks[0]!.caBundle = base64(stranger.certificatePem);
    const result = await checkWebhookReadiness({
      address: address(),
      serverName,
      servedChainPem: server.servedChainPem,
      configurations: views,
    });
    expect(result.serving).toBeUndefined();
    expect(result.caBundle).toMatch(
      /^the caBundle of ValidatingWebhookConfiguration weft-validator-weft-system webhook validation.weft.dev does not verify the certificate served on 127.0.0.1:\d+ for weftd.weft-system.svc: .*(certificate|signature)/,
    );
  });

  it('is missing when the certificate does not name the Service the API server dials', async () => {
    const elsewhere = new WebhookServer(servingCertificate(ca, ['weftd.other.svc']), {}, componentLogger('test'));
    await elsewhere.listen('127.0.0.1', 0);
    try {
      const result = await checkWebhookReadiness({
        address: { host: '127.0.0.1', port: elsewhere.port },
        serverName,
        servedChainPem: elsewhere.servedChainPem,
        configurations: configurations(base64(ca.certificatePem)),
      });
      expect(result.serving).toBeUndefined();
      expect(result.caBundle).toMatch(/does not verify .*weftd.weft-system.svc.*(altnames|Hostname)/i);
    } finally {
      await elsewhere.close();
    }
  });

  it('is missing when nothing listens, or 15017 serves another certificate than the one loaded', async () => {
    const closed = new WebhookServer(serving, {}, componentLogger('test'));
    await closed.listen('127.0.0.1', 0);
    const port = closed.port;
    await closed.close();
    const down = await checkWebhookReadiness({
      address: { host: '127.0.0.1', port },
      serverName,
      servedChainPem: serving.certChainPem,
      configurations: configurations(base64(ca.certificatePem)),
    });
    expect(down.serving).toMatch(/^nothing answers TLS on 127.0.0.1:\d+: .*ECONNREFUSED/);
    expect(down.caBundle).toBe('the caBundle cannot be checked until the webhook serving certificate is served');

    const other = await checkWebhookReadiness({
      address: address(),
      serverName,
      servedChainPem: servingCertificate(ca).certChainPem,
      configurations: configurations(base64(ca.certificatePem)),
    });
    expect(other.serving).toMatch(/presents a certificate other than the one weftd loaded/);
  });

  it('follows a rotation: the rotated certificate is what it expects on 15017', async () => {
    const rotated = servingCertificate(ca);
    const local = new WebhookServer(serving, {}, componentLogger('test'));
    await local.listen('127.0.0.1', 0);
    try {
      local.rotate(rotated);
      expect(local.servedChainPem).toBe(rotated.certChainPem);
      await expect(
        checkWebhookReadiness({
          address: { host: '127.0.0.1', port: local.port },
          serverName,
          servedChainPem: local.servedChainPem,
          configurations: configurations(base64(ca.certificatePem)),
        }),
      ).resolves.toEqual({ serving: undefined, caBundle: undefined });
    } finally {
      await local.close();
    }
  });
});
