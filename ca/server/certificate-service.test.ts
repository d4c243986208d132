import * as grpc from '@grpc/grpc-js';
import { componentLogger } from '../../lib/logger.js';
import { certificateServiceImplementation } from './certificate-service.js';
import type { Caller } from './token-authenticator.js';

/** A unary call as grpc-js hands it to the handler: the token in metadata, a CSR that never gets parsed here. */
function call(token: string): grpc.ServerUnaryCall<{ csr: string }, unknown> {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return { metadata, request: { csr: 'not parsed: authentication never finishes' }, getPeer: () => 'ipv4:10.0.0.1:1234' } as never;
}

describe('certificate service admission of requests', () => {
  it("refuses a caller's requests beyond its own limit at once, while another caller is still let in", async () => {
    const pending: Array<() => void> = [];
    const service = certificateServiceImplementation({
      // Authentication hangs until released: every request stays in flight.
      authenticate: () => new Promise<Caller>((_resolve, reject) => pending.push(() => reject(new Error('released')))),
      signingCa: () => {
        throw new Error('not reached');
      },
      trustDomain: 'cluster.local',
      ttl: { defaultSeconds: 3600, maxSeconds: 3600 },
      log: componentLogger('ca-server-test'),
      maxInFlight: 100,
      maxInFlightPerCaller: 3,
    });
    const answers: Array<{ token: string; code: grpc.status | undefined; details: string | undefined }> = [];
    const send = (token: string) =>
      service['CreateCertificate']?.(
        call(token) as never,
        ((error: grpc.ServiceError | null) => answers.push({ token, code: error?.code, details: error?.details })) as never,
      );
    for (let i = 0; i < 5; i++) send('flood');
    send('legit');
    // The fourth and fifth of the flooding caller are refused at once; nothing else has answered yet.
    expect(answers).toEqual([
      { token: 'flood', code: grpc.status.RESOURCE_EXHAUSTED, details: expect.stringContaining('3 certificate requests in flight') },
      { token: 'flood', code: grpc.status.RESOURCE_EXHAUSTED, details: expect.stringContaining('retry with backoff') },
    ]);
    expect(pending).toHaveLength(4);
    // Once its requests finish, the caller is let in again.
    for (const release of pending.splice(0)) release();
    await new Promise((resolve) => setImmediate(resolve));
    send('flood');
    expect(pending).toHaveLength(1);
    pending[0]?.();
    await new Promise((resolve) => setImmediate(resolve));
  });
});

describe('certificate service response during a root rotation', () => {
  it("ends with every root to trust as one element, as istiod's, and tells who issued what", async () => {
    const { generateKeyPairSync, X509Certificate } = await import('node:crypto');
    const { buildCsr } = await import('../../testing/fixtures/csr.js');
    const { cacertsFiles, testIntermediate, testRoot } = await import('../../testing/fixtures/plugged-ca.js');
    const { pluggedRootOfTrust, signingCa, trustBundlePem } = await import('../root-of-trust.js');
    const [oldRoot, newRoot] = [testRoot('old-root'), testRoot('new-root')];
    const plugged = pluggedRootOfTrust(cacertsFiles(testIntermediate(newRoot, 'new-ca'), newRoot, [oldRoot, newRoot]));
    const issued: string[][] = [];
    const service = certificateServiceImplementation({
      authenticate: () => Promise.resolve({ namespace: 'shop', serviceAccount: 'cart' }),
      signingCa: () => signingCa(plugged),
      trustBundle: () => trustBundlePem(plugged),
      issued: (chain) => issued.push(chain),
      trustDomain: 'cluster.local',
      ttl: { defaultSeconds: 3600, maxSeconds: 3600 },
      log: componentLogger('ca-server-test'),
    });
    const csr = buildCsr({ ...generateKeyPairSync('ec', { namedCurve: 'P-256' }), uris: ['spiffe://cluster.local/ns/shop/sa/cart'] });
    const metadata = new grpc.Metadata();
    metadata.set('authorization', 'Bearer t');
    const reply = await new Promise<{ cert_chain: string[] }>((resolve, reject) =>
      service['CreateCertificate']?.(
        { metadata, request: { csr }, getPeer: () => 'ipv4:10.0.0.1:1234' } as never,
        ((error: grpc.ServiceError | null, value: { cert_chain: string[] }) => (error ? reject(error) : resolve(value))) as never,
      ),
    );
    const subjects = (pems: string[]) => pems.map((pem) => new X509Certificate(pem).subject);
    // Leaf, intermediate, then the whole bundle: pilot-agent's ROOTCA holds both roots.
    expect(reply.cert_chain).toHaveLength(3);
    expect(subjects(reply.cert_chain.slice(1, 2))).toEqual(['CN=new-ca']);
    expect(reply.cert_chain[2]).toBe(trustBundlePem(plugged));
    expect(reply.cert_chain[2]?.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(issued).toHaveLength(1);
    expect(issued[0]?.[0]).toBe(reply.cert_chain[0]);
  });
});
