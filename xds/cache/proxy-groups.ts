// Proxies of one kind share one snapshot: proxyless gRPC (node metadata
// GENERATOR=grpc, as Istio's grpc-agent bootstrap writes) and Envoy sidecars.
import type { ConfigSource, DiscoveryNode, ResourceSet } from '../server/discovery-types.js';
import { SnapshotCache } from './snapshot-cache.js';

export class ProxyGroups implements ConfigSource {
  readonly grpc = new SnapshotCache();
  readonly sidecar = new SnapshotCache();

  static isProxylessGrpc(node: DiscoveryNode): boolean {
    return node.metadata?.['GENERATOR'] === 'grpc';
  }

  serves(typeUrl: string): boolean {
    return this.sidecar.serves(typeUrl);
  }

  resources(node: DiscoveryNode, typeUrl: string, names: string[]): ResourceSet {
    return (ProxyGroups.isProxylessGrpc(node) ? this.grpc : this.sidecar).resources(node, typeUrl, names);
  }

  onChange(listener: (typeUrls: string[]) => void): () => void {
    const stops = [this.grpc.onChange(listener), this.sidecar.onChange(listener)];
    return () => stops.forEach((stop) => stop());
  }
}
