// Where a grpc-js server takes its connections, so that a storm of proxies connecting at once
// is accepted as istiod's Go listener accepts it, and large requests are read as fast as Go's
// gRPC server reads them.
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type * as http2 from 'node:http2';
import * as net from 'node:net';

/**
 * HTTP/2 receive window (bytes) per stream and per connection: Istio's own gRPC clients' setting
 * (`defaultInitialWindowSize`, `defaultInitialConnWindowSize` in `pilot/pkg/grpc/grpc.go`; Go's
 * server grows its window to 16 MiB by BDP estimation). grpc-js servers keep HTTP/2's 64 KiB, so a
 * 2 MiB DiscoveryRequest took 32 WINDOW_UPDATE round trips, each an event loop turn of a busy weftd
 * (ten 2.2 MiB requests: 24 s with 40 ms turns; 0.7 s with this window).
 */
export const receiveWindowBytes = 1 << 20;

/**
 * Listening sockets per port (SO_REUSEPORT). libuv accepts one connection per listening socket per
 * event loop turn (libuv/libuv#3696), so a weftd busy building first configs took a turn per proxy
 * to accept 1,000 connecting at once.
 */
export const listenersPerPort = 8;

/** The kernel's accept queue limit, used as the backlog as Go's `net.Listen` does (Node's default is 511). */
export function systemBacklog(): number {
  try {
    const value = Number.parseInt(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim(), 10);
    return Number.isFinite(value) && value > 0 ? value : 4096;
  } catch {
    return 4096;
  }
}

export interface GrpcListener {
  /** The bound port (the one asked for, or the kernel's choice for 0). */
  readonly port: number;
  /** Stops accepting connections at once and ends the injector's sessions; the server's own shutdown ends its calls. */
  close(): void;
}

/**
 * Serves `server` on `host:port` (port 0: any free port) with `credentials`, instead of
 * `server.bindAsync`: `listenersPerPort` sockets with SO_REUSEPORT (Linux; elsewhere one), each
 * with the kernel's backlog (`systemBacklog()`), connections handed to grpc-js by its connection
 * injector; every HTTP/2 session's receive windows are `receiveWindowBytes`. `onError` hears
 * errors of an accepting socket after it listens (EMFILE in a storm), which would otherwise be
 * thrown; the socket goes on accepting.
 *
 * Rejects with the listen error (EADDRINUSE names the port), leaving nothing listening. A port
 * another socket holds is refused even though ours share theirs: a first bind without
 * SO_REUSEPORT checks it. (A process of the same user could still join the port afterwards; a
 * pod's network namespace holds only its own containers.) Before this, 1,000 proxies connecting
 * to a busy weftd overflowed Node's 511-connection accept queue and the kernel reset the rest
 * (`read ECONNRESET`), leaving them in their client's reconnect back-off.
 */
export async function serveGrpc(
  server: grpc.Server,
  credentials: grpc.ServerCredentials,
  host: string,
  port: number,
  onError: (error: Error) => void = () => undefined,
): Promise<GrpcListener> {
  enlargeReceiveWindows(server);
  const backlog = systemBacklog();
  const reusePort = process.platform === 'linux';
  const listen = (portToBind: number, share: boolean, handle?: (socket: net.Socket) => void) =>
    new Promise<net.Server>((resolve, reject) => {
      const listener = net.createServer(handle);
      listener.once('error', reject);
      listener.listen({ host, port: portToBind, backlog, reusePort: share }, () => {
        listener.off('error', reject);
        listener.on('error', onError);
        resolve(listener);
      });
    });
  // Without SO_REUSEPORT, so that a port already taken fails here rather than being shared.
  if (reusePort && port !== 0) (await listen(port, false)).close();
  const injector = server.createConnectionInjector(credentials);
  const accept = (socket: net.Socket) => injector.injectConnection(socket);
  const listeners: net.Server[] = [];
  const close = () => {
    for (const listener of listeners) listener.close();
    injector.destroy();
  };
  try {
    listeners.push(await listen(port, reusePort, accept));
    const bound = (listeners[0]?.address() as net.AddressInfo).port;
    for (let i = 1; reusePort && i < listenersPerPort; i++) listeners.push(await listen(bound, true, accept));
    return { port: bound, close };
  } catch (error) {
    close();
    throw error;
  }
}

const enlarged = new WeakSet<grpc.Server>();

/**
 * grpc-js has no option for its server's HTTP/2 windows; each of its HTTP/2 servers (one per
 * listener or injector) is made by `createHttp2Server` (grpc-js 1.14), which this wraps to
 * enlarge every session's windows as it starts. `grpc-listener.test.ts` fails if that goes.
 */
function enlargeReceiveWindows(server: grpc.Server): void {
  if (enlarged.has(server)) return;
  enlarged.add(server);
  const internal = server as unknown as { createHttp2Server?: (credentials: grpc.ServerCredentials) => http2.Http2Server };
  const create = internal.createHttp2Server?.bind(server);
  if (!create) throw new Error('grpc-js Server.createHttp2Server is gone: update lib/grpc-listener.ts for this grpc-js version');
  internal.createHttp2Server = (serverCredentials) => {
    const http2Server = create(serverCredentials);
    // In the first SETTINGS frame (merged with grpc-js's own settings); the connection's window takes a WINDOW_UPDATE.
    http2Server.updateSettings({ initialWindowSize: receiveWindowBytes });
    http2Server.on('session', (session: http2.ServerHttp2Session) => {
      if (session.destroyed) return;
      try {
        session.setLocalWindowSize(receiveWindowBytes);
      } catch {
        // A session destroyed meanwhile has no window to set.
      }
    });
    return http2Server;
  };
}
