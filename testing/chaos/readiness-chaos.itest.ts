// The short version of `make chaos`'s readiness part for `make test`: three rounds, one per
// way to a fresh weftd (reinstall, restart, webhook configurations created late), each
// creating a pod at weftd's first successful readiness probe; every pod must be admitted and
// injected.
import { ensureClusterBinaries } from '../cluster/binaries.js';
import { installMeshDemo } from '../cluster/mesh-demo.js';
import type { PodProcessRunner } from '../cluster/pod-processes.js';
import { describeWithCluster } from '../jest/local-cluster-fixture.js';
import { formatTable } from './chaos-table.js';
import { freshWeftdKinds, readinessChaos, readinessRows, sampleInstallation } from './readiness-chaos.js';

// One round of each way to a fresh weftd.
const rounds = Number(process.env['WEFT_CHAOS_READINESS_ROUNDS'] ?? freshWeftdKinds.length);

describeWithCluster('chaos (short): webhook readiness', (cluster) => {
  let runner: PodProcessRunner;

  beforeAll(async () => {
    const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
    runner = await installMeshDemo(cluster(), binaries, process.cwd(), () => {});
  }, 120_000);

  afterAll(async () => {
    await runner?.stop();
  });

  it('admits and injects a pod created as soon as a fresh weftd reports ready', async () => {
    const figures = await readinessChaos(cluster().kubeConfig(), {
      rounds,
      fresh: freshWeftdKinds,
      installation: sampleInstallation(process.cwd()),
      progress: (line) => process.stderr.write(`${line}\n`),
    });
    const rows = readinessRows(figures);
    const table = formatTable(rows);
    expect(figures.rounds).toHaveLength(rounds);
    expect({ failed: rows.filter((r) => !r.held).map((r) => r.figure), table }).toEqual({ failed: [], table });
  }, 600_000);
});
