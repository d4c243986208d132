// The server side of the xDS benchmark, a process of its own so that its CPU and
// memory are measured alone: a synthetic mesh of N services served over ADS.
// stdin commands: "churn" (move one service's endpoints), "stats"; answers on stdout as JSON lines.
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { componentLogger } from '../../lib/logger.js';
import { ProxyGroups } from '../../xds/cache/proxy-groups.js';
import type { MeshModel } from '../../xds/model/mesh-model.js';
import { aggregatedDiscoveryService } from '../../xds/protos.js';
import { AdsServer } from '../../xds/server/ads-server.js';

const services = Number(process.argv[2] ?? 1000);
const model: MeshModel = {
  clusterDomain: 'cluster.local',
  services: Array.from({ length: services }, (_, i) => ({
    name: `svc-${i}`,
    namespace: `ns-${i % 50}`,
    ports: [{ name: 'grpc', port: 8080, protocol: 'TCP' }],
    endpoints: [0, 1, 2].map((e) => ({ address: `10.244.${(i * 3 + e) >> 8}.${(i * 3 + e) & 255}`, ports: { grpc: 8080 } })),
  })),
};
// The real per-proxy path: snapshots per proxy scope, regenerated on change.
const groups = new ProxyGroups();
groups.update(model);
const ads = new AdsServer(groups, componentLogger('xds-bench'));
const server = new grpc.Server({ 'grpc.max_concurrent_streams': 100_000 });
server.addService(aggregatedDiscoveryService(), ads.implementation());
const say = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`);

server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  say({ port });
});

let churns = 0;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'churn') {
    churns++;
    const service = model.services[churns % model.services.length];
    if (service) service.endpoints[0] = { address: `10.245.${churns >> 8}.${churns & 255}`, ports: { grpc: 8080 } };
    const changed = groups.update(model);
    say({ churned: churns, changed: changed.length });
  } else if (line === 'stats') {
    const cpu = process.cpuUsage();
    say({ rssBytes: process.memoryUsage().rss, cpuSeconds: (cpu.user + cpu.system) / 1e6, proxies: ads.status().length });
  }
});
