// `make demo`'s sample application, shaped like Istio's bookinfo and run as proxyless
// gRPC workloads (image ghcr.io/weft-mesh/weft-bookinfo, behind local-grpc-agent.ts on
// the embedded cluster). One program plays each part, by SERVICE:
//   productpage  calls details and reviews for every page;
//   reviews      v1 answers alone, v2 and v3 call ratings (v3 "shows red stars");
//   details, ratings answer;
//   loadgen      asks productpage for a page RATE times a second, forever, and logs
//                what it got every 10 s (pages by the reviews version that served them).
// Servers speak the Echo service (echo.ts) on PORT (9080) as xDS-enabled servers
// (listener, mTLS and AuthorizationPolicy from the control plane); every call goes
// through xDS (`xds:///<service>.<namespace>.svc.cluster.local:9080`) with xDS credentials.
// GET /healthz on CONTROL_PORT (9081) for the readiness probe.
//   env: SERVICE, VERSION, POD_NAME, POD_NAMESPACE, POD_IP, RATE (loadgen, default 10)
import { createServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { echoService, type EchoReply } from './echo.js';

const service = process.env['SERVICE'] ?? 'details';
const version = process.env['VERSION'] ?? 'v1';
const pod = process.env['POD_NAME'] ?? service;
const namespace = process.env['POD_NAMESPACE'] ?? 'bookinfo';
const host = process.env['POD_IP'] ?? '0.0.0.0';
const port = Number(process.env['PORT'] ?? 9080);
const controlPort = Number(process.env['CONTROL_PORT'] ?? 9081);
const rate = Number(process.env['RATE'] ?? 10);

grpcXds.register();

const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');
const clients = new Map<string, grpc.Client>();
function call(target: string, message: string): Promise<EchoReply> {
  const url = `xds:///${target}.${namespace}.svc.cluster.local:${port}`;
  let client = clients.get(url);
  if (!client) clients.set(url, (client = new EchoClient(url, new grpcXds.XdsChannelCredentials(grpc.credentials.createInsecure()))));
  const echo = (client as unknown as Record<string, unknown>)['Echo'] as (
    request: object,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply: EchoReply) => void,
  ) => void;
  return new Promise((resolve, reject) =>
    echo.call(client, { message }, { deadline: Date.now() + 3_000 }, (error, reply) => (error ? reject(error) : resolve(reply))),
  );
}

/** What this part answers: its own name and version, and what it heard downstream (a page in bookinfo's terms). */
async function answer(message: string): Promise<string> {
  const settled = async (target: string) =>
    call(target, message).then(
      (reply) => `${target}:${reply.version}`,
      (error: grpc.ServiceError) => `${target}:unavailable(${grpc.status[error.code] ?? error.code})`,
    );
  if (service === 'productpage')
    return [`productpage:${version}`, ...(await Promise.all([settled('details'), settled('reviews')]))].join(' ');
  if (service === 'reviews' && version !== 'v1') return `reviews:${version} ${await settled('ratings')}`;
  return `${service}:${version}`;
}

const control = createServer((request, response) => {
  response.writeHead(request.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ service, version, pod }));
});
control.listen(controlPort, host);

if (service === 'loadgen') {
  // Pages by what served them, logged every 10 s: the demo's traffic, visible without any tool.
  let pages = new Map<string, number>();
  setInterval(() => {
    call('productpage', `page from ${pod}`).then(
      (reply) => {
        const reviews = /reviews:(v\d|unavailable\([A-Z_]+\))/.exec(reply.message)?.[1] ?? 'none';
        pages.set(`reviews ${reviews}`, (pages.get(`reviews ${reviews}`) ?? 0) + 1);
      },
      (error: grpc.ServiceError) => pages.set(`error ${grpc.status[error.code]}`, (pages.get(`error ${grpc.status[error.code]}`) ?? 0) + 1),
    );
  }, 1000 / rate);
  setInterval(() => {
    process.stdout.write(`loadgen: last 10 s ${JSON.stringify(Object.fromEntries([...pages].sort()))}\n`);
    pages = new Map();
  }, 10_000);
} else {
  const server = new grpcXds.XdsServer();
  server.addService(echoService, {
    Echo: (call: grpc.ServerUnaryCall<{ message?: string }, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
      answer(call.request.message ?? '').then(
        (message) => callback(null, { pod, version, message }),
        (error: Error) => callback({ code: grpc.status.INTERNAL, details: error.message }),
      );
    },
  });
  // An XdsServer answers its bind once the control plane sent its listener.
  server.bindAsync(`${host}:${port}`, new grpcXds.XdsServerCredentials(grpc.ServerCredentials.createInsecure()), (error) => {
    if (error) {
      process.stderr.write(`bookinfo ${service}: cannot bind ${host}:${port}: ${error.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`bookinfo ${service} ${version} (${pod}): serving on ${host}:${port} (xDS)\n`);
  });
  process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
}
process.on('SIGTERM', () => {
  for (const client of clients.values()) client.close();
  control.close();
  if (service === 'loadgen') process.exit(0);
});
