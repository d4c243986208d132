import { request } from 'node:https';
import { componentLogger } from '../lib/logger.js';
import { generateRsaKeyPair, issueCertificate, privateKeyToPem } from '../lib/x509.js';
import { reviewValidation } from './admission-review.js';
import { WebhookServer, maxAdmissionBytes } from './webhook-server.js';

function certificate() {
  const keys = generateRsaKeyPair();
  const pem = issueCertificate(
    {
      commonName: 'weftd',
      dnsNames: ['weftd.weft-system.svc'],
      ipAddresses: ['127.0.0.1'],
      usages: ['serverAuth'],
      isCA: false,
      notAfter: new Date(Date.now() + 3_600_000),
    },
    keys.publicKey,
    {
      selfSigningKey: keys.privateKey,
    },
  );
  return { certChainPem: pem, privateKeyPem: privateKeyToPem(keys.privateKey) };
}

describe('WebhookServer', () => {
  const serving = certificate();
  const server = new WebhookServer(
    serving,
    {
      '/validate': reviewValidation,
      '/boom': () => {
        throw new Error('bug');
      },
    },
    componentLogger('test'),
  );
  beforeAll(() => server.listen('127.0.0.1', 0));
  afterAll(() => server.close());

  const post = (path: string, body: string | Buffer, method = 'POST') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: server.port, path, method, ca: serving.certChainPem, servername: 'weftd.weft-system.svc', agent: false },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  it('answers AdmissionReviews over TLS', async () => {
    const reply = await post(
      '/validate',
      JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'abc' } }),
    );
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body).response).toEqual({ uid: 'abc', allowed: true });
  });

  it('refuses bodies that are not JSON, too large, or sent to no webhook, and survives a handler bug', async () => {
    expect(await post('/validate', 'not json')).toEqual({ status: 400, body: JSON.stringify({ message: 'the request body is not JSON' }) });
    // The server answers 413 and drops the connection; a client still writing may see the reset instead.
    const huge = await post('/validate', Buffer.alloc(maxAdmissionBytes + 1024, 'a')).then(
      (r) => r.status,
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect([413, 'EPIPE', 'ECONNRESET']).toContain(huge);
    expect((await post('/nowhere', '{}')).status).toBe(404);
    expect((await post('/validate', '', 'GET')).status).toBe(404);
    expect((await post('/boom', '{}')).status).toBe(500);
    // Still serving after all of that.
    expect(
      (await post('/validate', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'z' } })))
        .status,
    ).toBe(200);
  });
});
