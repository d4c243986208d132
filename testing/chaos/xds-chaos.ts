// xDS chaos: hostile and broken ADS clients against weftd's AggregatedDiscoveryService
// on 15012 (TLS, ServiceAccount token of audience istio-ca) and 15010 (plaintext),
// while a few well-behaved sidecars (not involved) are timed receiving config changes.
// Malformed DiscoveryRequests (wrong wire types, huge strings, no node, truncations,
// random bytes), unknown types, stale and forged nonces, NACK storms, 100,000
// resource names, streams that never read, hundreds of proxies reconnecting at once,
// and streams cancelled while their token is checked. weftd's RSS is sampled from
// /proc throughout; its log must hold no error.
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { CoreV1Api } from '@kubernetes/client-node';
import protobuf from 'protobufjs';
import { typeUrls } from '../../xds/protos.js';
import { logProblemsSince, logSize, scrapeMetrics, type ChaosTarget } from './chaos-target.js';
import { startFleet, type FleetMember } from './proxy-fleet.js';
import { seededRandom } from './seeded-random.js';
import { requestToken } from './service-account-tokens.js';
import {
  adsClient,
  encodeDeltaRequest,
  encodeRequest,
  ended,
  openAds,
  sidecarNode,
  stalledStream,
  WellBehavedProxy,
  type AdsMethod,
  type AdsPort,
  type DecodedResponse,
  type StreamEnd,
} from './xds-clients.js';

export interface XdsChaosOptions {
  /** Proxies that connect at once, then all reconnect at once (half on each port). */
  proxies: number;
  /** Streams NACKing every response as fast as they can, and for how long. */
  nackStreams: number;
  nackSeconds: number;
  /** Streams that subscribe and never read. */
  slowConsumers: number;
  /** Resource names in one request. */
  names: number;
  /** Config changes timed without abuse (and at least as many during it). */
  changes: number;
  /** Randomly mutated first requests. */
  fuzz: number;
  /** Services present before the run (the CDS every push carries). */
  services: number;
  /** How long a case answered as a newcomer of the storm (config, or a refusal after the token review) may wait (ms): the fleet's budget. */
  newcomerWaitMs: number;
  seed: number;
  progress: (line: string) => void;
}

export interface CaseOutcome {
  name: string;
  port: AdsPort;
  method: AdsMethod;
  /** What came back: a response, a status ending the stream, or nothing. */
  outcome: 'answered' | 'ended' | 'silent';
  end?: StreamEnd;
  /** Why the outcome is wrong, when it is. */
  wrong?: string;
  /** For a case answered as a newcomer of the storm (config, or a refusal after the token review): how long it took (ms). */
  newcomerMs?: number;
}

export interface XdsFigures {
  cases: CaseOutcome[];
  fuzz: { sent: number; answered: number; refused: number; wrong: string[] };
  nonces: { staleOrForgedAnswered: number; servedAfter: boolean; reconnectAnswered: boolean; wrong: string[] };
  nackStorm: { streams: number; seconds: number; nacks: number; responses: number; warnLines: number; longestLogLine: number };
  manyNames: { names: number; firstMs: number | undefined; ackMs: number | undefined; error?: string };
  slowConsumers: {
    streams: number;
    /** Of `streams`, how many on Delta xDS, and how many with an HTTP/2 window of 0 (full from the start). */
    delta: number;
    zeroWindow: number;
    pushesWhileStalled: number;
    /** Responses weftd made for each zero-window stream (its highest nonce, from /debug/syncz), by node. */
    responsesToZeroWindow: Array<{ node: string; responses: number }>;
  };
  /** Proxies on 15012 whose node claims another namespace or ServiceAccount than their token, and ones claiming their own. */
  identity: CaseOutcome[];
  /** `tokens`: distinct ServiceAccount tokens the fleet's 15012 proxies present (one each, as each pod has its own). */
  reconnect: { proxies: number; tokens: number; connectMs: number | undefined; reconnectMs: number | undefined; notSynced: string[] };
  phantoms: { cancelled: number; left: number };
  rssMiB: { before: number; peak: number; after: number };
  wellBehaved: {
    proxies: number;
    baseline: number[];
    during: number[];
    missed: string[];
    /** Proxies whose stream ended or whose clusters lack a Service present. */
    lostConfig: string[];
  };
  /**
   * Event loop delay during the abuse, in ms: weftd's (prom-client's nodejs_eventloop_lag_*, reset by the scrape
   * before the abuse) and this process's, which runs every client: a latency row is only as good as both loops.
   */
  eventLoopDelayMs: { weftd: { p99: number; max: number } | undefined; chaos: { p99: number; max: number } };
  weftdUp: boolean;
  logProblems: string[];
}

const ns = 'chaos-xds';
const cds = typeUrls.cluster;
const eds = typeUrls.endpoint;
const lds = typeUrls.listener;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  void what;
  return true;
}

/** weftd's resident set (VmRSS) in MiB, read from /proc: weftd is a child process of this one. */
function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

// Raw protobuf: a field's key, then its payload.
const key = (field: number, wire: number) => (field << 3) | wire;
const lengthDelimited = (field: number, bytes: Uint8Array) => {
  const w = protobuf.Writer.create();
  w.uint32(key(field, 2)).bytes(bytes);
  return Buffer.from(w.finish());
};
const varintField = (field: number, value: number) => Buffer.from(protobuf.Writer.create().uint32(key(field, 0)).uint32(value).finish());
const fixed32Field = (field: number) => Buffer.from(protobuf.Writer.create().uint32(key(field, 5)).fixed32(7).finish());
const fixed64Field = (field: number) => Buffer.from(protobuf.Writer.create().uint32(key(field, 1)).fixed64(7).finish());
const str = (field: number, value: string | Buffer) => lengthDelimited(field, typeof value === 'string' ? Buffer.from(value) : value);

/** A Struct nested `depth` deep through `{a: {struct_value: ...}}`, built inside out (an encoder would recurse). */
function deepStruct(depth: number): Buffer {
  let inner = Buffer.alloc(0);
  for (let i = 0; i < depth; i++) {
    const value = lengthDelimited(5, inner); // Value.struct_value
    const entry = Buffer.concat([str(1, 'a'), lengthDelimited(2, value)]);
    inner = lengthDelimited(1, entry); // Struct.fields
  }
  return inner;
}

interface Case {
  name: string;
  /** Delta xDS (DeltaAggregatedResources) instead of the state-of-the-world stream. */
  method?: AdsMethod;
  /** The stream must get no response at all before it ends (an unauthorized proxy is served nothing). */
  unserved?: boolean;
  bytes: () => Buffer;
  /** refused: the stream must end with INVALID_ARGUMENT (or the given code) and the details must match `field`. */
  expect: { refused: RegExp; code?: number } | 'answered' | 'accepted';
  /** Requests sent first on the same stream (a valid subscription), when the case needs one. */
  before?: Buffer[];
}

function cases(node: ReturnType<typeof sidecarNode>): Case[] {
  const first = encodeRequest({ node, type_url: cds });
  const nodeBytes = encodeRequest({ node }).subarray(0); // field 2 alone
  const withNode = (...fields: Buffer[]) => Buffer.concat([nodeBytes, str(4, cds), ...fields]);
  const mib = (n: number) => 'x'.repeat(n * 1024 * 1024);
  return [
    { name: 'no node on the first request', bytes: () => encodeRequest({ type_url: cds }), expect: { refused: /node/ } },
    { name: 'node.id empty', bytes: () => encodeRequest({ node: { ...node, id: '' }, type_url: cds }), expect: { refused: /node\.id/ } },
    { name: 'no type_url', bytes: () => encodeRequest({ node }), expect: { refused: /type_url/ } },
    { name: 'version_info as a varint', bytes: () => withNode(varintField(1, 5)), expect: { refused: /version_info/ } },
    { name: 'node as a varint', bytes: () => Buffer.concat([varintField(2, 1), str(4, cds)]), expect: { refused: /node/ } },
    {
      name: 'node.id as a fixed32',
      bytes: () => Buffer.concat([lengthDelimited(2, fixed32Field(1)), str(4, cds)]),
      expect: { refused: /node\.id/ },
    },
    { name: 'resource_names as a fixed64', bytes: () => withNode(fixed64Field(3)), expect: { refused: /resource_names/ } },
    { name: 'type_url as a varint', bytes: () => Buffer.concat([nodeBytes, varintField(4, 3)]), expect: { refused: /type_url/ } },
    { name: 'response_nonce as a fixed32', bytes: () => withNode(fixed32Field(5)), expect: { refused: /response_nonce/ } },
    { name: 'error_detail as a varint', bytes: () => withNode(varintField(6, 1)), expect: { refused: /error_detail/ } },
    {
      name: 'error_detail.message as a varint',
      bytes: () => withNode(lengthDelimited(6, varintField(2, 9))),
      expect: { refused: /error_detail\.message/ },
    },
    {
      name: 'node.metadata as a fixed64',
      bytes: () => Buffer.concat([lengthDelimited(2, Buffer.concat([str(1, node?.id ?? ''), fixed64Field(3)])), str(4, cds)]),
      expect: { refused: /node\.metadata/ },
    },
    {
      name: 'node.metadata nested 2,000 deep',
      bytes: () =>
        Buffer.concat([lengthDelimited(2, Buffer.concat([str(1, node?.id ?? ''), lengthDelimited(3, deepStruct(2_000))])), str(4, cds)]),
      expect: { refused: /node\.metadata/ },
    },
    { name: 'truncated in type_url', bytes: () => first.subarray(0, first.length - 5), expect: { refused: /type_url/ } },
    {
      name: 'node.id not UTF-8',
      bytes: () => Buffer.concat([lengthDelimited(2, str(1, Buffer.from([0x73, 0xff, 0xfe, 0x80]))), str(4, cds)]),
      expect: { refused: /node\.id/ },
    },
    {
      name: 'an unknown field (ignored, as protobuf requires)',
      bytes: () => Buffer.concat([first, str(99, 'future')]),
      expect: 'answered',
    },
    {
      name: 'node.id of 3 MiB',
      bytes: () => encodeRequest({ node: { ...node, id: mib(3) }, type_url: cds }),
      expect: { refused: /node\.id/ },
    },
    {
      name: 'type_url of 1 MiB',
      bytes: () => encodeRequest({ node, type_url: `type.googleapis.com/${mib(1)}` }),
      expect: { refused: /type_url/ },
    },
    {
      name: 'version_info of 3 MiB',
      bytes: () => encodeRequest({ node, type_url: cds, version_info: mib(3) }),
      expect: { refused: /version_info/ },
    },
    {
      name: 'one resource name of 3 MiB',
      bytes: () => encodeRequest({ node, type_url: eds, resource_names: [mib(3)] }),
      expect: { refused: /resource_names\[0\]/ },
    },
    {
      name: 'a message over the 4 MiB gRPC limit',
      bytes: () => encodeRequest({ node, type_url: cds, resource_names: [mib(5)] }),
      expect: { refused: /larger than max/, code: grpc.status.RESOURCE_EXHAUSTED },
    },
    {
      name: 'an unknown type URL (answered empty)',
      bytes: () => encodeRequest({ node, type_url: 'type.googleapis.com/chaos.Unknown' }),
      expect: 'answered',
    },
    {
      name: 'a NACK whose error_detail.message is 3 MiB',
      before: [first],
      bytes: () => encodeRequest({ type_url: cds, response_nonce: '1', error_detail: { code: 3, message: mib(3) } }),
      expect: 'accepted',
    },
    {
      name: '200 distinct unknown type URLs on one stream',
      before: [first],
      bytes: () => Buffer.alloc(0),
      expect: { refused: /type_url/ },
    },
  ];
}

/**
 * The same kinds of request on Delta xDS, where the fields have other numbers
 * (DeltaDiscoveryRequest: node 1, type_url 2, resource_names_subscribe 3, response_nonce 6, error_detail 7).
 */
function deltaCases(node: ReturnType<typeof sidecarNode>): Case[] {
  const first = encodeDeltaRequest({ node, type_url: cds });
  const nodeBytes = encodeDeltaRequest({ node });
  const withNode = (...fields: Buffer[]) => Buffer.concat([nodeBytes, str(2, cds), ...fields]);
  const mib = (n: number) => 'x'.repeat(n * 1024 * 1024);
  const delta = (c: Omit<Case, 'method'>): Case => ({ ...c, name: `Delta: ${c.name}`, method: 'DeltaAggregatedResources' });
  return [
    delta({ name: 'no node on the first request', bytes: () => encodeDeltaRequest({ type_url: cds }), expect: { refused: /node/ } }),
    delta({
      name: 'node.id empty',
      bytes: () => encodeDeltaRequest({ node: { ...node, id: '' }, type_url: cds }),
      expect: { refused: /node\.id/ },
    }),
    delta({ name: 'no type_url', bytes: () => encodeDeltaRequest({ node }), expect: { refused: /type_url/ } }),
    delta({
      name: 'node.id as a fixed32',
      bytes: () => Buffer.concat([lengthDelimited(1, fixed32Field(1)), str(2, cds)]),
      expect: { refused: /node\.id/ },
    }),
    delta({
      name: 'resource_names_subscribe as a varint',
      bytes: () => withNode(varintField(3, 1)),
      expect: { refused: /resource_names_subscribe/ },
    }),
    delta({ name: 'response_nonce as a fixed64', bytes: () => withNode(fixed64Field(6)), expect: { refused: /response_nonce/ } }),
    delta({ name: 'truncated in type_url', bytes: () => first.subarray(0, first.length - 5), expect: { refused: /type_url/ } }),
    delta({
      name: 'one subscribed name of 3 MiB',
      bytes: () => encodeDeltaRequest({ node, type_url: eds, resource_names_subscribe: [mib(3)] }),
      expect: { refused: /resource_names_subscribe\[0\]/ },
    }),
    delta({
      name: 'an unknown type URL (answered empty)',
      bytes: () => encodeDeltaRequest({ node, type_url: 'type.googleapis.com/chaos.Unknown' }),
      expect: 'answered',
    }),
    delta({
      name: '200 distinct unknown type URLs on one stream',
      before: [first],
      bytes: () => Buffer.alloc(0),
      expect: { refused: /type_url/ },
    }),
  ];
}

/**
 * Proxies on 15012 with the token of chaos-xds/proxy: a node claiming another namespace (in its
 * metadata, or only in its id) or another ServiceAccount must be refused with PERMISSION_DENIED
 * naming the claim before it is served anything (Istio's checkConnectionIdentity); one claiming its
 * own is served. On 15010 (no identity) the same claim is served, as istiod serves it.
 */
function identityCases(port: AdsPort): Case[] {
  const claim = (namespace: string, extra: Record<string, string> = {}) => ({
    id: `sidecar~10.253.0.1~intruder.${namespace}~${namespace}.svc.cluster.local`,
    metadata: { NAMESPACE: namespace, LABELS: { app: 'intruder' }, ...extra },
  });
  const idOnly = { id: 'sidecar~10.253.0.2~intruder.kube-system~kube-system.svc.cluster.local' };
  const denied = (field: RegExp) => ({ refused: field, code: grpc.status.PERMISSION_DENIED });
  const both = (c: Omit<Case, 'method'>, sotw: () => Buffer, delta: () => Buffer): Case[] => [
    { ...c, bytes: sotw },
    { ...c, name: `Delta: ${c.name}`, method: 'DeltaAggregatedResources', bytes: delta },
  ];
  const request = (node: ReturnType<typeof sidecarNode>) =>
    [() => encodeRequest({ node, type_url: cds }), () => encodeDeltaRequest({ node, type_url: cds })] as const;
  if (port === 15010)
    return both(
      { name: 'a node claiming kube-system, no token (plaintext)', bytes: () => Buffer.alloc(0), expect: 'answered' },
      ...request(claim('kube-system')),
    );
  return [
    ...both(
      {
        name: 'token of chaos-xds, node claiming kube-system',
        bytes: () => Buffer.alloc(0),
        unserved: true,
        expect: denied(/^authorization failed: node\.metadata\.NAMESPACE/),
      },
      ...request(claim('kube-system')),
    ),
    ...both(
      {
        name: 'token of chaos-xds, node id in kube-system, no metadata',
        bytes: () => Buffer.alloc(0),
        unserved: true,
        expect: denied(/^authorization failed: node\.id/),
      },
      ...request(idOnly),
    ),
    ...both(
      {
        name: 'token of chaos-xds/proxy, node claiming ServiceAccount default',
        bytes: () => Buffer.alloc(0),
        unserved: true,
        expect: denied(/^authorization failed: node\.metadata\.SERVICE_ACCOUNT/),
      },
      ...request(claim(ns, { SERVICE_ACCOUNT: 'default' })),
    ),
    ...both(
      {
        name: 'token of chaos-xds/proxy, node claiming its own namespace and ServiceAccount',
        bytes: () => Buffer.alloc(0),
        expect: 'answered',
      },
      ...request(claim(ns, { SERVICE_ACCOUNT: 'proxy' })),
    ),
  ];
}

/**
 * One case on its own stream: what came back (a response, the stream's end), or nothing within 1 s (3 s for
 * refusals). With `newcomerWaitMs` (given while the fleet connects), a case answered as any proxy joining the
 * storm is (served config, or on 15012 refused for its node's claims, which needs the token review, queued
 * with the storm's) may wait that long.
 */
async function runCase(
  client: grpc.Client,
  token: string | undefined,
  port: AdsPort,
  c: Case,
  newcomerWaitMs?: number,
): Promise<CaseOutcome> {
  const bytes = c.bytes();
  const method = c.method ?? 'StreamAggregatedResources';
  const newcomer =
    newcomerWaitMs !== undefined &&
    (c.expect === 'answered' || (port === 15012 && typeof c.expect === 'object' && c.expect.code === grpc.status.PERMISSION_DENIED));
  const started = performance.now();
  const call = openAds(client, token, method);
  const end = ended(call, newcomer ? newcomerWaitMs : typeof c.expect === 'object' ? 3_000 : 1_000);
  let answered = false;
  const firstAnswer = new Promise<undefined>((resolve) =>
    call.on('data', () => {
      answered = true;
      if (c.expect === 'answered') resolve(undefined);
    }),
  );
  for (const request of c.before ?? []) call.write(request);
  if (c.name.includes('200 distinct')) {
    for (let i = 0; i < 200; i++) {
      const type_url = `type.googleapis.com/chaos.Unknown${i}`;
      call.write(method === 'StreamAggregatedResources' ? encodeRequest({ type_url }) : encodeDeltaRequest({ type_url }));
    }
  } else call.write(bytes);
  const status = await Promise.race([end, firstAnswer]);
  call.cancel();
  const result: CaseOutcome = {
    name: c.name,
    port,
    method,
    outcome: status ? 'ended' : answered ? 'answered' : 'silent',
    ...(status ? { end: status } : {}),
    ...(newcomer && (status || answered) ? { newcomerMs: performance.now() - started } : {}),
  };
  const seen = status ? `${grpc.status[status.code]}: ${status.details.slice(0, 200)}` : result.outcome;
  if (c.expect === 'answered') {
    if (!answered || status) result.wrong = `expected an answer, got ${seen}`;
  } else if (c.expect === 'accepted') {
    if (status) result.wrong = `expected the stream to go on, got ${seen}`;
  } else {
    const code = c.expect.code ?? grpc.status.INVALID_ARGUMENT;
    if (!status || status.code !== code || !c.expect.refused.test(status.details))
      result.wrong = `expected ${grpc.status[code]} naming ${c.expect.refused.source}, got ${seen}`;
    else if (c.unserved && answered) result.wrong = `served config before ${grpc.status[code]}`;
  }
  return result;
}

/** Fields an error may name (it starts with the field), for refusals of randomly broken requests. */
// `<field N>` is a field the type does not declare, named by number; `message:` a whole message that is not protobuf at all.
const namesField =
  /^(node(\.\w+)*|type_url|version_info|resource_(names|locators)(\[\d+\])?|response_nonce|error_detail(\.\w+)*|<field \d+>|message: field number 0)(?=[\s:.[]|$)/;

export async function xdsChaos(target: ChaosTarget, options: XdsChaosOptions): Promise<XdsFigures> {
  const { progress } = options;
  const random = seededRandom(options.seed);
  const core = target.kubeConfig.makeApiClient(CoreV1Api);
  const pid = target.weftd.pid as number;
  const logStart = logSize(target.weftd);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'proxy' } } });
  const token = await requestToken(target.kubeConfig, ns, 'proxy');
  const tokenFor = (port: AdsPort) => (port === 15012 ? token : undefined);
  const service = (name: string) => ({
    metadata: { name, labels: { chaos: 'xds' } },
    spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  });
  progress(`xds: ${options.services} Services in ${ns}`);
  for (let i = 0; i < options.services; i++) await core.createNamespacedService({ namespace: ns, body: service(`bulk-${i}`) });

  // The proxies not involved: two on 15012, one on 15010.
  const steadyPorts: AdsPort[] = [15012, 15012, 15010];
  const steady = steadyPorts.map(
    (port, i) => new WellBehavedProxy(target, port, tokenFor(port), sidecarNode(`steady-${i}`, ns, `10.250.0.${i + 1}`, { app: 'steady' })),
  );
  const bulkSeen = () => steady.every((p) => [...p.clusters].filter((c) => c.includes(`|bulk-`)).length >= options.services);
  if (!(await waitUntil('the steady proxies', bulkSeen, 60_000)))
    throw new Error(`the well-behaved proxies did not receive the ${options.services} Services within 60 s`);

  // One config change: a new Service; its latency is until every steady proxy holds its cluster.
  let probes = 0;
  const missed: string[] = [];
  const change = async (into: number[]) => {
    const name = `probe-${probes++}`;
    const started = performance.now();
    await core.createNamespacedService({ namespace: ns, body: service(name) });
    const arrival = (p: WellBehavedProxy) => [...p.arrivals].find(([cluster]) => cluster.includes(`|${name}.${ns}.`))?.[1];
    const ok = await waitUntil(name, () => steady.every((p) => arrival(p) !== undefined), 30_000);
    steady.forEach((p, i) => {
      const at = arrival(p);
      if (at === undefined) missed.push(`steady-${i}: ${name} not received within 30 s`);
      else into.push(at - started);
    });
    return ok;
  };
  progress(`xds: ${options.changes} config changes without abuse`);
  const baseline: number[] = [];
  for (let i = 0; i < options.changes; i++) await change(baseline);

  // Each fleet proxy on 15012 presents its own token, as each pod has its own (and again when it reconnects): the storm
  // costs weftd a TokenReview per proxy. One token shared by the fleet would cost one, as reviews are reused for 10 s.
  const fleetTokens: string[] = [];
  for (let i = 0; i < Math.ceil(options.proxies / 2); i += 16)
    fleetTokens.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(16, Math.ceil(options.proxies / 2) - i) }, () => requestToken(target.kubeConfig, ns, 'proxy')),
      )),
    );
  progress(`xds: ${fleetTokens.length} tokens for the fleet's proxies on 15012`);

  await sleep(1_000);
  // Resets weftd's event loop delay histogram (prom-client resets it on each collection).
  await scrapeMetrics(target).catch(() => undefined);
  const chaosLoop = monitorEventLoopDelay({ resolution: 10 });
  chaosLoop.enable();
  const rssBefore = rssMiB(pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    try {
      rssPeak = Math.max(rssPeak, rssMiB(pid));
    } catch {
      // weftd gone: the figures say so.
    }
  }, 100);

  // Abuse, all at once, while config keeps changing.
  const during: number[] = [];
  let abusing = true;
  const changes = (async () => {
    let made = 0;
    while (abusing || made < options.changes) {
      await change(during);
      made++;
      // A change every half second or so: enough pushes to time, without growing the mesh by thousands of Services.
      await sleep(500);
    }
  })();
  const clients = new Map<AdsPort, grpc.Client>([
    [15010, adsClient(target, 15010)],
    [15012, adsClient(target, 15012)],
  ]);
  // Connected before the abuse: a case measures weftd's answer to its request, not a TLS handshake queued behind
  // the fleet's thousand (the fleet's own row measures those). Seen at 2,000 proxies: the first case timed out so.
  await Promise.all(
    [...clients.values()].map(
      (client) =>
        new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 30_000, (error) => (error ? reject(error) : resolve()))),
    ),
  );
  const shared = (port: AdsPort) => clients.get(port) as grpc.Client;
  const ports: AdsPort[] = [15012, 15010];
  const abuseNode = (name: string, i = 0) => sidecarNode(`${name}-${i}`, ns, `10.251.${(i >> 8) & 255}.${i & 255}`, { app: name });

  // While the fleet connects, a case answered as a newcomer waits as a proxy of the fleet may; otherwise 1 s (3 s).
  let fleetConnecting = false;
  const newcomerWaitMs = () => (fleetConnecting ? options.newcomerWaitMs : undefined);
  const malformed = (async () => {
    const outcomes: CaseOutcome[] = [];
    for (const port of ports)
      for (const c of [...cases(abuseNode('malformed')), ...deltaCases(abuseNode('malformed'))])
        outcomes.push(await runCase(shared(port), tokenFor(port), port, c, newcomerWaitMs()));
    progress(`xds: ${outcomes.length} malformed requests sent`);
    const identity: CaseOutcome[] = [];
    for (const port of ports)
      for (const c of identityCases(port)) identity.push(await runCase(shared(port), tokenFor(port), port, c, newcomerWaitMs()));
    // Random mutations of a valid first request: either served or refused naming a field, never an internal error.
    const valid = encodeRequest({ node: abuseNode('fuzz'), type_url: cds, resource_names: ['a', 'b'] });
    const fuzz = { sent: 0, answered: 0, refused: 0, wrong: [] as string[] };
    for (let i = 0; i < options.fuzz; i++) {
      const bytes = Buffer.from(valid);
      const mutation = random.int(3);
      let mutated: Buffer;
      if (mutation === 0) mutated = bytes.subarray(0, random.int(bytes.length));
      else {
        for (let k = 0; k <= random.int(4); k++)
          bytes[random.int(bytes.length)] = mutation === 1 ? random.int(256) : (bytes[random.int(bytes.length)] ?? 0);
        mutated = bytes;
      }
      const port = ports[i % 2] as AdsPort;
      // No newcomer's wait: a silent one is counted as served (it was not refused), so waiting decides nothing.
      const out = await runCase(shared(port), tokenFor(port), port, { name: `fuzz ${i}`, bytes: () => mutated, expect: 'answered' });
      fuzz.sent++;
      if (!out.end) fuzz.answered++;
      else if (out.end.code === grpc.status.INVALID_ARGUMENT && namesField.test(out.end.details)) fuzz.refused++;
      // A mutated namespace (or ServiceAccount) no longer matches the token: refused on 15012, naming the claim.
      else if (
        port === 15012 &&
        out.end.code === grpc.status.PERMISSION_DENIED &&
        namesField.test(out.end.details.replace(/^authorization failed: /, ''))
      )
        fuzz.refused++;
      else
        fuzz.wrong.push(
          `fuzz ${i} (${mutated.toString('hex').slice(0, 80)}...): ${grpc.status[out.end.code]}: ${out.end.details.slice(0, 160)}`,
        );
    }
    return { outcomes, fuzz, identity };
  })();

  const nonces = (async () => {
    const result = { staleOrForgedAnswered: 0, servedAfter: true, reconnectAnswered: true, wrong: [] as string[] };
    for (const port of ports) {
      const call = openAds(shared(port), tokenFor(port));
      void ended(call, 60_000);
      const responses: DecodedResponse[] = [];
      call.on('data', (r: DecodedResponse) => responses.push(r));
      const next = async (count: number) => waitUntil('a response', () => responses.length >= count, 5_000);
      call.write(encodeRequest({ node: abuseNode('nonces', port), type_url: eds, resource_names: ['a'] }));
      await next(1);
      const n1 = responses[0]?.nonce ?? '';
      call.write(encodeRequest({ type_url: eds, response_nonce: `${n1}`, resource_names: ['b'] }));
      await next(2);
      const n2 = responses[1]?.nonce ?? '';
      // Stale (the first nonce, now superseded) and forged (never sent) nonces, with new names: ignored.
      for (const nonce of [n1, 'forged-9999', '', `${n2}0`].filter(Boolean))
        call.write(encodeRequest({ type_url: eds, response_nonce: nonce, resource_names: ['c', `${nonce}`] }));
      await sleep(1_000);
      result.staleOrForgedAnswered += responses.length - 2;
      if (responses.length > 2) result.wrong.push(`${port}: ${responses.length - 2} answers to stale or forged nonces`);
      // The current nonce still works.
      const before = responses.length;
      call.write(encodeRequest({ type_url: eds, response_nonce: n2, resource_names: ['d'] }));
      if (!(await next(before + 1))) {
        result.servedAfter = false;
        result.wrong.push(`${port}: no answer to the current nonce after stale ones`);
      }
      call.cancel();
      // A proxy reconnecting carries the nonce of its last stream: Istio answers it as a first request (INIT/RECONNECT).
      const again = openAds(shared(port), tokenFor(port));
      void ended(again, 60_000);
      let answered = false;
      again.on('data', () => (answered = true));
      again.write(encodeRequest({ node: abuseNode('nonces', port), type_url: cds, version_info: 'old', response_nonce: '41' }));
      if (!(await waitUntil('reconnect answer', () => answered, 5_000))) {
        result.reconnectAnswered = false;
        result.wrong.push(`${port}: a reconnecting proxy's first request (carrying its old nonce) got no answer`);
      }
      again.cancel();
    }
    return result;
  })();

  const nackStorm = (async () => {
    const stormLogStart = logSize(target.weftd);
    const figures = { streams: options.nackStreams, seconds: options.nackSeconds, nacks: 0, responses: 0, warnLines: 0, longestLogLine: 0 };
    const stopAt = Date.now() + options.nackSeconds * 1000;
    await Promise.all(
      Array.from({ length: options.nackStreams }, async (_, i) => {
        const port = ports[i % 2] as AdsPort;
        const client = adsClient(target, port, true);
        const call = openAds(client, tokenFor(port));
        void ended(call, 2 ** 31 - 1);
        let toggle = false;
        call.on('data', (r: DecodedResponse) => {
          figures.responses++;
          if (Date.now() > stopAt || !call.writable) return;
          // NACK it (ten times over), then change the subscription so that another response comes, to NACK again.
          for (let k = 0; k < 10; k++) {
            call.write(
              encodeRequest({ type_url: r.type_url, response_nonce: r.nonce, error_detail: { code: 3, message: `chaos NACK ${k}` } }),
            );
            figures.nacks++;
          }
          toggle = !toggle;
          call.write(encodeRequest({ type_url: r.type_url, response_nonce: r.nonce, resource_names: toggle ? ['x'] : [] }));
        });
        call.write(encodeRequest({ node: abuseNode('nack', i), type_url: cds }));
        await sleep(Math.max(0, stopAt - Date.now()) + 200);
        call.cancel();
        client.close();
      }),
    );
    const log = readFileSync(target.weftd.logPath).subarray(stormLogStart).toString('utf8').split('\n');
    for (const line of log) {
      if (line.includes('NACK')) figures.warnLines++;
      figures.longestLogLine = Math.max(figures.longestLogLine, line.length);
    }
    progress(`xds: NACK storm done (${figures.nacks} NACKs)`);
    return figures;
  })();

  const manyNames = (async () => {
    const names = Array.from({ length: options.names }, (_, i) => `outbound|80||s${i}.x`);
    const figures: XdsFigures['manyNames'] = { names: names.length, firstMs: undefined, ackMs: undefined };
    const call = openAds(adsClient(target, 15012, true), token);
    const end = ended(call, 2 ** 31 - 1);
    const responses: DecodedResponse[] = [];
    call.on('data', (r: DecodedResponse) => responses.push(r));
    let started = performance.now();
    call.write(encodeRequest({ node: abuseNode('names'), type_url: eds, resource_names: names }));
    if (await waitUntil('the answer to 100,000 names', () => responses.length > 0, 30_000)) figures.firstMs = performance.now() - started;
    // Ten ACKs repeating the names, then one changing a name: answered again.
    const nonce = responses[0]?.nonce ?? '';
    for (let i = 0; i < 10; i++) call.write(encodeRequest({ type_url: eds, response_nonce: nonce, resource_names: names }));
    const changedName = encodeRequest({
      type_url: eds,
      response_nonce: nonce,
      resource_names: [...names.slice(1), 'outbound|80||other.x'],
    });
    started = performance.now();
    call.write(changedName);
    if (await waitUntil('the answer to a changed name', () => responses.length > 1, 30_000)) figures.ackMs = performance.now() - started;
    const status = await Promise.race([end, sleep(100).then(() => undefined)]);
    if (status) figures.error = `${grpc.status[status.code]}: ${status.details.slice(0, 200)}`;
    call.cancel();
    return figures;
  })();

  // Streams that subscribe to everything and never read: pushes pile up on weftd's side unless it holds them back.
  // Alternately on each port, every other pair on Delta xDS, every fourth pair with a window of 0 (weftd can write
  // nothing to it, so it must make exactly one response: later ones wait, and are merged, until it reads).
  const stalledKinds = Array.from({ length: options.slowConsumers }, (_, i) => ({
    port: ports[i % 2] as AdsPort,
    method: (i >> 1) % 2 === 0 ? 'StreamAggregatedResources' : ('DeltaAggregatedResources' as AdsMethod),
    zeroWindow: (i >> 2) % 2 === 1,
    node: abuseNode('slow', i),
  }));
  const stalled = stalledKinds.map(({ port, method, zeroWindow, node }) => {
    const requests =
      method === 'StreamAggregatedResources'
        ? [encodeRequest({ node, type_url: cds }), encodeRequest({ type_url: lds }), encodeRequest({ type_url: eds })]
        : [encodeDeltaRequest({ node, type_url: cds }), encodeDeltaRequest({ type_url: lds }), encodeDeltaRequest({ type_url: eds })];
    return stalledStream(target, port, tokenFor(port), requests, method, zeroWindow ? 0 : 65_535);
  });
  const probesAtSlowStart = probes;

  const reconnect = (async () => {
    const figures: XdsFigures['reconnect'] = {
      proxies: options.proxies,
      tokens: fleetTokens.length,
      connectMs: undefined,
      reconnectMs: undefined,
      notSynced: [],
    };
    const members = (round: number): FleetMember[] =>
      Array.from({ length: options.proxies }, (_, i) => {
        const port = ports[i % 2] as AdsPort;
        // A handful of label sets, as a few Deployments' pods would have.
        return {
          port,
          token: port === 15012 ? fleetTokens[i >> 1] : undefined,
          node: sidecarNode(`fleet-${i}-r${round}`, ns, `10.252.${i >> 8}.${i & 255}`, { app: `fleet-${i % 5}` }),
        };
      });
    for (const round of [0, 1]) {
      const started = performance.now();
      fleetConnecting = true;
      // Off this thread (one worker per 1,000 proxies): this thread times the cases and the steady proxies.
      const fleet = await startFleet(target, members(round), Math.ceil(options.proxies / 1_000));
      // When each port's share was synced: on 15012 each proxy's token is reviewed first.
      const portDone = new Map<AdsPort, number>();
      const share = (port: AdsPort) => Math.ceil(options.proxies / 2) - (port === 15010 ? options.proxies % 2 : 0);
      const ok = await waitUntil(
        'the fleet',
        () => {
          for (const port of ports)
            if (!portDone.has(port) && fleet.synced(port) === share(port)) portDone.set(port, performance.now() - started);
          return fleet.synced() === options.proxies;
        },
        120_000,
      );
      const ms = performance.now() - started;
      fleetConnecting = false;
      if (round === 0) figures.connectMs = ok ? ms : undefined;
      else figures.reconnectMs = ok ? ms : undefined;
      if (!ok) figures.notSynced.push(...(await fleet.notSynced()).map((line) => `${line} (round ${round}, after 120 s)`));
      const byPort = ports.map((port) => `${port}: ${portDone.has(port) ? `${Math.round(portDone.get(port) ?? 0)} ms` : 'not all'}`);
      progress(
        `xds: ${options.proxies} proxies ${round === 0 ? 'connected' : 'reconnected at once'} in ${Math.round(ms)} ms (${byPort.join(', ')})`,
      );
      // All leave at once (round 0), and all come back at once (round 1).
      await fleet.close();
    }
    return figures;
  })();

  const phantoms = (async () => {
    const cancelled = 20;
    for (let i = 0; i < cancelled; i++) {
      const call = openAds(shared(15012), token);
      void ended(call, 1_000);
      call.write(encodeRequest({ node: abuseNode('phantom', i), type_url: cds }));
      setImmediate(() => call.cancel());
    }
    await sleep(3_000);
    const syncz = (await (await fetch(`http://${target.weftdIp}:15014/debug/syncz`)).json()) as Array<{ nodeId: string }>;
    return { cancelled, left: syncz.filter((s) => s.nodeId === '' || s.nodeId.includes('~phantom-')).length };
  })();

  const [m, n, storm, names, fleet, phantom] = await Promise.all([malformed, nonces, nackStorm, manyNames, reconnect, phantoms]);
  chaosLoop.disable();
  const weftdMetrics = await scrapeMetrics(target).catch(() => undefined);
  const weftdLoop = (name: string) => (weftdMetrics?.get(`nodejs_eventloop_lag_${name}_seconds`) ?? Number.NaN) * 1000;
  const eventLoopDelayMs: XdsFigures['eventLoopDelayMs'] = {
    weftd: weftdMetrics ? { p99: weftdLoop('p99'), max: weftdLoop('max') } : undefined,
    chaos: { p99: chaosLoop.percentile(99) / 1e6, max: chaosLoop.max / 1e6 },
  };
  abusing = false;
  await changes;
  // How many responses weftd made for each zero-window stream: its stream's highest nonce (nonces count responses).
  const syncz = (await (await fetch(`http://${target.weftdIp}:15014/debug/syncz`)).json()) as Array<{
    nodeId: string;
    types: Array<{ nonceSent?: string }>;
  }>;
  const responsesToZeroWindow = stalledKinds
    .filter((k) => k.zeroWindow)
    .map((k) => {
      const status = syncz.find((s) => s.nodeId === k.node?.id);
      const responses = status ? Math.max(0, ...status.types.map((t) => Number(t.nonceSent ?? 0))) : -1;
      return { node: `${k.node?.id} (${k.method}, ${k.port})`, responses };
    });
  const slowFigures: XdsFigures['slowConsumers'] = {
    streams: stalled.length,
    delta: stalledKinds.filter((k) => k.method === 'DeltaAggregatedResources').length,
    zeroWindow: responsesToZeroWindow.length,
    pushesWhileStalled: probes - probesAtSlowStart,
    responsesToZeroWindow,
  };
  for (const stream of stalled) stream.close();
  for (const client of clients.values()) client.close();
  progress('xds: abuse over, waiting for weftd to settle');
  await sleep(5_000);
  clearInterval(sampler);
  const rssAfter = target.weftd.running ? rssMiB(pid) : 0;

  // The steady proxies kept their stream and hold every Service.
  const services = (await core.listNamespacedService({ namespace: ns })).items.map((s) => s.metadata?.name ?? '');
  const lostConfig: string[] = [];
  steady.forEach((p, i) => {
    if (p.end) lostConfig.push(`steady-${i}: stream ended (${grpc.status[p.end.code]}: ${p.end.details})`);
    const lacking = services.filter((name) => ![...p.clusters].some((c) => c.includes(`|${name}.${ns}.`)));
    if (lacking.length > 0) lostConfig.push(`steady-${i}: lacks ${lacking.length} Services (${lacking.slice(0, 3).join(', ')})`);
  });
  for (const p of steady) p.close();
  await core.deleteNamespace({ name: ns });

  return {
    cases: m.outcomes,
    fuzz: m.fuzz,
    nonces: n,
    nackStorm: storm,
    manyNames: names,
    slowConsumers: slowFigures,
    identity: m.identity,
    reconnect: fleet,
    phantoms: phantom,
    rssMiB: { before: rssBefore, peak: rssPeak, after: rssAfter },
    wellBehaved: { proxies: steady.length, baseline, during, missed, lostConfig },
    eventLoopDelayMs,
    weftdUp: target.weftd.running,
    logProblems: logProblemsSince(target.weftd, logStart),
  };
}
