// The certificates a small cluster needs: one CA, the apiserver's serving
// certificate, client certificates for the admin and each component, and the
// service-account signing key.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateRsaKeyPair, issueCertificate, privateKeyToPem, publicKeyToPem, type Issuer } from '../../lib/x509.js';

export interface ClientCredential {
  certFile: string;
  keyFile: string;
}

export interface ClusterPki {
  caFile: string;
  /** Lets kube-controller-manager sign CertificateSigningRequests, as a real cluster does. */
  caKeyFile: string;
  caPem: string;
  servingCertFile: string;
  servingKeyFile: string;
  serviceAccountKeyFile: string;
  serviceAccountPublicKeyFile: string;
  clients: Record<'admin' | 'controllerManager' | 'scheduler' | 'kwok', ClientCredential>;
}

const clientIdentities = {
  admin: { commonName: 'weft-admin', organizations: ['system:masters'] },
  controllerManager: { commonName: 'system:kube-controller-manager', organizations: [] },
  scheduler: { commonName: 'system:kube-scheduler', organizations: [] },
  // kwok writes node and pod status for every fake kubelet; it is a test stand-in.
  kwok: { commonName: 'kwok', organizations: ['system:masters'] },
} as const;

export function createClusterPki(dir: string, serviceClusterIp: string): ClusterPki {
  const day = 24 * 3600 * 1000;
  const notAfter = new Date(Date.now() + 30 * day);
  const write = (name: string, content: string): string => {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  };

  const caKeys = generateRsaKeyPair();
  const caPem = issueCertificate({ commonName: 'weft-local-cluster-ca', isCA: true, notAfter }, caKeys.publicKey, {
    selfSigningKey: caKeys.privateKey,
  });
  const ca: Issuer = { certificatePem: caPem, privateKey: caKeys.privateKey };

  const servingKeys = generateRsaKeyPair();
  const servingPem = issueCertificate(
    {
      commonName: 'kube-apiserver',
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
      ipAddresses: ['127.0.0.1', serviceClusterIp],
      usages: ['serverAuth'],
      notAfter,
    },
    servingKeys.publicKey,
    ca,
  );

  const clients = {} as ClusterPki['clients'];
  for (const [role, identity] of Object.entries(clientIdentities) as Array<
    [keyof typeof clientIdentities, (typeof clientIdentities)[keyof typeof clientIdentities]]
  >) {
    const keys = generateRsaKeyPair();
    const pem = issueCertificate(
      { commonName: identity.commonName, organizations: [...identity.organizations], usages: ['clientAuth'], notAfter },
      keys.publicKey,
      ca,
    );
    clients[role] = { certFile: write(`${role}.crt`, pem), keyFile: write(`${role}.key`, privateKeyToPem(keys.privateKey)) };
  }

  const saKeys = generateRsaKeyPair();
  return {
    caFile: write('ca.crt', caPem),
    caKeyFile: write('ca.key', privateKeyToPem(caKeys.privateKey)),
    caPem,
    servingCertFile: write('apiserver.crt', servingPem),
    servingKeyFile: write('apiserver.key', privateKeyToPem(servingKeys.privateKey)),
    serviceAccountKeyFile: write('sa.key', privateKeyToPem(saKeys.privateKey)),
    serviceAccountPublicKeyFile: write('sa.pub', publicKeyToPem(saKeys.publicKey)),
    clients,
  };
}
