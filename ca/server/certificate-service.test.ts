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
