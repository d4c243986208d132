// What every proxy group's derivation shares: the current model and its index,
// epochs for the inputs that are not per host, and the keyed collections whose
// values are derived once and used by every group that needs them (clusters per
// DestinationRule context, ClusterLoadAssignments, encoded resources by content).
import { encodeResource, typeUrls } from '../protos.js';
import { Derivations } from '../collections/derivations.js';
import { KeyedMemo, objectId } from '../collections/keyed-memo.js';
import { clusterLoadAssignment } from '../traffic/cluster-load-assignment.js';
import type { MeshModel } from '../model/mesh-model.js';
import type { EncodedResource } from '../server/discovery-types.js';
import { MeshIndex } from '../traffic/mesh-index.js';
import type { OutboundCluster } from '../traffic/outbound-clusters.js';
import type { ProxyKind } from '../traffic/proxy-scope.js';
import { withDigest } from '../generate/grpc-client-resources.js';

export interface DerivedCluster {
  resource: EncodedResource;
  /** Whether the cluster reads its endpoints over EDS (Envoy's DNS and original-destination clusters do not). */
  eds: boolean;
}

const encodedResource = (typeUrl: string, name: string, value: Buffer): EncodedResource => ({
  name,
  resource: { type_url: typeUrl, value },
});

export class GenerationContext {
  readonly derivations = new Derivations();
  model: MeshModel = { clusterDomain: 'cluster.local', services: [] };
  index: MeshIndex = MeshIndex.of(this.model);
  /** Bumped when PeerAuthentication, AuthorizationPolicy or mesh-wide inputs change: values that read them are derived again. */
  readonly epochs = { peerAuthentication: 0, authorization: 0, mesh: 0 };

  // Kept while their host is in use: dropped when a change to the host leaves them unused (see endRound).
  private readonly clusters = new KeyedMemo<string, DerivedCluster>('cluster', this.derivations, Infinity);
  private readonly loadAssignments = new KeyedMemo<string, EncodedResource>('cla', this.derivations, Infinity);
  private readonly byContent = new KeyedMemo<string, EncodedResource>('encode', this.derivations);
  private readonly parts = new KeyedMemo<string, Buffer>('encode-part', this.derivations);
  private readonly assemblies = new KeyedMemo<string, EncodedResource>('assemble', this.derivations);

  /** Switches to a new model (its index is built once, here). */
  use(model: MeshModel): void {
    this.model = model;
    this.index = MeshIndex.of(model);
  }

  /**
   * One outbound cluster, derived once per DestinationRule context (the rules in
   * effect, by identity) and shared by every group that sees it the same way.
   * Derived again when its service (ports or endpoints), PeerAuthentication or the
   * mesh-wide inputs change; equal bytes keep the resource held.
   */
  cluster(kind: ProxyKind, cluster: OutboundCluster, rules: ReadonlyArray<object>, build: () => Record<string, unknown>): DerivedCluster {
    const key = `${kind}|${cluster.name}|${rules.map(objectId).join(',')}`;
    const deps = [cluster.service, this.epochs.peerAuthentication, this.epochs.mesh];
    return this.clusters.get(
      key,
      deps,
      () => {
        const object = build();
        const value = encodeResource(typeUrls.cluster, object);
        const previous = this.clusters.peek(key);
        const eds = object['type'] === 'EDS';
        if (previous && previous.eds === eds && previous.resource.resource.value.equals(value)) return previous;
        return { resource: encodedResource(typeUrls.cluster, cluster.name, value), eds };
      },
      cluster.hostname,
    );
  }

  /**
   * The ClusterLoadAssignment of one cluster: derived again only when its service's
   * endpoints change (the EDS fast path), once for every group that holds it.
   */
  loadAssignment(cluster: OutboundCluster): EncodedResource {
    const labels = cluster.subsetLabels ?? {};
    const key = `${cluster.name}|${JSON.stringify(Object.entries(labels).sort())}`;
    return this.loadAssignments.get(
      key,
      [cluster.service.endpoints, cluster.port.name],
      () => {
        const value = encodeResource(typeUrls.endpoint, clusterLoadAssignment(cluster.name, cluster.endpoints, cluster.port.name));
        const previous = this.loadAssignments.peek(key);
        if (previous?.resource.value.equals(value)) return previous;
        return encodedResource(typeUrls.endpoint, cluster.name, value);
      },
      cluster.hostname,
    );
  }

  /** A resource encoded once per distinct content (equal objects from different groups share the bytes). */
  encode(typeUrl: string, name: string, object: Record<string, unknown>): EncodedResource {
    const key = `${typeUrl}\u0000${name}\u0000${JSON.stringify(object)}`;
    return this.byContent.get(key, [], () => encodedResource(typeUrl, name, encodeResource(typeUrl, object)));
  }

  /** As `encode`, stamped with its content digest for grpc-js-xds (withDigest), from one JSON rendering. */
  encodeStamped(typeUrl: string, name: string, object: Record<string, unknown>): EncodedResource {
    const json = JSON.stringify(object);
    return this.byContent.get(`${typeUrl}\u0000${name}\u0000${json}`, [], () =>
      encodedResource(typeUrl, name, encodeResource(typeUrl, withDigest(object, json))),
    );
  }

  /** A resource whose content depends only on `key` (a proxyless client's API listener on its name): encoded once. */
  encodeOnce(typeUrl: string, name: string, key: string, build: () => Record<string, unknown>): EncodedResource {
    return this.byContent.get(`${typeUrl}\u0000${name}\u0000#${key}`, [], () =>
      encodedResource(typeUrl, name, encodeResource(typeUrl, build())),
    );
  }

  /**
   * The bytes of a message holding only `fields` of `typeUrl`: protobuf messages
   * concatenate (repeated fields append), so a large resource can be assembled
   * from parts encoded once, such as one virtual host of a route configuration.
   */
  encodePart(typeUrl: string, fields: Record<string, unknown>): Buffer {
    const key = `${typeUrl}\u0000${JSON.stringify(fields)}`;
    return this.parts.get(key, [], () => encodeResource(typeUrl, fields));
  }

  /** A resource assembled from parts, once per distinct content (`digest` of its parts, see PortRoutes). */
  assembled(typeUrl: string, name: string, digest: bigint, bytes: () => Buffer): EncodedResource {
    return this.assemblies.get(`${typeUrl}\u0000${name}\u0000${digest}`, [], () => encodedResource(typeUrl, name, bytes()));
  }

  /**
   * Ends a round. Every group holding a changed host's clusters derived them again
   * in this round, so the ones of those hosts nobody asked for are stale; encoded
   * content unused for a few rounds goes too.
   */
  endRound(changedHosts: ReadonlySet<string> | 'all'): void {
    this.clusters.dropUnused(changedHosts);
    this.loadAssignments.dropUnused(changedHosts);
    for (const memo of [this.clusters, this.loadAssignments, this.byContent, this.parts, this.assemblies]) memo.endRound();
  }

  /** How many values each collection holds, for /debug and the benchmark. */
  sizes(): Record<string, number> {
    return {
      clusters: this.clusters.size,
      loadAssignments: this.loadAssignments.size,
      encoded: this.byContent.size,
      parts: this.parts.size,
    };
  }
}
