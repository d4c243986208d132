// A tiny gRPC workload for tests, run as its own process: it binds its pod's IP,
// answers Echo with its pod name and, when asked, calls another workload first.
//   POD_NAME, POD_IP, PORT: who it is and where it serves
//   VERSION: reported in every reply (canary tests)
//   FAIL_EVERY: when n > 0, every n-th call fails with FAIL_CODE (default UNAVAILABLE):
//     2 makes a flaky backend, 1 a broken one
import * as grpc from '@grpc/grpc-js';
import { callEcho, echoService, type EchoReply, type EchoRequest } from './echo.js';

const pod = process.env['POD_NAME'] ?? 'unknown';
const version = process.env['VERSION'];
const failEvery = Number(process.env['FAIL_EVERY'] ?? '0');
const failCode = Number(process.env['FAIL_CODE'] ?? grpc.status.UNAVAILABLE);
const address = `${process.env['POD_IP'] ?? '127.0.0.1'}:${process.env['PORT'] ?? '8080'}`;
const identity = { pod, ...(version ? { version } : {}) };
let calls = 0;
const server = new grpc.Server();
server.addService(echoService, {
  Echo: async (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
    const { message, forwardTo, sleepMs } = call.request;
    calls++;
    if (failEvery > 0 && calls % failEvery === 0) {
      callback({ code: failCode, details: `${pod} fails every ${failEvery} call(s)` });
      return;
    }
    if (sleepMs) await new Promise((resolve) => setTimeout(resolve, sleepMs));
    if (!forwardTo) {
      callback(null, { ...identity, message });
      return;
    }
    callEcho(forwardTo, { message }).then(
      (forwarded) => callback(null, { ...identity, message, forwarded }),
      (error: Error) => callback({ code: grpc.status.UNAVAILABLE, details: `calling ${forwardTo}: ${error.message}` }),
    );
  },
});
server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error) {
    process.stderr.write(`echo-workload: cannot bind ${address}: ${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`serving ${address}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
