// The xDS benchmark: a simulator process opens one ADS stream per proxy against a
// separate server process and behaves like a sidecar (LDS and CDS wildcard, then
// RDS and EDS for what they name, ACKing every response).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { typeOf, typeUrls } from '../../xds/protos.js';

interface Response {
  version_info: string;
  nonce: string;
  type_url: string;
  resources: Array<{ value: Uint8Array }>;
}

const responseType = typeOf('type.googleapis.com/envoy.service.discovery.v3.DiscoveryResponse');
const requestType = typeOf('type.googleapis.com/envoy.service.discovery.v3.DiscoveryRequest');
const listenerType = typeOf(typeUrls.listener);
const clusterType = typeOf(typeUrls.cluster);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

export async function xdsBenchmark(services: number, proxies: number, churns = 20): Promise<void> {
  const serverScript = fileURLToPath(new URL('./xds-bench-server.js', import.meta.url));
  const server = spawn(process.execPath, [serverScript, String(services)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: server.stdout });
  const waiting: Array<(value: Record<string, number>) => void> = [];
  lines.on('line', (line) => waiting.shift()?.(JSON.parse(line) as Record<string, number>));
  const next = () => new Promise<Record<string, number>>((resolve) => waiting.push(resolve));
  const ask = (command: string) => {
    const answer = next();
    server.stdin.write(`${command}\n`);
    return answer;
  };
  const { port } = await next();
  const idle = await ask('stats');

  const method = {
    path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
    requestStream: true,
    responseStream: true,
    requestSerialize: (value: object) => Buffer.from(requestType.encode(requestType.fromObject(value)).finish()),
    responseDeserialize: (bytes: Buffer) => responseType.toObject(responseType.decode(bytes), { longs: String }) as Response,
  };
  const channels = Array.from(
    { length: Math.ceil(proxies / 100) },
    () => new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()),
  );
  let bytes = 0;
  const edsVersionAcked = new Array<string>(proxies).fill('');
  let acked = 0;
  const fullyAcked = new Set<number>();
  let onAllAcked: (() => void) | undefined;
  let onEdsConverged: ((version: string) => void) | undefined;
  const started = Date.now();

  for (let p = 0; p < proxies; p++) {
    const stream = (channels[p % channels.length] as grpc.Client).makeBidiStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
    );
    const seen = new Set<string>();
    stream.on('data', (response: Response) => {
      bytes += (response.resources ?? []).reduce((sum, r) => sum + r.value.length, 0);
      stream.write({ type_url: response.type_url, version_info: response.version_info, response_nonce: response.nonce });
      if (response.type_url === typeUrls.listener && !seen.has('lds')) {
        seen.add('lds');
        const names = (response.resources ?? []).map((r) => String((listenerType.decode(r.value) as unknown as { name: string }).name));
        stream.write({ type_url: typeUrls.route, resource_names: names });
      } else if (response.type_url === typeUrls.cluster && !seen.has('cds')) {
        seen.add('cds');
        const names = (response.resources ?? []).map((r) => String((clusterType.decode(r.value) as unknown as { name: string }).name));
        stream.write({ type_url: typeUrls.endpoint, resource_names: names });
      } else if (response.type_url === typeUrls.route) {
        seen.add('rds');
      } else if (response.type_url === typeUrls.endpoint) {
        seen.add('eds');
        edsVersionAcked[p] = response.version_info;
        onEdsConverged?.(response.version_info);
      }
      if (seen.size === 4 && !fullyAcked.has(p)) {
        fullyAcked.add(p);
        acked++;
        if (acked === proxies) onAllAcked?.();
      }
    });
    stream.on('error', () => undefined);
    stream.write({
      node: {
        id: `sidecar~10.250.${p >> 8}.${p & 255}~proxy-${p}.bench~bench.svc.cluster.local`,
        // Proxyless gRPC, as the simulated config is.
        metadata: { fields: { GENERATOR: { string_value: 'grpc' } } },
      },
      type_url: typeUrls.listener,
    });
    stream.write({ type_url: typeUrls.cluster });
  }
  await new Promise<void>((resolve) => {
    onAllAcked = resolve;
    if (acked === proxies) resolve();
  });
  const connectSeconds = (Date.now() - started) / 1000;
  const connected = await ask('stats');
  const initialBytes = bytes;

  const convergence: number[] = [];
  for (let c = 0; c < churns; c++) {
    // Versions are content digests: a proxy has converged when the EDS version it ACKs has moved.
    const before = [...edsVersionAcked];
    const changeStarted = process.hrtime.bigint();
    const answer = await ask('churn');
    void answer;
    await new Promise<void>((resolve) => {
      const check = () => {
        if (edsVersionAcked.every((v, i) => v !== before[i])) {
          onEdsConverged = undefined;
          resolve();
        }
      };
      onEdsConverged = check;
      check();
    });
    convergence.push(Number(process.hrtime.bigint() - changeStarted) / 1e6);
  }
  convergence.sort((a, b) => a - b);
  const final = await ask('stats');
  for (const channel of channels) channel.close();
  server.kill();

  const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
  console.log(
    `xDS: ${services} services x ${proxies} proxies (SotW ADS, LDS+CDS wildcard, RDS+EDS by name; server and simulator in separate processes)`,
  );
  console.log(`  all proxies connected and ACKed (4 types)               ${connectSeconds.toFixed(1).padStart(8)} s    (target: 10 s)`);
  console.log(
    `  endpoint change to the last ACK, ${churns} changes            p50 ${percentile(convergence, 50).toFixed(0).padStart(5)} ms  p99 ${percentile(convergence, 99).toFixed(0).padStart(5)} ms    (target: p99 < 1 s; no debounce here)`,
  );
  console.log(
    `  bytes sent: initial ${mib(initialBytes)} MiB (${(initialBytes / proxies / 1024).toFixed(0)} KiB per proxy), per endpoint change ${mib((bytes - initialBytes) / churns)} MiB`,
  );
  console.log(
    `  server RSS ${mib(connected.rssBytes ?? 0)} MiB connected (${mib(idle.rssBytes ?? 0)} MiB idle): ${(((connected.rssBytes ?? 0) - (idle.rssBytes ?? 0)) / proxies / 1024).toFixed(0)} KiB per proxy    (target: < 512 KiB; istiod ~750 KiB per sidecar)`,
  );
  console.log(
    `  server CPU ${((connected.cpuSeconds ?? 0) - (idle.cpuSeconds ?? 0)).toFixed(1)} s to connect everyone, ${((final.cpuSeconds ?? 0) - (connected.cpuSeconds ?? 0)).toFixed(1)} s for ${churns} endpoint changes`,
  );
}
