// `make bench`: prints figures, asserts nothing. Each later capability adds its own.
import { readFileSync } from 'node:fs';
import forge from 'node-forge';
import { ensureClusterBinaries } from '../cluster/binaries.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import { insideSandbox } from '../sandbox/network-sandbox.js';
import { generateRsaKeyPair, issueCertificate, privateKeyToPem } from '../../lib/x509.js';

function measure(name: string, iterations: number, body: () => void): void {
  body(); // warm up
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) body();
  const perOpMs = Number(process.hrtime.bigint() - start) / 1e6 / iterations;
  console.log(`${name.padEnd(58)} ${perOpMs.toFixed(2).padStart(9)} ms/op ${(1000 / perOpMs).toFixed(1).padStart(9)} ops/s`);
}

function x509Benchmarks(): void {
  const day = new Date(Date.now() + 24 * 3600 * 1000);
  const ca = generateRsaKeyPair();
  const caPem = issueCertificate({ commonName: 'bench-ca', isCA: true, notAfter: day }, ca.publicKey, { selfSigningKey: ca.privateKey });
  const leaf = generateRsaKeyPair();
  const request = { commonName: 'leaf', uris: ['spiffe://cluster.local/ns/default/sa/bench'], notAfter: day };

  measure('RSA-2048 key pair (node:crypto)', 10, () => generateRsaKeyPair());
  measure('issue a leaf certificate (forge builds, crypto signs)', 200, () =>
    issueCertificate(request, leaf.publicKey, { certificatePem: caPem, privateKey: ca.privateKey }),
  );
  // The alternative we avoid: node-forge's own RSA signing.
  const forgeKey = forge.pki.privateKeyFromPem(privateKeyToPem(ca.privateKey));
  measure('issue a leaf certificate (forge builds and signs)', 10, () => {
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.publicKeyFromPem(leaf.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    cert.validity.notAfter = day;
    cert.setSubject([{ name: 'commonName', value: 'leaf' }]);
    cert.setIssuer([{ name: 'commonName', value: 'bench-ca' }]);
    cert.sign(forgeKey, forge.md.sha256.create());
  });
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kib / 1024;
}

async function clusterBenchmarks(): Promise<void> {
  if (!insideSandbox()) {
    console.log('local cluster: skipped (run through `make bench`, which enters the network sandbox)');
    return;
  }
  const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
  const started = Date.now();
  const cluster = await LocalCluster.start({ binaries });
  console.log(`${'local cluster start to ready (2 kwok nodes)'.padEnd(58)} ${String(Date.now() - started).padStart(9)} ms`);
  const total = cluster.pids().reduce((sum, pid) => sum + rssMiB(pid), 0);
  console.log(`${'local cluster resident memory (5 processes)'.padEnd(58)} ${total.toFixed(0).padStart(9)} MiB`);
  const stopping = Date.now();
  await cluster.stop();
  console.log(`${'local cluster stop'.padEnd(58)} ${String(Date.now() - stopping).padStart(9)} ms`);
}

x509Benchmarks();
await clusterBenchmarks();
