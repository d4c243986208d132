// The short version of `make chaos`'s crash part for `make test`: one cycle of install,
// upgrade, scale, root rotation and uninstall with a SIGKILL of the operator or weftd in
// each phase, one kube-apiserver restart and one leader failover; every row must hold.
import { ensureClusterBinaries } from '../cluster/binaries.js';
import { describeWithCluster } from '../jest/local-cluster-fixture.js';
import { formatTable } from './chaos-table.js';
import { crashChaos, crashRows } from './crash-chaos.js';

const seed = Number(process.env['WEFT_CHAOS_SEED'] ?? 19);

describeWithCluster('crash chaos (short)', (cluster) => {
  it('converges after every kill and restart, with no orphan, no lost CA material, fresh proxy config and a bounded failover', async () => {
    const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
    const kills = 5;
    const figures = await crashChaos(cluster(), {
      kills,
      apiserverRestarts: 1,
      etcdRestarts: 0,
      failovers: 1,
      killWindowMs: 8_000,
      convergenceMs: 90_000,
      proxySyncMs: 30_000,
      maxRestartBackOffMs: 5_000,
      seed,
      repositoryRoot: process.cwd(),
      binaries,
      progress: (line) => process.stderr.write(`${line}\n`),
    });
    const rows = crashRows(figures, kills);
    const table = formatTable(rows);
    expect(figures.runs.map((r) => r.phase)).toEqual(['install', 'upgrade', 'scale', 'rotate', 'uninstall']);
    expect({ failed: rows.filter((r) => !r.held).map((r) => r.figure), table }).toEqual({ failed: [], table });
    expect(cluster().unexpectedExit).toBeUndefined();
  }, 420_000);
});
