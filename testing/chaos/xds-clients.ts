// ADS clients for xDS chaos: raw streams to weftd's AggregatedDiscoveryService on
// 15012 (TLS checked against the `istio-ca-root-cert` bundle and weftd's serving
// name, a ServiceAccount token of audience istio-ca as the Bearer, as pilot-agent
// connects) and 15010 (plaintext). Requests travel as bytes, so a client can send
// what no protobuf encoder would (wrong wire types, truncations); responses are
// decoded with Envoy's protos as xds/protos.ts loads them.
import { connect, type ClientHttp2Session } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { typeOf, typeUrls } from '../../xds/protos.js';
import { weftdServiceName, type ChaosTarget } from './chaos-target.js';

export type AdsPort = 15010 | 15012;

export interface DecodedResponse {
  version_info: string;
  type_url: string;
  nonce: string;
  /** Resource names (decoded from each Any), in the order sent. */
  names: string[];
  bytes: number;
}

const requestType = () => typeOf('type.googleapis.com/envoy.service.discovery.v3.DiscoveryRequest');
const responseType = () => typeOf('type.googleapis.com/envoy.service.discovery.v3.DiscoveryResponse');
const deltaRequestType = () => typeOf('type.googleapis.com/envoy.service.discovery.v3.DeltaDiscoveryRequest');
const deltaResponseType = () => typeOf('type.googleapis.com/envoy.service.discovery.v3.DeltaDiscoveryResponse');

/** ADS's two methods: state of the world, and incremental (Delta xDS). */
export type AdsMethod = 'StreamAggregatedResources' | 'DeltaAggregatedResources';

/** The name inside an encoded resource: every xDS resource type Weft serves carries it as field 1. */
function resourceName(typeUrl: string, value: Uint8Array): string {
  if (!Object.values(typeUrls).includes(typeUrl as never)) return '';
  const decoded = typeOf(typeUrl).decode(value) as unknown as { name?: string; cluster_name?: string };
  return decoded.name ?? decoded.cluster_name ?? '';
}

export function decodeResponse(bytes: Buffer): DecodedResponse {
  const message = responseType().decode(bytes) as unknown as {
    version_info?: string;
    type_url?: string;
    nonce?: string;
    resources?: Array<{ type_url: string; value: Uint8Array }>;
  };
  return {
    version_info: message.version_info ?? '',
    type_url: message.type_url ?? '',
    nonce: message.nonce ?? '',
    names: (message.resources ?? []).map((r) => resourceName(r.type_url, r.value)),
    bytes: bytes.length,
  };
}

/** A DeltaDiscoveryResponse read into the same shape (`version_info` is its `system_version_info`). */
export function decodeDeltaResponse(bytes: Buffer): DecodedResponse {
  const message = deltaResponseType().decode(bytes) as unknown as {
    system_version_info?: string;
    type_url?: string;
    nonce?: string;
    resources?: Array<{ name?: string }>;
  };
  return {
    version_info: message.system_version_info ?? '',
    type_url: message.type_url ?? '',
    nonce: message.nonce ?? '',
    names: (message.resources ?? []).map((r) => r.name ?? ''),
    bytes: bytes.length,
  };
}

export interface RequestFields {
  node?: { id?: string; cluster?: string; metadata?: Record<string, string | Record<string, string>> };
  type_url?: string;
  version_info?: string;
  resource_names?: string[];
  response_nonce?: string;
  error_detail?: { code: number; message: string };
}

/** A DiscoveryRequest's bytes; string metadata values and string maps (LABELS) become a Struct. */
export function encodeRequest(fields: RequestFields): Buffer {
  const { node, ...rest } = fields;
  // google.protobuf.Struct is protobufjs' built-in type, whose fields are camelCase: `string_value` would encode nothing.
  const value = (v: string | Record<string, string>): object =>
    typeof v === 'string'
      ? { stringValue: v }
      : { structValue: { fields: Object.fromEntries(Object.entries(v).map(([k, s]) => [k, { stringValue: s }])) } };
  const message = {
    ...rest,
    ...(node
      ? {
          node: {
            ...(node.id !== undefined ? { id: node.id } : {}),
            ...(node.cluster !== undefined ? { cluster: node.cluster } : {}),
            ...(node.metadata
              ? { metadata: { fields: Object.fromEntries(Object.entries(node.metadata).map(([k, v]) => [k, value(v)])) } }
              : {}),
          },
        }
      : {}),
  };
  const type = requestType();
  return Buffer.from(type.encode(type.fromObject(message)).finish());
}

export interface DeltaRequestFields {
  node?: RequestFields['node'];
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  response_nonce?: string;
  error_detail?: { code: number; message: string };
}

/** A DeltaDiscoveryRequest's bytes (node metadata as for encodeRequest). */
export function encodeDeltaRequest(fields: DeltaRequestFields): Buffer {
  const { node, ...rest } = fields;
  // The node is encoded as a DiscoveryRequest's would be, then moved: same Node message, field 1 here.
  const nodeObject = node ? (requestType().toObject(requestType().decode(encodeRequest({ node }))) as { node?: object }).node : undefined;
  const type = deltaRequestType();
  return Buffer.from(type.encode(type.fromObject({ ...rest, ...(nodeObject ? { node: nodeObject } : {}) })).finish());
}

const rawAds = {
  StreamAggregatedResources: {
    path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
    requestStream: true,
    responseStream: true,
    requestSerialize: (bytes: Buffer) => bytes,
    requestDeserialize: (bytes: Buffer) => bytes,
    responseSerialize: (bytes: Buffer) => bytes,
    responseDeserialize: decodeResponse,
  },
  DeltaAggregatedResources: {
    path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources',
    requestStream: true,
    responseStream: true,
    requestSerialize: (bytes: Buffer) => bytes,
    requestDeserialize: (bytes: Buffer) => bytes,
    responseSerialize: (bytes: Buffer) => bytes,
    responseDeserialize: decodeDeltaResponse,
  },
} satisfies grpc.ServiceDefinition;
const RawAdsClient = grpc.makeGenericClientConstructor(rawAds, 'AggregatedDiscoveryService');

export type AdsCall = grpc.ClientDuplexStream<Buffer, DecodedResponse>;

/**
 * A client of weftd's ADS on one port. `own: true` gives it its own HTTP/2 connection
 * (as each Envoy has one); otherwise clients of equal options share one.
 */
export function adsClient(target: ChaosTarget, port: AdsPort, own = false): grpc.Client {
  const options: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    ...(own ? { 'grpc.use_local_subchannel_pool': 1 } : {}),
  };
  if (port === 15010) return new RawAdsClient(`${target.weftdIp}:15010`, grpc.credentials.createInsecure(), options);
  return new RawAdsClient(`${target.weftdIp}:15012`, grpc.credentials.createSsl(Buffer.from(target.trustBundle)), {
    ...options,
    'grpc.ssl_target_name_override': weftdServiceName,
    'grpc.default_authority': weftdServiceName,
  });
}

/** Opens an ADS stream (state of the world unless `method` says Delta); on 15012 with `Bearer <token>`. */
export function openAds(client: grpc.Client, token: string | undefined, method: AdsMethod = 'StreamAggregatedResources'): AdsCall {
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  return (client as unknown as Record<AdsMethod, (m: grpc.Metadata) => AdsCall>)[method](metadata);
}

export type StreamEnd = { code: number; details: string };

/** Resolves with the stream's final status (OK too), or undefined after `ms`. */
export function ended(call: AdsCall, ms: number): Promise<StreamEnd | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    const done = (end: StreamEnd) => {
      clearTimeout(timer);
      resolve(end);
    };
    call.on('error', (error: grpc.ServiceError) => done({ code: error.code, details: error.details }));
    call.on('status', (status: grpc.StatusObject) => done({ code: status.code, details: status.details }));
  });
}

/** Istio's node id for a sidecar, and the metadata the agent sends that Weft reads. */
export function sidecarNode(name: string, namespace: string, ip: string, labels: Record<string, string>): RequestFields['node'] {
  return {
    id: `sidecar~${ip}~${name}.${namespace}~${namespace}.svc.cluster.local`,
    metadata: { NAMESPACE: namespace, LABELS: labels, ISTIO_VERSION: '1.28.0' },
  };
}

/**
 * A well-behaved sidecar: subscribes to CDS and LDS, ACKs every response, and
 * remembers the clusters it holds and when each first arrived.
 */
export class WellBehavedProxy {
  readonly clusters = new Set<string>();
  /** Cluster name → when it first arrived (performance.now()). */
  readonly arrivals = new Map<string, number>();
  readonly received = new Map<string, number>();
  end: StreamEnd | undefined;
  private readonly call: AdsCall;
  private readonly client: grpc.Client;

  constructor(target: ChaosTarget, port: AdsPort, token: string | undefined, node: RequestFields['node'], own = true) {
    this.client = adsClient(target, port, own);
    this.call = openAds(this.client, token);
    this.call.on('data', (response: DecodedResponse) => {
      this.received.set(response.type_url, (this.received.get(response.type_url) ?? 0) + 1);
      if (response.type_url === typeUrls.cluster) {
        const now = performance.now();
        this.clusters.clear();
        for (const name of response.names) {
          this.clusters.add(name);
          if (!this.arrivals.has(name)) this.arrivals.set(name, now);
        }
      }
      if (this.call.writable)
        this.call.write(
          encodeRequest({ type_url: response.type_url, version_info: response.version_info, response_nonce: response.nonce }),
        );
    });
    void ended(this.call, 2 ** 31 - 1).then((end) => (this.end = end));
    this.call.write(encodeRequest({ node, type_url: typeUrls.cluster }));
    this.call.write(encodeRequest({ type_url: typeUrls.listener }));
  }

  /** Has both CDS and LDS. */
  get synced(): boolean {
    return this.received.has(typeUrls.cluster) && this.received.has(typeUrls.listener);
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

/**
 * A proxy that never reads, as it is on the wire: a raw HTTP/2 stream (grpc-js's client
 * would keep reading into its own buffers) that sends its requests, then leaves every
 * response unread, so weftd's flow-control window for it fills and stays full.
 * `windowBytes` is the stream's initial HTTP/2 window (SETTINGS_INITIAL_WINDOW_SIZE, 65,535
 * by default): 0 is a window already full, into which weftd can write nothing at all.
 */
export function stalledStream(
  target: ChaosTarget,
  port: AdsPort,
  token: string | undefined,
  requests: Buffer[],
  method: AdsMethod = 'StreamAggregatedResources',
  windowBytes = 65_535,
): { close(): void } {
  const settings = { initialWindowSize: windowBytes };
  const session: ClientHttp2Session =
    port === 15010
      ? connect(`http://${target.weftdIp}:15010`, { settings })
      : connect(`https://${target.weftdIp}:15012`, { ca: target.trustBundle, servername: weftdServiceName, settings });
  session.on('error', () => undefined);
  const stream = session.request({
    ':method': 'POST',
    ':path': `/envoy.service.discovery.v3.AggregatedDiscoveryService/${method}`,
    ':authority': weftdServiceName,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
  });
  stream.on('error', () => undefined);
  for (const request of requests) {
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(request.length, 1);
    stream.write(Buffer.concat([frame, request]));
  }
  stream.pause();
  return { close: () => session.destroy() };
}
