// The short version of `make chaos` for `make test`: the same identity, admission and
// xDS chaos against weftd on the real local cluster, a few hundred requests of each (a
// few dozen hostile ADS clients), and every row of the table must hold.
import { ensureClusterBinaries } from '../cluster/binaries.js';
import { installMeshDemo } from '../cluster/mesh-demo.js';
import { describeWithCluster } from '../jest/local-cluster-fixture.js';
import { admissionChaos } from './admission-chaos.js';
import { chaosTargetOf, type ChaosTarget } from './chaos-target.js';
import { admissionRows, formatTable, identityRows, xdsRows, xdsBudgets, type ChaosBudgets } from './chaos-table.js';
import { identityChaos } from './identity-chaos.js';
import { xdsChaos } from './xds-chaos.js';
import { rotationChaos, rotationRows } from './rotation-chaos.js';
import type { PodProcessRunner } from '../cluster/pod-processes.js';

const budgets: ChaosBudgets = { minimumRequests: 300, legitimateP99Ms: 2_000, admissionP99Ms: 1_000 };
const seed = Number(process.env['WEFT_CHAOS_SEED'] ?? 19);

describeWithCluster('chaos (short)', (cluster) => {
  let runner: PodProcessRunner;
  let target: ChaosTarget;

  beforeAll(async () => {
    const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
    runner = await installMeshDemo(cluster(), binaries, process.cwd(), () => {});
    target = await chaosTargetOf(cluster(), runner);
  }, 120_000);

  afterAll(async () => {
    await runner?.stop();
  });

  const held = (rows: ReturnType<typeof identityRows>) => {
    const table = formatTable(rows);
    expect({ failed: rows.filter((r) => !r.held).map((r) => r.figure), table }).toEqual({ failed: [], table });
  };

  it('issues no certificate for a wrong identity, names every refusal, and serves a legitimate caller during a flood', async () => {
    const figures = await identityChaos(target, {
      adversarial: 240,
      flood: 300,
      floodConcurrency: 200,
      legitimate: 20,
      seed,
      progress: () => {},
    });
    // Every kind of hostile request was sent and refused.
    expect([...figures.categories.values()].every((c) => c.sent > 0)).toBe(true);
    expect(figures.refusedByReason.get('unauthenticated')).toBeGreaterThan(0);
    expect(figures.refusedByReason.get('invalid_csr')).toBeGreaterThan(0);
    expect(figures.refusedByReason.get('identity_mismatch')).toBeGreaterThan(0);
    held(identityRows(figures, budgets));
  }, 120_000);

  it('answers fuzzed AdmissionReviews with valid reviews, never crashes, and names the field of every refusal', async () => {
    const figures = await admissionChaos(target, { reviews: 400, concurrency: 8, seed, repositoryRoot: process.cwd(), progress: () => {} });
    expect(figures.refused).toBeGreaterThan(50);
    expect(figures.patched).toBeGreaterThan(0);
    held(admissionRows(figures, budgets));
  }, 120_000);

  it('survives hostile ADS clients on 15012 and 15010 with bounded memory, naming the field of every refusal', async () => {
    const figures = await xdsChaos(target, {
      proxies: 20,
      nackStreams: 2,
      nackSeconds: 2,
      slowConsumers: 8,
      names: 100_000,
      changes: 3,
      fuzz: 20,
      services: 10,
      newcomerWaitMs: xdsBudgets.fleetSyncMs,
      seed,
      progress: () => {},
    });
    expect(figures.cases.filter((c) => c.end?.code === 3).length).toBeGreaterThan(20);
    expect(figures.nackStorm.nacks).toBeGreaterThan(0);
    held(xdsRows(figures, xdsBudgets));
  }, 120_000);

  // Last: it moves the installation to a plugged CA.
  it('keeps mTLS calls succeeding while workload certificates renew and the plugged root is rotated', async () => {
    const figures = await rotationChaos(target, { certTtlSeconds: 8, renewalPhaseMs: 10_000, tailMs: 3_000, progress: () => {} });
    expect(figures.calls.fresh).toBeGreaterThan(20);
    held(rotationRows(figures, { minimumCalls: 100, minimumRenewals: 4, propagationMs: 4 * 8_000 + 30_000 }));
  }, 180_000);
});
