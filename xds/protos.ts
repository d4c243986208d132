// Envoy's xDS protos, from the copy inside @grpc/grpc-js-xds (the design names
// @envoyproxy/protos, which is not published). One protobufjs Root for encoding
// resources once, and the ADS service definition for the gRPC server.
import { isUtf8 } from 'node:buffer';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { checkedDeserializer } from './server/request-wire-check.js';

const require = createRequire(import.meta.url);
const depsDir = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
export const protoIncludeDirs = [
  ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((dir) => join(depsDir, dir)),
  // google/protobuf/descriptor.proto and friends ship with protobufjs.
  dirname(require.resolve('protobufjs/package.json')),
];

export const typeUrls = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;

const resourceFiles = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/config/trace/v3/zipkin.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/network/mongo_proxy/v3/mongo_proxy.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
];

let root: protobuf.Root | undefined;

/** All the Envoy types Weft emits, loaded once. */
export function envoyRoot(): protobuf.Root {
  if (root) return root;
  const loaded = new protobuf.Root();
  loaded.resolvePath = (_origin, target) => {
    for (const dir of protoIncludeDirs) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  loaded.loadSync(resourceFiles, { keepCase: true });
  loaded.resolveAll();
  root = loaded;
  return loaded;
}

export function typeOf(typeUrl: string): protobuf.Type {
  return envoyRoot().lookupType(typeUrl.replace(/^type\.googleapis\.com\//, ''));
}

/** Encodes a resource given as a plain object (proto field names); refuses objects that do not fit the type. */
export function encodeResource(typeUrl: string, resource: Record<string, unknown>): Buffer {
  const type = typeOf(typeUrl);
  const message = type.fromObject(resource);
  const problem = type.verify(message);
  if (problem) throw new Error(`${typeUrl}: ${problem}`);
  return Buffer.from(type.encode(message).finish());
}

/** An Any: the form resources and typed configs travel in. */
export function any(typeUrl: string, message: Record<string, unknown>): { type_url: string; value: Buffer } {
  const value = encodeResource(typeUrl, message);
  // JSON (content keys, digests) shows the bytes as base64: Buffer's own toJSON (an array of numbers) is slow and large.
  return Object.defineProperty({ type_url: typeUrl, value }, 'toJSON', {
    value: () => ({ type_url: typeUrl, value: value.toString('base64') }),
  });
}

let adsDefinition: grpc.ServiceDefinition | undefined;

export function aggregatedDiscoveryService(): grpc.ServiceDefinition {
  if (!adsDefinition) {
    const definition = loadSync('envoy/service/discovery/v3/ads.proto', {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: false,
      includeDirs: protoIncludeDirs,
    });
    const service = definition['envoy.service.discovery.v3.AggregatedDiscoveryService'] as grpc.ServiceDefinition;
    adsDefinition = {
      ...service,
      StreamAggregatedResources: {
        ...(service['StreamAggregatedResources'] as grpc.MethodDefinition<unknown, unknown>),
        responseSerialize: serializeResponse,
        requestDeserialize: deserializeRequest(
          (service['StreamAggregatedResources'] as grpc.MethodDefinition<unknown, unknown>).requestDeserialize,
        ),
      },
      DeltaAggregatedResources: {
        ...(service['DeltaAggregatedResources'] as grpc.MethodDefinition<unknown, unknown>),
        responseSerialize: serializeDeltaResponse,
        requestDeserialize: checkedDeserializer(
          deltaDiscoveryRequest,
          (service['DeltaAggregatedResources'] as grpc.MethodDefinition<unknown, unknown>).requestDeserialize,
        ),
      },
    };
  }
  return adsDefinition;
}

// Responses are assembled from each resource's encoding, made once and shared by every stream
// that sends it: protobuf messages concatenate, and a repeated field's entries append. Thousands
// of proxies receiving the same clusters cost one encoding, then copies.
const resourceParts = new WeakMap<object, Buffer>();
const discoveryResponse = () => typeOf('type.googleapis.com/envoy.service.discovery.v3.DiscoveryResponse');
const discoveryRequest = () => typeOf('type.googleapis.com/envoy.service.discovery.v3.DiscoveryRequest');
const deltaDiscoveryRequest = () => typeOf('type.googleapis.com/envoy.service.discovery.v3.DeltaDiscoveryRequest');
const deltaDiscoveryResponse = () => typeOf('type.googleapis.com/envoy.service.discovery.v3.DeltaDiscoveryResponse');
const encodeFields = (type: protobuf.Type, fields: Record<string, unknown>) => Buffer.from(type.encode(type.fromObject(fields)).finish());

function part(key: object, encode: () => Buffer): Buffer {
  let bytes = resourceParts.get(key);
  if (!bytes) {
    bytes = encode();
    resourceParts.set(key, bytes);
  }
  return bytes;
}

/** A SotW DiscoveryResponse: version, each resource's cached encoding as an entry of `resources`, type and nonce. */
function serializeResponse(value: unknown): Buffer {
  const { resources = [], ...rest } = value as { resources?: Array<{ type_url: string; value: Buffer }> };
  const type = discoveryResponse();
  const { version_info, ...tail } = rest as Record<string, unknown>;
  return Buffer.concat([
    encodeFields(type, { version_info }),
    ...resources.map((resource) => part(resource, () => encodeFields(type, { resources: [resource] }))),
    encodeFields(type, tail),
  ]);
}

/** A DeltaDiscoveryResponse, assembled the same way (each Resource's encoding is cached by its Any, whose name and version it carries). */
function serializeDeltaResponse(value: unknown): Buffer {
  const { resources = [], ...rest } = value as {
    resources?: Array<{ name: string; version: string; resource: { type_url: string; value: Buffer } }>;
  };
  const type = deltaDiscoveryResponse();
  const { system_version_info, ...tail } = rest as Record<string, unknown>;
  return Buffer.concat([
    encodeFields(type, { system_version_info }),
    ...resources.map((resource) => {
      const cached = deltaResourceParts.get(resource.resource);
      // The same Any is always sent under one name and version (both follow its bytes); check cheaply anyway.
      if (cached && deltaParts.get(cached) === `${resource.name}\u0000${resource.version}`) return cached;
      const bytes = encodeFields(type, { resources: [resource] });
      deltaResourceParts.set(resource.resource, bytes);
      deltaParts.set(bytes, `${resource.name}\u0000${resource.version}`);
      return bytes;
    }),
    encodeFields(type, tail),
  ]);
}
const deltaResourceParts = new WeakMap<object, Buffer>();
const deltaParts = new WeakMap<Buffer, string>();

/**
 * A SotW DiscoveryRequest. An ACK repeats every name it subscribes to (thousands
 * for EDS), and is usually the same list as before: the names stay undecoded
 * bytes (`resource_names_bytes`) that the stream compares with the last ones,
 * decoded only when read. Requests with a node or an error (the first one, NACKs)
 * take the full decoder.
 */
function deserializeRequest(decode: (bytes: Buffer) => unknown): (bytes: Buffer) => unknown {
  // Anything off the fast path is checked field by field first (a wrong wire type becomes { malformed }, naming the field).
  const full = checkedDeserializer(discoveryRequest, decode);
  return (bytes: Buffer) => {
    try {
      return fastRequest(bytes, full);
    } catch {
      // A truncated or mistyped field the fast reader tripped on: the checked path names it.
      return full(bytes);
    }
  };
}

/** Fields 1, 3, 4 and 5 read directly (names kept as bytes); anything else, or text that is not UTF-8, takes `full`. */
function fastRequest(bytes: Buffer, full: (bytes: Buffer) => unknown): unknown {
  const reader = protobuf.Reader.create(bytes);
  const fields: Record<string, unknown> = {};
  // The names' bytes, one slice when they are contiguous (as clients write them), else gathered.
  let first = -1;
  let last = -1;
  let scattered: Array<[number, number]> | undefined;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    // Every field read here is length-delimited; any other wire type goes to the checked path.
    if ((tag & 7) !== 2) return full(bytes);
    if (field === 1 || field === 4 || field === 5) {
      const text = reader.bytes();
      if (!isUtf8(text)) return full(bytes);
      fields[field === 1 ? 'version_info' : field === 4 ? 'type_url' : 'response_nonce'] = Buffer.from(
        text.buffer,
        text.byteOffset,
        text.byteLength,
      ).toString('utf8');
    } else if (field === 3) {
      const start = reader.pos - 1;
      reader.skipType(tag & 7);
      if (first < 0) first = start;
      else if (start !== last) scattered ??= [[first, last]];
      if (scattered && scattered.at(-1)?.[1] !== reader.pos) scattered.push([start, reader.pos]);
      last = reader.pos;
    } else return full(bytes);
  }
  const namesBytes =
    first < 0 ? Buffer.alloc(0) : scattered ? Buffer.concat(scattered.map(([a, b]) => bytes.subarray(a, b))) : bytes.subarray(first, last);
  let names: string[] | undefined;
  return Object.defineProperties(fields, {
    resource_names_bytes: { value: namesBytes, enumerable: false },
    resource_names: {
      enumerable: true,
      get: () => {
        if (!names) {
          // namesBytes holds whole field-3 entries (tag and length included).
          const r = protobuf.Reader.create(namesBytes);
          names = [];
          while (r.pos < r.len) {
            r.uint32();
            names.push(r.string());
          }
        }
        return names;
      },
    },
  });
}
