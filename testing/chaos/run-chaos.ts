// `make chaos`: Weft installed on the real local cluster (inside the network sandbox),
// then identity chaos against weftd's CA and admission chaos against its webhooks;
// prints one table, each row a figure and whether it held, and exits 1 if any did not.
// Sizes: WEFT_CHAOS_REQUESTS (10,000 per part), WEFT_CHAOS_PROXIES (2,000 reconnecting at once, as #19 asks),
// WEFT_CHAOS_KILLS (100 kill points in the crash part), WEFT_CHAOS_READINESS_ROUNDS (100 fresh weftds),
// WEFT_CHAOS_SEED (random unless set).
// WEFT_CHAOS_ONLY=xds, rotation, crash or readiness runs only that part (the crash part runs on a cluster of its own).
// WEFT_CHAOS_ROTATION_TTL: the rotation part's workload certificate lifetime in seconds (30).
import { join } from 'node:path';
import { insideSandbox } from '../sandbox/network-sandbox.js';
import { admissionChaos } from './admission-chaos.js';
import { startChaosTarget } from './chaos-target.js';
import { crashChaos, crashRows } from './crash-chaos.js';
import { ensureClusterBinaries } from '../cluster/binaries.js';
import { LocalCluster } from '../cluster/local-cluster.js';
import { admissionRows, formatTable, identityRows, xdsRows, type ChaosBudgets, xdsBudgets, type ChaosRow } from './chaos-table.js';
import { identityChaos } from './identity-chaos.js';
import { xdsChaos } from './xds-chaos.js';
import { rotationChaos, rotationRows } from './rotation-chaos.js';
import { freshWeftdKinds, readinessChaos, readinessRows, sampleInstallation } from './readiness-chaos.js';

if (!insideSandbox()) {
  console.error('make chaos runs inside the network sandbox: use `make chaos` (it runs `weft dev sandbox -- ...`)');
  process.exit(2);
}
const requests = Number(process.env['WEFT_CHAOS_REQUESTS'] ?? 10_000);
const only = process.env['WEFT_CHAOS_ONLY'];
if (only !== undefined && only !== 'xds' && only !== 'crash' && only !== 'rotation' && only !== 'readiness') {
  console.error(
    `WEFT_CHAOS_ONLY: ${JSON.stringify(only)} is not a part that runs alone; those that do are "xds", "rotation", "crash" and "readiness"`,
  );
  process.exit(2);
}
const seed = Number(process.env['WEFT_CHAOS_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const budgets: ChaosBudgets = { minimumRequests: requests, legitimateP99Ms: 2_000, admissionP99Ms: 1_000 };
const started = Date.now();
const progress = (line: string) => console.error(`[chaos ${String(Math.round((Date.now() - started) / 1000)).padStart(4)} s] ${line}`);

// Identity, admission, xDS and rotation share one installation; crash and readiness bring clusters of their own.
const target = only === 'crash' || only === 'readiness' ? undefined : await startChaosTarget(process.cwd(), progress);
const rows: ChaosRow[] = [];
try {
  // The flood is a quarter of the requests, the adversarial ones the rest (legitimate ones come on top).
  if (target && only === undefined) {
    const identity = await identityChaos(target, {
      adversarial: Math.ceil(requests * 0.75),
      flood: Math.ceil(requests * 0.25),
      floodConcurrency: 400,
      legitimate: 100,
      seed,
      progress,
    });
    // Twice the minimum, so that the wrong-type sweep (60% of the reviews) reaches every field of the real objects.
    const admission = await admissionChaos(target, {
      reviews: 2 * requests,
      concurrency: 8,
      seed,
      repositoryRoot: process.cwd(),
      progress,
    });
    rows.push(...identityRows(identity, budgets), ...admissionRows(admission, budgets));
  }
  if (target && (only === undefined || only === 'xds')) {
    const xds = await xdsChaos(target, {
      proxies: Number(process.env['WEFT_CHAOS_PROXIES'] ?? 2_000),
      nackStreams: 20,
      nackSeconds: 20,
      slowConsumers: 20,
      names: 100_000,
      changes: 20,
      fuzz: Math.min(1_000, Math.ceil(requests / 10)),
      services: 60,
      newcomerWaitMs: xdsBudgets.fleetSyncMs,
      seed,
      progress,
    });
    rows.push(...xdsRows(xds, xdsBudgets));
  }
  // Rotation without downtime (#19 item 6). Last on this cluster: it moves the installation to a plugged CA.
  if (target && (only === undefined || only === 'rotation')) {
    const ttlSeconds = Number(process.env['WEFT_CHAOS_ROTATION_TTL'] ?? 30);
    const rotation = await rotationChaos(target, {
      certTtlSeconds: ttlSeconds,
      renewalPhaseMs: 4 * ttlSeconds * 1000,
      tailMs: ttlSeconds * 1000,
      progress,
    });
    rows.push(...rotationRows(rotation, { minimumCalls: 1_000, minimumRenewals: 8, propagationMs: 4 * ttlSeconds * 1000 + 30_000 }));
  }
} finally {
  progress('stopping the local cluster');
  await target?.stop();
}
// Crashes and restarts (#19 item 4), on a fresh cluster: the parts above leave an installation behind.
const kills = Number(process.env['WEFT_CHAOS_KILLS'] ?? 100);
if (only === undefined || only === 'crash') {
  const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
  progress('crash: starting a local cluster of its own');
  const cluster = await LocalCluster.start({ binaries });
  let crashHeld = false;
  try {
    const crash = await crashChaos(cluster, {
      kills,
      apiserverRestarts: Math.max(1, Math.round(kills / 20)),
      etcdRestarts: Math.max(1, Math.round(kills / 20)),
      failovers: 3,
      killWindowMs: 10_000,
      convergenceMs: 180_000,
      proxySyncMs: 30_000,
      maxRestartBackOffMs: 5_000,
      seed,
      repositoryRoot: process.cwd(),
      binaries,
      progress,
    });
    const crashTable = crashRows(crash, kills);
    crashHeld = crashTable.every((row) => row.held);
    rows.push(...crashTable);
  } finally {
    // The operator's and weftd's logs are kept when a row did not hold.
    await cluster.stop({ keepLogs: !crashHeld }).then((logs) => logs && progress(`crash: cluster logs kept in ${logs}`));
  }
}
// Webhook readiness (#19 item 5), on a cluster of its own: each round replaces weftd (a reinstall, a new pod).
if (only === undefined || only === 'readiness') {
  const readinessTarget = await startChaosTarget(process.cwd(), progress);
  try {
    const readiness = await readinessChaos(readinessTarget.kubeConfig, {
      rounds: Number(process.env['WEFT_CHAOS_READINESS_ROUNDS'] ?? 100),
      fresh: freshWeftdKinds,
      installation: sampleInstallation(process.cwd()),
      progress,
      podLogDir: join(readinessTarget.cluster.workDir, 'logs', 'pods'),
    });
    rows.push(...readinessRows(readiness));
  } finally {
    await readinessTarget.stop();
  }
}
const table = formatTable(rows);
const failed = rows.some((row) => !row.held);
console.log(`\nWeft chaos, seed ${seed} (WEFT_CHAOS_SEED=${seed} replays it), ${Math.round((Date.now() - started) / 1000)} s\n`);
console.log(table);
process.exit(failed ? 1 : 0);
