// The chaos's fleet of well-behaved sidecars (thousands at full size), run in worker
// threads of their own when the chaos runs compiled (`make chaos`). In the chaos's
// own thread, 2,000 clients decoding every push held its event loop 5 to 13 s, and
// that loop is the one timing the abuse cases and the steady proxies' pushes: the
// figures measured the harness as much as weftd. The short version under Jest (.ts
// sources a worker cannot load) keeps its few proxies in process.
import { Worker } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import type { ChaosTarget } from './chaos-target.js';
import { WellBehavedProxy, type AdsPort, type RequestFields, type StreamEnd } from './xds-clients.js';

/** One proxy of the fleet: the port it connects to, its token (15012), its node. */
export interface FleetMember {
  port: AdsPort;
  token: string | undefined;
  node: RequestFields['node'];
}

/** What a fleet worker is told and tells: see proxy-fleet-worker.ts. */
export type FleetRequest =
  | { type: 'start'; target: Pick<ChaosTarget, 'weftdIp' | 'trustBundle'>; members: Array<FleetMember & { index: number }> }
  | { type: 'report' }
  | { type: 'close' };
export type FleetReply =
  | { type: 'synced'; count: number; byPort: Record<AdsPort, number> }
  | { type: 'report'; notSynced: Array<{ index: number; end: StreamEnd | undefined }> }
  | { type: 'closed' };

export interface Fleet {
  /** Proxies that have both CDS and LDS (as of the workers' last word, at most 100 ms old), or those on `port`. */
  synced(port?: AdsPort): number;
  /** Each proxy without CDS and LDS, with how its stream ended if it did, by member index. */
  notSynced(): Promise<string[]>;
  /** Closes every proxy's stream and connection, and the workers. */
  close(): Promise<void>;
}

const unsynced = (index: number, end: StreamEnd | undefined) =>
  `fleet-${index}: ${end ? `${grpc.status[end.code]}: ${end.details}` : 'no CDS and LDS yet'}`;

/**
 * Connects `members` to weftd, each with its own HTTP/2 connection, in `workers` worker
 * threads (members dealt round-robin) when this module runs compiled, else in this thread.
 * Resolves once every worker has started its proxies (not once they are synced).
 */
export async function startFleet(target: ChaosTarget, members: FleetMember[], workers: number): Promise<Fleet> {
  const workerUrl = new URL('./proxy-fleet-worker.js', import.meta.url);
  if (workers < 1 || !import.meta.url.endsWith('.js')) return inProcessFleet(target, members);
  const threads = Array.from({ length: Math.min(workers, members.length) }, () => new Worker(workerUrl));
  const syncedBy = threads.map(() => ({ count: 0, byPort: { 15010: 0, 15012: 0 } as Record<AdsPort, number> }));
  threads.forEach((thread, t) => {
    thread.on('message', (reply: FleetReply) => {
      if (reply.type === 'synced') syncedBy[t] = { count: reply.count, byPort: reply.byPort };
    });
    thread.on('error', (error) => process.stderr.write(`[chaos] fleet worker ${t} failed: ${error.message}\n`));
    const own = members.map((member, index) => ({ ...member, index })).filter((m) => m.index % threads.length === t);
    thread.postMessage({
      type: 'start',
      target: { weftdIp: target.weftdIp, trustBundle: target.trustBundle },
      members: own,
    } satisfies FleetRequest);
  });
  const ask = <T extends FleetReply['type']>(thread: Worker, request: FleetRequest, answer: T) =>
    new Promise<Extract<FleetReply, { type: T }>>((resolve, reject) => {
      const onMessage = (reply: FleetReply) => {
        if (reply.type !== answer) return;
        thread.off('message', onMessage);
        resolve(reply as Extract<FleetReply, { type: T }>);
      };
      thread.on('message', onMessage);
      thread.once('exit', () => reject(new Error('fleet worker exited')));
      thread.postMessage(request);
    });
  return {
    synced: (port) => syncedBy.reduce((sum, n) => sum + (port ? n.byPort[port] : n.count), 0),
    notSynced: async () => {
      const reports = await Promise.all(threads.map((thread) => ask(thread, { type: 'report' }, 'report')));
      return reports
        .flatMap((r) => r.notSynced)
        .sort((a, b) => a.index - b.index)
        .map((p) => unsynced(p.index, p.end));
    },
    close: async () => {
      await Promise.all(threads.map((thread) => ask(thread, { type: 'close' }, 'closed').catch(() => undefined)));
      await Promise.all(threads.map((thread) => thread.terminate()));
    },
  };
}

function inProcessFleet(target: ChaosTarget, members: FleetMember[]): Fleet {
  const proxies = members.map((m) => new WellBehavedProxy(target, m.port, m.token, m.node));
  return {
    synced: (port) => proxies.filter((p, i) => p.synced && (!port || members[i]?.port === port)).length,
    notSynced: () => Promise.resolve(proxies.flatMap((p, i) => (p.synced ? [] : [unsynced(i, p.end)]))),
    close: () => {
      for (const p of proxies) p.close();
      return Promise.resolve();
    },
  };
}
