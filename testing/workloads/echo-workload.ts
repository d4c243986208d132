// A tiny gRPC workload for tests, run as its own process: it binds its pod's IP,
// answers Echo with its pod name and, when asked, calls another workload first.
//   POD_NAME, POD_IP, PORT: who it is and where it serves
import * as grpc from '@grpc/grpc-js';
import { callEcho, echoService, type EchoReply, type EchoRequest } from './echo.js';

const pod = process.env['POD_NAME'] ?? 'unknown';
const address = `${process.env['POD_IP'] ?? '127.0.0.1'}:${process.env['PORT'] ?? '8080'}`;
const server = new grpc.Server();
server.addService(echoService, {
  Echo: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
    const { message, forwardTo } = call.request;
    if (!forwardTo) {
      callback(null, { pod, message });
      return;
    }
    callEcho(forwardTo, { message }).then(
      (forwarded) => callback(null, { pod, message, forwarded }),
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
