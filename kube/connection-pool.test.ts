import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { generateRsaKeyPair, issueCertificate, privateKeyToPem } from '../lib/x509.js';
import { reuseConnections } from './connection-pool.js';

/**
 * An API server stand-in that answers GET /api/v1/namespaces/<name> with the name, counts TLS connections
 * and records the common name of each request's client certificate.
 */
async function apiServer(): Promise<{
  url: string;
  caPem: string;
  connections: () => number;
  clients: string[];
  close: () => Promise<void>;
}> {
  const keys = generateRsaKeyPair();
  const certificate = issueCertificate(
    { commonName: 'kube-apiserver', ipAddresses: ['127.0.0.1'], usages: ['serverAuth'], notAfter: new Date(Date.now() + 3_600_000) },
    keys.publicKey,
    { selfSigningKey: keys.privateKey },
  );
  let connections = 0;
  const clients: string[] = [];
  const tlsOptions = { cert: certificate, key: privateKeyToPem(keys.privateKey), requestCert: true, rejectUnauthorized: false };
  const server = https.createServer(tlsOptions, (request, response) => {
    const name = request.url?.split('/').pop() ?? '';
    const peer = (request.socket as TLSSocket).getPeerCertificate();
    clients.push(typeof peer.subject?.CN === 'string' ? peer.subject.CN : 'none');
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
  });
  server.on('secureConnection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caPem: certificate,
    connections: () => connections,
    clients,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function kubeConfig(server: string, caPem: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'c', server, caData: Buffer.from(caPem).toString('base64') }],
    users: [{ name: 'u', token: 'a-token' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return config;
}

describe('reuseConnections', () => {
  // Without the pool, client-node 2.0 opened one per call (30 here). undici may open a second while the
  // last response's body is being read, so the pool holds one or two; what matters is that it does not grow.
  it('makes 30 API calls, one after another, over at most two TLS connections', async () => {
    const server = await apiServer();
    try {
      const core = reuseConnections(kubeConfig(server.url, server.caPem)).makeApiClient(CoreV1Api);
      for (let i = 0; i < 30; i++) expect((await core.readNamespace({ name: `ns-${i}` })).metadata?.name).toBe(`ns-${i}`);
      expect(server.connections()).toBeLessThanOrEqual(2);
    } finally {
      await server.close();
    }
  });

  it('opens a new pool when the TLS settings change, as when a CA is rotated', async () => {
    const server = await apiServer();
    try {
      const config = reuseConnections(kubeConfig(server.url, server.caPem));
      const core = config.makeApiClient(CoreV1Api);
      await core.readNamespace({ name: 'a' });
      await core.readNamespace({ name: 'b' });
      const before = server.connections();
      // The same CA, written differently (a trailing newline): other bytes, so another pool.
      const cluster = config.getCurrentCluster();
      if (!cluster) throw new Error('no cluster');
      Object.assign(cluster, { caData: Buffer.from(`${server.caPem}\n`).toString('base64') });
      await core.readNamespace({ name: 'c' });
      const after = server.connections();
      await core.readNamespace({ name: 'd' });
      await core.readNamespace({ name: 'e' });
      expect(after).toBe(before + 1);
      expect(server.connections()).toBeLessThanOrEqual(after + 1);
    } finally {
      await server.close();
    }
  });

  // What must never happen: a call made as one client certificate going over another's connection.
  it('keeps callers with different client certificates on connections of their own', async () => {
    const server = await apiServer();
    try {
      const user = (name: string) => {
        const keys = generateRsaKeyPair();
        const cert = issueCertificate(
          { commonName: name, usages: ['clientAuth'], notAfter: new Date(Date.now() + 3_600_000) },
          keys.publicKey,
          {
            selfSigningKey: keys.privateKey,
          },
        );
        return {
          name,
          certData: Buffer.from(cert).toString('base64'),
          keyData: Buffer.from(privateKeyToPem(keys.privateKey)).toString('base64'),
        };
      };
      const config = new KubeConfig();
      config.loadFromOptions({
        clusters: [{ name: 'c', server: server.url, caData: Buffer.from(server.caPem).toString('base64') }],
        users: [user('alice'), user('bob')],
        contexts: [
          { name: 'alice', cluster: 'c', user: 'alice' },
          { name: 'bob', cluster: 'c', user: 'bob' },
        ],
        currentContext: 'alice',
      });
      const core = reuseConnections(config).makeApiClient(CoreV1Api);
      const expected: string[] = [];
      for (let i = 0; i < 10; i++) {
        const who = i % 2 === 0 ? 'alice' : 'bob';
        config.setCurrentContext(who);
        await core.readNamespace({ name: `ns-${i}` });
        expected.push(who);
      }
      expect(server.clients).toEqual(expected);
      expect(server.connections()).toBeLessThanOrEqual(4);
    } finally {
      await server.close();
    }
  });
});
