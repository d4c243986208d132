// `weft dashboard`: weftd's dashboard (its monitoring port, /dashboard/) on a local
// port, as `istioctl dashboard` does for Kiali. Requests go through the API server's
// pod proxy, so a kubeconfig that may `get pods/proxy` in the control plane's
// namespace is all it needs; nothing listens beyond the loopback address by default.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Command } from 'commander';
import { ports } from '../api/labels.js';
import { CliError } from './cli-error.js';
import { connect, print, withConnectionOptions } from './command-options.js';
import type { ClusterConnection, ConnectionOptions } from './cluster-connection.js';
import { findControlPlanes, type WeftdPod } from './control-plane-locator.js';

interface DashboardOptions extends ConnectionOptions {
  port: string;
  address: string;
  unixSocket?: string;
}

/**
 * Serves `/dashboard/...` of one weftd pod on `address:port` (port 0: any free one), streaming each
 * answer (the page's event stream included). Resolves with the page's URL once listening.
 */
export async function startDashboardProxy(
  connection: ClusterConnection,
  pod: WeftdPod,
  listen: { address: string; port: number } | { socket: string },
): Promise<{ url: string; server: Server }> {
  const base = `${connection.server.replace(/\/+$/, '')}/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}:${ports.monitoring}/proxy`;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://local').pathname;
    if (path === '/' || !path.startsWith('/dashboard')) {
      res.writeHead(302, { location: '/dashboard/' }).end();
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    void forward(connection, `${base}${path}`, req).then(
      (upstream) => {
        res.writeHead(upstream.statusCode ?? 502, {
          'content-type': upstream.headers['content-type'] ?? 'application/octet-stream',
          'cache-control': 'no-cache',
        });
        upstream.pipe(res);
        res.on('close', () => upstream.destroy());
      },
      (error: unknown) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(
          `weft dashboard: could not reach weftd ${pod.namespace}/${pod.name} through the API server: ${error instanceof Error ? error.message : String(error)}\n`,
        );
      },
    );
  });
  const where = 'socket' in listen ? listen.socket : `${listen.address}:${listen.port}`;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new CliError(
          error.code === 'EADDRINUSE' ? `${where} is in use; pick another with --port` : `cannot listen on ${where}: ${error.message}`,
        ),
      ),
    );
    if ('socket' in listen) server.listen(listen.socket, resolve);
    else server.listen(listen.port, listen.address, resolve);
  });
  if ('socket' in listen) return { url: `unix:${listen.socket}`, server };
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  const host = listen.address.includes(':') ? `[${listen.address}]` : listen.address;
  return { url: `http://${host}:${port}/dashboard/`, server };
}

async function forward(connection: ClusterConnection, target: string, req: IncomingMessage): Promise<IncomingMessage> {
  const url = new URL(target);
  const options: https.RequestOptions = { method: 'GET', headers: { accept: req.headers.accept ?? '*/*' } };
  await connection.config.applyToHTTPSOptions(options);
  const transport = url.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const upstream = transport.request(url, options, resolve);
    upstream.on('error', reject);
    req.on('close', () => upstream.destroy());
    upstream.end();
  });
}

export function registerDashboardCommand(program: Command): void {
  withConnectionOptions(program.command('dashboard'))
    .description("the mesh as a live graph in your browser: weftd's dashboard on a local port, through the API server")
    .option('--port <port>', 'local port (0: any free one)', '15000')
    .option('--address <address>', 'local address to listen on', '127.0.0.1')
    .option('--unix-socket <path>', 'listen on this unix socket instead (how `weft dev dashboard` reaches a sandboxed cluster)')
    .action(async (options: DashboardOptions) => {
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new CliError(`--port must be a port number, not ${options.port}`);
      const connection = connect(options);
      const pod = (await findControlPlanes(connection)).flatMap((plane) => plane.pods)[0];
      if (!pod) throw new CliError('no weftd pod is running; see `weft status`');
      const { url, server } = await startDashboardProxy(
        connection,
        pod,
        options.unixSocket ? { socket: options.unixSocket } : { address: options.address, port },
      );
      print(`weftd ${pod.namespace}/${pod.name}'s dashboard: ${url}\n(Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => {
        for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve());
      });
      // Open event streams and keep-alive connections would keep serving (and this process alive) after close().
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      process.exit(0);
    });
}
