// Weft's xDS side as weftd composes it (cmd/control-plane-command.ts), alone in a
// process so that its CPU and memory are measured apart from the load generator
// and the bench: informers on the cluster named by KUBECONFIG, proxy groups, ADS
// on a plaintext port (argv[2], 0 for any).
// stdin: "stats"; stdout: JSON lines ({ready, port, startMs} once, then answers).
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { loadKubeConfig } from '../../kube/client.js';
import { serveGrpc } from '../../lib/grpc-listener.js';
import { componentLogger } from '../../lib/logger.js';
import { ProxyGroups } from '../../xds/cache/proxy-groups.js';
import { KubeMeshModel } from '../../xds/model/kube-mesh-model.js';
import { aggregatedDiscoveryService } from '../../xds/protos.js';
import { AdsServer } from '../../xds/server/ads-server.js';

const say = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`);
const started = Date.now();
const log = componentLogger('control-plane');
const groups = new ProxyGroups();
// As weftd: cluster.local, istio-system as the root namespace, statuses written, default mesh config.
const model = new KubeMeshModel(loadKubeConfig(), groups, log.child({ component: 'xds-model' }), 'cluster.local', 'istio-system', {
  writeStatus: true,
  trustDomain: 'cluster.local',
  meshConfig: { telemetry: {} },
});
await model.start();
const ads = new AdsServer(groups, log.child({ component: 'ads' }));
const server = new grpc.Server();
server.addService(aggregatedDiscoveryService(), ads.implementation());
// weftd's own listener (backlog, accepting sockets, HTTP/2 windows).
const { port } = await serveGrpc(server, grpc.ServerCredentials.createInsecure(), '127.0.0.1', Number(process.argv[2] ?? '0'));
say({ ready: true, port, startMs: Date.now() - started });

// The proxy groups' own figures, whatever this version of ProxyGroups offers.
const introspect = groups as unknown as { scopeCount?: number; stats?: () => unknown };

/** Scopes formed: from stats() when ProxyGroups has it (every numeric "...scopes" figure summed), else scopeCount. */
function scopesFormed(stats: unknown): number | undefined {
  if (stats && typeof stats === 'object') {
    const counts = Object.entries(stats).filter(([key, value]) => /scopes$/i.test(key) && typeof value === 'number');
    if (counts.length > 0) return counts.reduce((sum, [, value]) => sum + (value as number), 0);
  }
  return typeof introspect.scopeCount === 'number' ? introspect.scopeCount : undefined;
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line.trim() !== 'stats') return;
    const cpu = process.cpuUsage();
    const groupStats = typeof introspect.stats === 'function' ? introspect.stats() : undefined;
    say({ rssBytes: process.memoryUsage().rss, cpuSeconds: (cpu.user + cpu.system) / 1e6, scopes: scopesFormed(groupStats), groupStats });
  })
  // The bench went away: never outlive it.
  .on('close', () => {
    ads.close();
    server.forceShutdown();
    void model.stop().finally(() => process.exit(0));
  });
