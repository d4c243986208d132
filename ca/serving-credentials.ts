// gRPC server credentials whose certificate can be replaced while the server runs:
// istiod issues its serving certificate again when cacerts changes
// (updateRootCertAndGenKeyCert), so that new connections to 15012 verify with the
// new root once the old one leaves the bundle. Connections already open keep theirs.
import * as grpc from '@grpc/grpc-js';

export interface ServingKeyPair {
  certChainPem: string;
  privateKeyPem: string;
}

export class RotatingServerCredentials extends grpc.ServerCredentials {
  constructor(pair: ServingKeyPair) {
    // grpc-js's own TLS server settings (createSsl): no client certificate asked for.
    super({ requestCert: false }, RotatingServerCredentials.contextOf(pair));
  }

  /** Later TLS handshakes present `pair`. */
  rotate(pair: ServingKeyPair): void {
    this.updateSecureContextOptions(RotatingServerCredentials.contextOf(pair));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }

  private static contextOf(pair: ServingKeyPair): { cert: Buffer; key: Buffer } {
    return { cert: Buffer.from(pair.certChainPem), key: Buffer.from(pair.privateKeyPem) };
  }
}
