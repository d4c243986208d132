// A worker thread of the chaos's proxy fleet (proxy-fleet.ts): runs its share of
// well-behaved sidecars and says, at most every 100 ms, how many are synced.
import { parentPort } from 'node:worker_threads';
import type { ChaosTarget } from './chaos-target.js';
import type { FleetReply, FleetRequest } from './proxy-fleet.js';
import { WellBehavedProxy, type AdsPort } from './xds-clients.js';

const port = parentPort;
if (!port) throw new Error('proxy-fleet-worker.ts runs only as a worker thread');
const reply = (message: FleetReply) => port.postMessage(message);
let proxies: Array<{ index: number; port: AdsPort; proxy: WellBehavedProxy }> = [];
let last = -1;
const ticker = setInterval(() => {
  const byPort: Record<AdsPort, number> = { 15010: 0, 15012: 0 };
  for (const p of proxies) if (p.proxy.synced) byPort[p.port]++;
  const count = byPort[15010] + byPort[15012];
  if (count !== last) reply({ type: 'synced', count, byPort });
  last = count;
}, 100);

port.on('message', (request: FleetRequest) => {
  if (request.type === 'start') {
    // Only the weftd address and trust bundle travel to a worker; that is all a proxy uses.
    const target = request.target as ChaosTarget;
    proxies = request.members.map((m) => ({ index: m.index, port: m.port, proxy: new WellBehavedProxy(target, m.port, m.token, m.node) }));
  } else if (request.type === 'report') {
    reply({ type: 'report', notSynced: proxies.filter((p) => !p.proxy.synced).map((p) => ({ index: p.index, end: p.proxy.end })) });
  } else {
    clearInterval(ticker);
    for (const { proxy } of proxies) proxy.close();
    proxies = [];
    reply({ type: 'closed' });
    port.close();
  }
});
