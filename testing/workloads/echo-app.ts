// The e2e journey's sample app (image ghcr.io/weft-mesh/weft-echo, e2e/images/echo/Dockerfile):
// the same program is the server and the client.
//   gRPC Echo on PORT (8080): answers with its pod name, VERSION and the caller's SPIFFE
//     ID: behind an Istio sidecar from Envoy's x-forwarded-client-cert header; proxyless,
//     from the client certificate of the mTLS connection.
//   HTTP on CONTROL_PORT (8081): GET /healthz; GET /call?target=<gRPC target>&count=N
//     [&header=name:value ...] calls Echo N times from this pod, with those headers as
//     gRPC metadata, and returns the replies and errors as JSON.
// Proxyless (a bootstrap named by GRPC_XDS_BOOTSTRAP, as Istio's grpc-agent template sets
// it) it is an xDS-enabled server (XdsServer: the listener, mTLS and AuthorizationPolicy
// come from the control plane, plaintext when it says nothing) and its calls use xDS
// credentials (mTLS where the control plane says so). Targets may be
// xds:///<service>:<port> (proxyless) or plain names, which an Envoy sidecar captures.
//   POD_NAME, VERSION: what it reports; POD_IP or BIND_ADDRESS: where it listens (all addresses by default;
//   an xDS-enabled server asks for the listener of that address)
import { createServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { echoService } from './echo.js';

export interface EchoAppReply {
  pod: string;
  version: string;
  message: string;
  /** The caller's SPIFFE ID: from its certificate (proxyless mTLS), or from the sidecar that terminated mTLS. */
  peerSpiffeId?: string;
}

export interface CallResult {
  target: string;
  replies: EchoAppReply[];
  errors: string[];
}

const pod = process.env['POD_NAME'] ?? 'unknown';
const version = process.env['VERSION'] ?? 'unknown';
const host = process.env['BIND_ADDRESS'] ?? process.env['POD_IP'] ?? '0.0.0.0';
const grpcPort = Number(process.env['PORT'] ?? 8080);
const controlPort = Number(process.env['CONTROL_PORT'] ?? 8081);
const maxCalls = 200;
const proxyless = Boolean(process.env['GRPC_XDS_BOOTSTRAP'] ?? process.env['GRPC_XDS_BOOTSTRAP_CONFIG']);

grpcXds.register();

/** `URI=spiffe://...` of the last element of x-forwarded-client-cert (the hop nearest to us). */
function peerSpiffeIdOf(xfcc: string | undefined): string | undefined {
  const last = xfcc?.split(',').at(-1);
  return last?.match(/(?:^|;)URI=(spiffe:\/\/[^;]+)/)?.[1];
}

/** The URI SAN of the TLS peer's certificate (an xDS-enabled server under mTLS). */
function tlsPeerSpiffeId(call: grpc.ServerUnaryCall<unknown, unknown>): string | undefined {
  const san = call.getAuthContext()?.sslPeerCertificate?.subjectaltname ?? '';
  return /(?:^|,\s*)URI:(spiffe:\/\/[^,\s]+)/.exec(san)?.[1];
}

const server = proxyless ? new grpcXds.XdsServer() : new grpc.Server();
server.addService(echoService, {
  Echo: (call: grpc.ServerUnaryCall<{ message?: string }, EchoAppReply>, callback: grpc.sendUnaryData<EchoAppReply>) => {
    const xfcc = call.metadata.get('x-forwarded-client-cert')[0];
    const peerSpiffeId = proxyless ? tlsPeerSpiffeId(call) : peerSpiffeIdOf(typeof xfcc === 'string' ? xfcc : xfcc?.toString());
    callback(null, { pod, version, message: call.request.message ?? '', ...(peerSpiffeId ? { peerSpiffeId } : {}) });
  },
});

// One channel per target, kept: an xds:/// channel resolves once and then follows updates.
const clients = new Map<string, grpc.Client>();
const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
function clientFor(target: string): grpc.Client {
  let client = clients.get(target);
  if (!client) {
    // xDS credentials fall back to plaintext wherever the control plane asks for no TLS.
    const credentials = proxyless
      ? new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure())
      : grpc.credentials.createInsecure();
    client = new EchoClient(target, credentials);
    clients.set(target, client);
  }
  return client;
}

function echo(target: string, message: string, headers: Array<[string, string]>): Promise<EchoAppReply> {
  const client = clientFor(target) as unknown as Record<
    string,
    (
      request: object,
      metadata: grpc.Metadata,
      options: grpc.CallOptions,
      callback: (error: grpc.ServiceError | null, reply: EchoAppReply) => void,
    ) => void
  >;
  const metadata = new grpc.Metadata();
  for (const [name, value] of headers) metadata.add(name, value);
  return new Promise((resolve, reject) =>
    client['Echo']?.({ message }, metadata, { deadline: Date.now() + 5_000 }, (error, reply) => (error ? reject(error) : resolve(reply))),
  );
}

async function callMany(target: string, count: number, message: string, headers: Array<[string, string]>): Promise<CallResult> {
  const result: CallResult = { target, replies: [], errors: [] };
  for (let i = 0; i < count; i++) {
    try {
      result.replies.push(await echo(target, message, headers));
    } catch (error) {
      result.errors.push((error as Error).message);
    }
  }
  return result;
}

const control = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const reply = (status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  if (url.pathname === '/healthz') return reply(200, { pod, version });
  if (url.pathname !== '/call') return reply(404, { error: `no ${url.pathname}; try /call?target=...&count=N` });
  const target = url.searchParams.get('target');
  const count = Number(url.searchParams.get('count') ?? 1);
  if (!target || !Number.isInteger(count) || count < 1 || count > maxCalls)
    return reply(400, { error: `want target=<gRPC target> and count=1..${maxCalls}` });
  const headers = url.searchParams.getAll('header').map((header): [string, string] => {
    const colon = header.indexOf(':');
    if (colon < 1) return ['', ''];
    return [header.slice(0, colon).trim().toLowerCase(), header.slice(colon + 1).trim()];
  });
  if (headers.some(([name]) => !name)) return reply(400, { error: 'want header=name:value' });
  callMany(target, count, url.searchParams.get('message') ?? `from ${pod}`, headers).then(
    (result) => reply(200, result),
    (error: Error) => reply(500, { error: error.message }),
  );
});

// An XdsServer answers its bind only once the control plane sent its listener, and never
// for a pod no Service selects (the client): the control port does not wait for it.
const credentials = proxyless
  ? new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure())
  : grpc.ServerCredentials.createInsecure();
server.bindAsync(`${host}:${grpcPort}`, credentials, (error) => {
  if (error) {
    process.stderr.write(`echo-app: cannot bind ${host}:${grpcPort}: ${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`echo-app ${pod} ${version}: serving gRPC on ${host}:${grpcPort}${proxyless ? ' (xDS)' : ''}\n`);
});
control.listen(controlPort, host, () => process.stdout.write(`echo-app ${pod} ${version}: HTTP on ${host}:${controlPort}\n`));
control.on('error', (error) => {
  process.stderr.write(`echo-app: cannot serve HTTP on ${host}:${controlPort}: ${error.message}\n`);
  process.exit(1);
});

process.on('SIGTERM', () => {
  for (const client of clients.values()) client.close();
  control.close();
  server.tryShutdown(() => process.exit(0));
});
