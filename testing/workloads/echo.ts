// The Echo protocol of the test workloads: JSON over gRPC, so no .proto is needed.
import * as grpc from '@grpc/grpc-js';

export interface EchoRequest {
  message: string;
  forwardTo?: string;
  /** The workload waits this long before answering (timeouts). */
  sleepMs?: number;
}
export interface EchoReply {
  pod: string;
  /** The workload's VERSION (v1, v2: canaries). */
  version?: string;
  message: string;
  forwarded?: EchoReply;
}

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString()),
};
export const echoService: grpc.ServiceDefinition = {
  Echo: {
    path: '/weft.testing.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

export function callEcho(target: string, request: EchoRequest): Promise<EchoReply> {
  const Client = grpc.makeGenericClientConstructor(echoService, 'Echo');
  const client = new Client(target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client['Echo']?.(request, { deadline: Date.now() + 5_000 }, (error: grpc.ServiceError | null, reply: EchoReply) => {
      client.close();
      if (error) reject(error);
      else resolve(reply);
    });
  });
}
