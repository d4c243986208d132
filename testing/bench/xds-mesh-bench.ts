// The xDS benchmark that looks like a real mesh: on the real local cluster, a mesh
// of Services, Deployments (kwok pods), VirtualServices, DestinationRules,
// AuthorizationPolicies and PeerAuthentications; thousands of simulated proxies
// (Envoy sidecars and proxyless gRPC, SotW and Delta) in a Go load generator; and
// Weft's xDS server, then istiod, each in its own process against the same mesh
// and the same load. Prints one table with both servers' figures and their ratio.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ensureClusterBinaries, ensurePilotDiscovery } from '../cluster/binaries.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import { insideSandbox } from '../sandbox/network-sandbox.js';
import {
  EndpointWatch,
  clusterOf,
  createMesh,
  hostOf,
  listPods,
  namespaceOf,
  proxiesOf,
  scaleDeployment,
  shiftWeights,
  virtualServiceIndexes,
  type MeshSize,
  type ProxyDescription,
} from './bench-mesh.js';
import { processUsage, startIstiod } from './istiod-process.js';
import { XdsLoadClient, type Answer } from './xds-load-client.js';
import { ensureXdsLoad } from './xds-load-binary.js';

/** Sizes and bounds, from the environment (`make bench-ceiling` sets bigger ones). */
export interface MeshBenchOptions {
  size: MeshSize;
  endpointChanges: number;
  routeChanges: number;
  servers: Array<'weft' | 'istiod'>;
  syncTimeoutMs: number;
  changeTimeoutMs: number;
  streamsPerConnection: number;
}

const env = (name: string, fallback: number): number => {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && process.env[name] !== '' && process.env[name] !== undefined ? value : fallback;
};

/** The mesh by default: 1,000 Services in 50 namespaces, 2,000 sidecars and 200 proxyless gRPC clients. */
export function meshBenchOptionsFromEnv(): MeshBenchOptions {
  const services = env('WEFT_BENCH_SERVICES', 1000);
  const namespaces = env('WEFT_BENCH_NAMESPACES', Math.min(50, services));
  return {
    size: {
      services,
      namespaces,
      replicas: env('WEFT_BENCH_REPLICAS', 2),
      virtualServices: env('WEFT_BENCH_VIRTUAL_SERVICES', Math.round(services / 10)),
      authorizationPolicies: env('WEFT_BENCH_AUTHORIZATION_POLICIES', namespaces),
      grpcClients: env('WEFT_BENCH_GRPC_CLIENTS', Math.round(services / 5)),
    },
    endpointChanges: env('WEFT_BENCH_ENDPOINT_CHANGES', 50),
    routeChanges: env('WEFT_BENCH_VS_CHANGES', 20),
    servers: (process.env['WEFT_BENCH_SERVERS'] ?? 'weft,istiod')
      .split(',')
      .map((s) => s.trim())
      .filter((s): s is 'weft' | 'istiod' => s === 'weft' || s === 'istiod'),
    syncTimeoutMs: env('WEFT_BENCH_SYNC_TIMEOUT_S', 600) * 1000,
    changeTimeoutMs: env('WEFT_BENCH_CHANGE_TIMEOUT_S', 60) * 1000,
    streamsPerConnection: env('WEFT_BENCH_STREAMS_PER_CONNECTION', 1),
  };
}

/** What one server did under the benchmark. */
interface ServerFigures {
  name: 'weft' | 'istiod';
  skipped?: string;
  failed?: string;
  readyMs?: number;
  scopes?: number;
  groupStats?: unknown;
  coldStartMs?: number;
  synced?: number;
  unsynced?: string[];
  endpointMs: number[];
  endpointTimeouts: number;
  /** Changes left unmeasured because no proxy held the resource under Istio's name. */
  endpointUnsubscribed: number;
  routeUnsubscribed: number;
  routeMs: number[];
  routeTimeouts: number;
  cpuPerEndpointChange?: number;
  cpuPerRouteChange?: number;
  bytesPerEndpointChange?: number;
  bytesPerRouteChange?: number;
  rssIdle?: number;
  rssConnected?: number;
  proxies: number;
  loadCpuSeconds?: number;
  streamErrors?: number;
}

interface Usage {
  rssBytes: number;
  cpuSeconds: number;
  scopes?: number;
  groupStats?: unknown;
}

/** A server under test: where its xDS is, how to read its usage, how to stop it. */
interface ServerUnderTest {
  xdsAddress: string;
  readyMs: number;
  usage(): Promise<Usage>;
  stop(): Promise<void>;
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Weft's xDS side in its own process (xds-mesh-server.ts), stats over stdin/stdout. */
async function startWeft(kubeconfigPath: string, logDir: string, timeoutMs: number): Promise<ServerUnderTest> {
  const script = fileURLToPath(new URL('./xds-mesh-server.js', import.meta.url));
  const log = openSync(join(logDir, 'weft-xds.log'), 'a');
  let child: ChildProcessWithoutNullStreams;
  try {
    // WEFT_BENCH_PROFILE_DIR: the server writes a CPU profile there when it exits (node --cpu-prof).
    const profile = process.env['WEFT_BENCH_PROFILE_DIR'];
    child = spawn(process.execPath, [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []), script, '0'], {
      stdio: ['pipe', 'pipe', log],
      env: { ...process.env, KUBECONFIG: kubeconfigPath, WEFT_LOG_LEVEL: process.env['WEFT_LOG_LEVEL'] ?? 'warn' },
    }) as unknown as ChildProcessWithoutNullStreams;
  } finally {
    closeSync(log);
  }
  const waiting: Array<(answer: Answer) => void> = [];
  let exited = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      waiting.shift()?.(JSON.parse(line) as Answer);
    } catch {
      // not a JSON line: ignore
    }
  });
  child.on('exit', () => {
    exited = true;
    for (const wake of waiting.splice(0)) wake({ error: 'the Weft xDS process exited' });
  });
  const next = (ms: number) =>
    new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the Weft xDS process did not answer within ${ms / 1000} s`)), ms);
      waiting.push((answer) => {
        clearTimeout(timer);
        if (typeof answer['error'] === 'string') reject(new Error(answer['error']));
        else resolve(answer);
      });
    });
  const stop = async () => {
    if (exited) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  };
  try {
    const ready = await next(timeoutMs);
    return {
      xdsAddress: `127.0.0.1:${String(ready['port'])}`,
      readyMs: Number(ready['startMs']),
      usage: async () => {
        const answer = next(30_000);
        child.stdin.write('stats\n');
        const stats = await answer;
        return {
          rssBytes: Number(stats['rssBytes']),
          cpuSeconds: Number(stats['cpuSeconds']),
          ...(typeof stats['scopes'] === 'number' ? { scopes: stats['scopes'] } : {}),
          ...(stats['groupStats'] !== undefined ? { groupStats: stats['groupStats'] } : {}),
        };
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}; log: ${join(logDir, 'weft-xds.log')}`, { cause: error });
  }
}

function percentile(samples: number[], p: number): number | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs the load against one server: cold start, endpoint changes, VirtualService changes. */
async function measure(
  figures: ServerFigures,
  server: ServerUnderTest,
  loadBinary: string,
  proxies: ProxyDescription[],
  config: KubeConfig,
  endpoints: EndpointWatch,
  options: MeshBenchOptions,
  say: (line: string) => void,
): Promise<void> {
  const { size } = options;
  const verbose = process.env['WEFT_BENCH_VERBOSE'] === '1';
  figures.readyMs = server.readyMs;
  const idle = await server.usage();
  figures.rssIdle = idle.rssBytes;
  const load = XdsLoadClient.start(loadBinary, (event) =>
    say(`  ${figures.name}: ${String(event['synced'])}/${String(event['of'])} proxies synced after ${String(event['seconds'])} s`),
  );
  try {
    await load.ask({ cmd: 'connect', address: server.xdsAddress, proxies, streamsPerConn: options.streamsPerConnection }, 120_000);
    const synced = await load.ask({ cmd: 'wait-synced', timeoutMs: options.syncTimeoutMs }, options.syncTimeoutMs + 60_000);
    figures.synced = Number(synced['synced']);
    if (synced['timedOut'] === true) {
      figures.unsynced = synced['unsynced'] as string[];
      say(`  ${figures.name}: only ${figures.synced}/${proxies.length} proxies synced within ${options.syncTimeoutMs / 1000} s`);
    } else {
      figures.coldStartMs = Number(synced['elapsedMs']);
      say(`  ${figures.name}: all ${proxies.length} proxies ACKed every type in ${(figures.coldStartMs / 1000).toFixed(1)} s`);
    }
    // Let the connect storm's garbage go before reading the resident set.
    await sleep(5_000);
    const connected = await server.usage();
    figures.rssConnected = connected.rssBytes;
    if (connected.scopes !== undefined) figures.scopes = connected.scopes;
    if (connected.groupStats !== undefined) figures.groupStats = connected.groupStats;

    const bytesNow = async () => Number((await load.ask({ cmd: 'stats' }))['bytes']);
    const inARow = 3;

    // Endpoint changes, in pairs on one Deployment: one more replica (a pod with a new IP
    // joins the endpoints), then back (it leaves), so the mesh ends as it began. Deleting a
    // pod would not do: kwok gives its replacement the same IP, and the endpoints do not change.
    let before = await server.usage();
    let bytesBefore = await bytesNow();
    let consecutiveTimeouts = 0;
    let made = 0;
    for (let k = 0; k < options.endpointChanges && consecutiveTimeouts < inARow; k++) {
      const service = (Math.floor(k / 2) * 97 + 13) % size.services;
      const namespace = namespaceOf(size, service);
      const name = `svc-${service}`;
      const replicas = k % 2 === 0 ? size.replicas + 1 : size.replicas;
      made++;
      await scaleDeployment(config, namespace, name, replicas);
      const changedAt = await endpoints.until(() => endpoints.ready(namespace, name).size === replicas, options.changeTimeoutMs);
      if (changedAt === undefined) {
        say(`  ${figures.name}: endpoint change ${k + 1}: ${namespace}/${name} did not get to ${replicas} ready endpoints`);
        figures.endpointTimeouts++;
        consecutiveTimeouts++;
        continue;
      }
      const armed = await load.ask({
        cmd: 'watch',
        kind: 'endpoints',
        name: clusterOf(size, service),
        addresses: [...endpoints.ready(namespace, name).values()],
      });
      if (Number(armed['subscribed']) === 0) {
        // No proxy asked for this EDS name: nothing to time, and the server's names are not Istio's.
        figures.endpointUnsubscribed++;
        if (figures.endpointUnsubscribed === 1)
          say(
            `  ${figures.name}: no proxy subscribed to ${clusterOf(size, service)}; proxy 0 holds ${JSON.stringify(await load.ask({ cmd: 'describe', index: 0 }))}`,
          );
        continue;
      }
      const result = await load.ask(
        { cmd: 'await', since: changedAt, timeoutMs: options.changeTimeoutMs },
        options.changeTimeoutMs + 30_000,
      );
      if (verbose) say(`  ${figures.name}: endpoint change ${k + 1} (${namespace}/${name}): ${JSON.stringify(result)}`);
      if (result['done'] === true) {
        figures.endpointMs.push(Number(result['elapsedMs']));
        consecutiveTimeouts = 0;
      } else {
        figures.endpointTimeouts++;
        consecutiveTimeouts++;
        say(
          `  ${figures.name}: endpoint change ${k + 1}: ${String(result['pending'])}/${String(result['subscribed'])} proxies still waiting after ${options.changeTimeoutMs / 1000} s`,
        );
      }
      if ((k + 1) % 10 === 0) say(`  ${figures.name}: ${k + 1}/${options.endpointChanges} endpoint changes`);
      await sleep(300);
    }
    let after = await server.usage();
    let bytesAfter = await bytesNow();
    // Back to the mesh's own size for the next server, whatever the loop ended on.
    for (let k = 0; k < options.endpointChanges; k += 2) {
      const service = (Math.floor(k / 2) * 97 + 13) % size.services;
      await scaleDeployment(config, namespaceOf(size, service), `svc-${service}`, size.replicas);
    }
    if (made > 0) {
      figures.cpuPerEndpointChange = (after.cpuSeconds - before.cpuSeconds) / made;
      figures.bytesPerEndpointChange = (bytesAfter - bytesBefore) / made;
    }

    // VirtualService changes: new route weights; every proxy holding a route for the host must get it.
    const routed = virtualServiceIndexes(size);
    before = after;
    bytesBefore = bytesAfter;
    consecutiveTimeouts = 0;
    made = 0;
    for (let k = 0; k < options.routeChanges && routed.length > 0 && consecutiveTimeouts < inARow; k++) {
      const service = routed[(k * 7) % routed.length] as number;
      const armed = await load.ask({ cmd: 'watch', kind: 'route', host: hostOf(size, service) });
      if (Number(armed['subscribed']) === 0) {
        figures.routeUnsubscribed++;
        if (figures.routeUnsubscribed === 1)
          say(
            `  ${figures.name}: no proxy holds a route for ${hostOf(size, service)}; proxy 0 holds ${JSON.stringify(await load.ask({ cmd: 'describe', index: 0 }))}`,
          );
        continue;
      }
      made++;
      await shiftWeights(config, size, service);
      const changedAt = now();
      const result = await load.ask(
        { cmd: 'await', since: changedAt, timeoutMs: options.changeTimeoutMs },
        options.changeTimeoutMs + 30_000,
      );
      if (verbose) say(`  ${figures.name}: VirtualService change ${k + 1} (${hostOf(size, service)}): ${JSON.stringify(result)}`);
      if (result['done'] === true) {
        figures.routeMs.push(Number(result['elapsedMs']));
        consecutiveTimeouts = 0;
      } else {
        figures.routeTimeouts++;
        consecutiveTimeouts++;
        say(
          `  ${figures.name}: VirtualService change ${k + 1}: ${String(result['pending'])}/${String(result['subscribed'])} proxies still waiting after ${options.changeTimeoutMs / 1000} s`,
        );
      }
      await sleep(300);
    }
    after = await server.usage();
    bytesAfter = await bytesNow();
    if (made > 0) {
      figures.cpuPerRouteChange = (after.cpuSeconds - before.cpuSeconds) / made;
      figures.bytesPerRouteChange = (bytesAfter - bytesBefore) / made;
    }
    const stats = await load.ask({ cmd: 'stats' });
    figures.loadCpuSeconds = Number(stats['cpuSeconds']);
    figures.streamErrors = Number(stats['streamErrors']);
    // istiod admits new streams at PILOT_MAX_REQUESTS_PER_SECOND (25/s on 2 cores) and refuses the rest; they retry as Envoy does.
    if (figures.streamErrors > 0)
      say(`  ${figures.name}: ${figures.streamErrors} streams ended and were retried, last: ${String(stats['lastError'])}`);
  } finally {
    await load.close();
  }
}

const mib = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / 1024 / 1024);

/** Prints the side-by-side table. */
function printTable(all: ServerFigures[], options: MeshBenchOptions, proxies: ProxyDescription[]): void {
  const { size } = options;
  const weft = all.find((f) => f.name === 'weft');
  const istiod = all.find((f) => f.name === 'istiod');
  const sidecars = proxies.filter((p) => p.kind === 'sidecar').length;
  console.log('');
  console.log(
    `xDS mesh: ${size.services} Services (${size.services * size.replicas} pods) in ${size.namespaces} namespaces, ` +
      `${virtualServiceIndexes(size).length} VirtualServices with DestinationRule subsets, ${size.authorizationPolicies} AuthorizationPolicies, ` +
      `STRICT in ${Math.ceil(size.namespaces / 2)} namespaces; ${sidecars} Envoy sidecars + ${proxies.length - sidecars} proxyless gRPC ` +
      `(half SotW, half Delta); load generator in its own process, servers one after the other on 2 cores`,
  );
  // The last field, where there is one, is the target's bound in the printed unit: Weft's figure is judged against it.
  const rows: Array<[string, (f: ServerFigures) => number | undefined, string, number, string, number?]> = [
    ['server start until ready (informers synced)', (f) => f.readyMs, 'ms', 0, ''],
    ['proxy groups formed, outbound + inbound (Weft only)', (f) => f.scopes, '', 0, ''],
    [
      `cold start: ${proxies.length} proxies ACKed every type`,
      (f) => (f.coldStartMs === undefined ? undefined : f.coldStartMs / 1000),
      's',
      1,
      '< 10 s',
      10,
    ],
    [`endpoint change to last ACK, p50 (${options.endpointChanges} changes)`, (f) => percentile(f.endpointMs, 50), 'ms', 0, ''],
    ['endpoint change to last ACK, p99', (f) => percentile(f.endpointMs, 99), 'ms', 0, '< 100 ms', 100],
    [`VirtualService change to last ACK, p50 (${options.routeChanges} changes)`, (f) => percentile(f.routeMs, 50), 'ms', 0, ''],
    ['VirtualService change to last ACK, p99', (f) => percentile(f.routeMs, 99), 'ms', 0, '< 1 s', 1000],
    ['changes that timed out (endpoint + VirtualService)', (f) => f.endpointTimeouts + f.routeTimeouts, '', 0, '0', 1],
    ['changes no proxy was subscribed to (not timed)', (f) => f.endpointUnsubscribed + f.routeUnsubscribed, '', 0, '0', 1],
    ['server CPU per endpoint change', (f) => f.cpuPerEndpointChange, 's', 3, ''],
    ['server CPU per VirtualService change', (f) => f.cpuPerRouteChange, 's', 3, ''],
    ['bytes sent per endpoint change', (f) => mib(f.bytesPerEndpointChange), 'MiB', 2, ''],
    ['bytes sent per VirtualService change', (f) => mib(f.bytesPerRouteChange), 'MiB', 2, ''],
    ['server RSS, mesh loaded, no proxy', (f) => mib(f.rssIdle), 'MiB', 0, ''],
    ['server RSS, every proxy connected', (f) => mib(f.rssConnected), 'MiB', 0, ''],
    [
      'server RSS per proxy (connected - idle) / proxies',
      (f) => (f.rssConnected === undefined || f.rssIdle === undefined ? undefined : (f.rssConnected - f.rssIdle) / 1024 / f.proxies),
      'KiB',
      0,
      '< 512 KiB',
      512,
    ],
    ['load generator CPU (whole run)', (f) => f.loadCpuSeconds, 's', 1, ''],
  ];
  const cell = (value: number | undefined, digits: number, unit: string) =>
    (value === undefined || !Number.isFinite(value) ? '-' : `${value.toFixed(digits)} ${unit}`.trim()).padStart(14);
  console.log(`${'figure'.padEnd(62)}${'weft'.padStart(14)}${'istiod'.padStart(14)}${'weft/istiod'.padStart(13)}   target`);
  for (const [label, value, unit, digits, target, limit] of rows) {
    const w = weft ? value(weft) : undefined;
    const i = istiod ? value(istiod) : undefined;
    const ratio = w !== undefined && i !== undefined && i !== 0 ? (w / i).toFixed(2) : '-';
    const verdict = limit === undefined || w === undefined ? '' : w < limit ? ' (met)' : ' (missed)';
    console.log(`${label.padEnd(62)}${cell(w, digits, unit)}${cell(i, digits, unit)}${ratio.padStart(13)}   ${target}${verdict}`);
  }
  for (const f of all) {
    if (f.skipped) console.log(`${f.name}: not measured: ${f.skipped}`);
    if (f.failed) console.log(`${f.name}: failed: ${f.failed}`);
    if (f.unsynced?.length) console.log(`${f.name}: proxies never synced, e.g. ${f.unsynced.join('; ')}`);
    if (f.groupStats !== undefined) console.log(`${f.name}: proxy groups: ${JSON.stringify(f.groupStats)}`);
  }
}

/** `make bench`'s xDS benchmark; runs only inside the network sandbox. */
export async function xdsMeshBenchmark(options: MeshBenchOptions = meshBenchOptionsFromEnv()): Promise<void> {
  const say = (line: string) => console.log(`[xds-mesh] ${line}`);
  if (!insideSandbox()) {
    console.log('xDS mesh benchmark: skipped (run through `make bench`, which enters the network sandbox)');
    return;
  }
  const { size } = options;
  const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
  let loadBinary: string;
  try {
    loadBinary = ensureXdsLoad(say, { offline: true });
  } catch (error) {
    console.log(`xDS mesh benchmark: skipped: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  let istiodBinary: string | undefined;
  let istiodUnavailable: string | undefined;
  if (options.servers.includes('istiod')) {
    try {
      istiodBinary = await ensurePilotDiscovery(say, { allowBuild: false });
    } catch (error) {
      istiodUnavailable = error instanceof Error ? error.message : String(error);
    }
  }
  const pods = size.services * size.replicas + size.grpcClients;
  const cluster = await LocalCluster.start({ binaries, nodes: Math.ceil(pods / 100) + 1, progress: say, startTimeoutMs: 300_000 });
  let keepLogs = process.env['WEFT_BENCH_KEEP_LOGS'] === '1';
  let endpoints: EndpointWatch | undefined;
  try {
    const config = cluster.kubeConfig();
    const creating = Date.now();
    await createMesh(config, binaries.kubectl, cluster.kubeconfigPath, size, say);
    say(`mesh created in ${Math.round((Date.now() - creating) / 1000)} s`);
    endpoints = await EndpointWatch.start(config);
    const proxies = proxiesOf(size, await listPods(config.makeApiClient(CoreV1Api)));
    const logDir = join(cluster.workDir, 'logs');
    const all: ServerFigures[] = [];
    for (const name of options.servers) {
      const figures: ServerFigures = {
        name,
        endpointMs: [],
        endpointTimeouts: 0,
        endpointUnsubscribed: 0,
        routeMs: [],
        routeTimeouts: 0,
        routeUnsubscribed: 0,
        proxies: proxies.length,
      };
      all.push(figures);
      if (name === 'istiod' && !istiodBinary) {
        figures.skipped = istiodUnavailable ?? 'pilot-discovery is not available';
        continue;
      }
      say(`${name}: starting`);
      let server: ServerUnderTest | undefined;
      try {
        if (name === 'weft') {
          server = await startWeft(cluster.kubeconfigPath, logDir, 300_000);
        } else {
          const istiod = await startIstiod(istiodBinary as string, cluster.kubeconfigPath, logDir);
          const pid = istiod.process.pid as number;
          server = {
            xdsAddress: istiod.xdsAddress,
            readyMs: istiod.startMs,
            usage: async () => processUsage(pid),
            stop: () => istiod.process.stop(),
          };
        }
        await measure(figures, server, loadBinary, proxies, config, endpoints, options, say);
        // Anything odd keeps the servers' and the cluster's logs for a look.
        if (figures.endpointTimeouts + figures.routeTimeouts > 0 || figures.unsynced) keepLogs = true;
      } catch (error) {
        keepLogs = true;
        figures.failed = error instanceof Error ? error.message : String(error);
        say(`${name}: ${figures.failed}`);
      } finally {
        await server?.stop();
      }
    }
    printTable(all, options, proxies);
    if (keepLogs) console.log(`logs kept in ${logDir}`);
  } finally {
    await endpoints?.stop();
    await cluster.stop({ keepLogs });
  }
}
