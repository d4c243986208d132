// The dashboard's HTTP side, on weftd's monitoring port (15014) beside /debug: the
// page and its script (built by `make build` into dist/dashboard/ui; nothing is
// fetched from the internet), the graph as JSON, and the same graph as server-sent
// events whenever it changes. Read-only, like istiod's ControlZ; `weft dashboard`
// reaches it through the API server's pod proxy, so every URL here is relative.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { MeshGraph } from './mesh-graph.js';

export interface DashboardOptions {
  graph: () => MeshGraph;
  /** How often the event stream looks for a change, in ms. */
  intervalMs?: number;
  /** Most event streams open at once; more get 503 (each holds a timer and a socket). */
  maxStreams?: number;
  /** Where the built page lives (default: dist/dashboard/ui next to this module). */
  assetsDir?: string;
}

const assets: Record<string, string> = {
  '/dashboard/': 'index.html',
  '/dashboard/app.js': 'app.js',
  '/dashboard/style.css': 'style.css',
};
const contentTypes: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/** A request handler for `/dashboard...`: true when it answered (any other path is left to the caller). */
export function dashboardRoutes(options: DashboardOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const dir = options.assetsDir ?? fileURLToPath(new URL('./ui/', import.meta.url));
  const intervalMs = options.intervalMs ?? 2_000;
  const maxStreams = options.maxStreams ?? 50;
  let streams = 0;
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://weft.local').pathname;
    if (!path.startsWith('/dashboard')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return true;
    }
    if (path === '/dashboard') {
      res.writeHead(302, { location: 'dashboard/' }).end();
      return true;
    }
    const asset = assets[path];
    if (asset) {
      let body: Buffer;
      try {
        body = readFileSync(`${dir}/${asset}`);
      } catch {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`the dashboard's ${asset} is not built; run 'make build'\n`);
        return true;
      }
      res.writeHead(200, {
        'content-type': contentTypes[asset.split('.').at(-1) ?? ''] ?? 'application/octet-stream',
        'cache-control': 'no-cache',
      });
      res.end(body);
      return true;
    }
    if (path === '/dashboard/api/graph') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(options.graph()));
      return true;
    }
    if (path === '/dashboard/api/events') {
      if (streams >= maxStreams) {
        res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5' }).end(`more than ${maxStreams} dashboards open\n`);
        return true;
      }
      streams++;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.write(`retry: ${intervalMs}\n\n`);
      let last = '';
      let quiet = 0;
      const send = () => {
        const graph = JSON.stringify(options.graph());
        if (graph !== last) {
          last = graph;
          quiet = 0;
          res.write(`event: graph\ndata: ${graph}\n\n`);
        } else if (++quiet * intervalMs >= 15_000) {
          // A comment now and then, so proxies on the way (the API server's) keep the stream open.
          quiet = 0;
          res.write(': still here\n\n');
        }
      };
      send();
      const timer = setInterval(send, intervalMs);
      req.on('close', () => {
        clearInterval(timer);
        streams--;
      });
      return true;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`no ${path}; the dashboard is at /dashboard/\n`);
    return true;
  };
}
