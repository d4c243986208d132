import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import type { ClientCredential } from './cluster-pki.js';

/** Writes a kubeconfig that authenticates with a client certificate. */
export function writeKubeconfig(path: string, server: string, caFile: string, user: string, credential: ClientCredential): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'weft-local', cluster: { server, 'certificate-authority': caFile } }],
    users: [{ name: user, user: { 'client-certificate': credential.certFile, 'client-key': credential.keyFile } }],
    contexts: [{ name: 'weft-local', context: { cluster: 'weft-local', user } }],
    'current-context': 'weft-local',
  };
  writeFileSync(path, stringify(config), { mode: 0o600 });
}
