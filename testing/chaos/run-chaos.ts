// `make chaos`: Weft installed on the real local cluster (inside the network sandbox),
// then identity chaos against weftd's CA and admission chaos against its webhooks;
// prints one table, each row a figure and whether it held, and exits 1 if any did not.
// Sizes: WEFT_CHAOS_REQUESTS (10,000 per part), WEFT_CHAOS_PROXIES (500 reconnecting at once),
// WEFT_CHAOS_SEED (random unless set).
import { insideSandbox } from '../sandbox/network-sandbox.js';
import { admissionChaos } from './admission-chaos.js';
import { startChaosTarget } from './chaos-target.js';
import { admissionRows, formatTable, identityRows, xdsRows, type ChaosBudgets, type XdsBudgets } from './chaos-table.js';
import { identityChaos } from './identity-chaos.js';
import { xdsChaos } from './xds-chaos.js';

if (!insideSandbox()) {
  console.error('make chaos runs inside the network sandbox: use `make chaos` (it runs `weft dev sandbox -- ...`)');
  process.exit(2);
}
const requests = Number(process.env['WEFT_CHAOS_REQUESTS'] ?? 10_000);
const seed = Number(process.env['WEFT_CHAOS_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const budgets: ChaosBudgets = { minimumRequests: requests, legitimateP99Ms: 2_000, admissionP99Ms: 1_000 };
const xdsBudgets: XdsBudgets = {
  pushP99Ms: 5_000,
  peakRssGrowthMiB: 128,
  peakRssPerProxyMiB: 1,
  fleetSyncMs: 60_000,
  manyNamesMs: 15_000,
  nackLogIntervalSeconds: 10,
};
const started = Date.now();
const progress = (line: string) => console.error(`[chaos ${String(Math.round((Date.now() - started) / 1000)).padStart(4)} s] ${line}`);

const target = await startChaosTarget(process.cwd(), progress);
let table: string;
let failed: boolean;
try {
  // The flood is a quarter of the requests, the adversarial ones the rest (legitimate ones come on top).
  const identity = await identityChaos(target, {
    adversarial: Math.ceil(requests * 0.75),
    flood: Math.ceil(requests * 0.25),
    floodConcurrency: 400,
    legitimate: 100,
    seed,
    progress,
  });
  // Twice the minimum, so that the wrong-type sweep (60% of the reviews) reaches every field of the real objects.
  const admission = await admissionChaos(target, { reviews: 2 * requests, concurrency: 8, seed, repositoryRoot: process.cwd(), progress });
  const xds = await xdsChaos(target, {
    proxies: Number(process.env['WEFT_CHAOS_PROXIES'] ?? 500),
    nackStreams: 20,
    nackSeconds: 20,
    slowConsumers: 20,
    names: 100_000,
    changes: 20,
    fuzz: Math.min(1_000, Math.ceil(requests / 10)),
    services: 60,
    seed,
    progress,
  });
  const rows = [...identityRows(identity, budgets), ...admissionRows(admission, budgets), ...xdsRows(xds, xdsBudgets)];
  table = formatTable(rows);
  failed = rows.some((row) => !row.held);
} finally {
  progress('stopping the local cluster');
  await target.stop();
}
console.log(`\nWeft chaos, seed ${seed} (WEFT_CHAOS_SEED=${seed} replays it), ${Math.round((Date.now() - started) / 1000)} s\n`);
console.log(table);
process.exit(failed ? 1 : 0);
