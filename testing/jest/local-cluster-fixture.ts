// Jest helper: one real local cluster per test file, started inside the network
// sandbox and stopped (every process, every file) when the file's tests end.
import { ensureClusterBinaries } from '../cluster/binaries.js';
import { LocalCluster, type LocalClusterOptions } from '../cluster/local-cluster.js';
import { insideSandbox } from '../sandbox/network-sandbox.js';

const notInSandbox =
  'integration tests need the network sandbox and the cluster binaries: run them with `make test-integration` (it runs `weft dev sandbox -- jest ...`)';

/**
 * `describe` for suites that need a cluster. Outside the sandbox the file fails to
 * load with a message naming the command to use: a suite reported as skipped would
 * read as green to whoever ran it.
 */
export function describeWithCluster(
  name: string,
  body: (cluster: () => LocalCluster) => void,
  options: Omit<LocalClusterOptions, 'binaries'> = {},
): void {
  if (!insideSandbox()) throw new Error(`${name}: ${notInSandbox}`);
  describe(name, () => {
    let cluster: LocalCluster | undefined;
    beforeAll(async () => {
      const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
      cluster = await LocalCluster.start({ ...options, binaries });
    }, 240_000);
    afterAll(async () => {
      const keptLogs = await cluster?.stop();
      if (keptLogs) process.stderr.write(`local cluster logs kept in ${keptLogs}\n`);
    }, 60_000);
    body(() => {
      if (!cluster) throw new Error('the local cluster did not start; see the beforeAll error');
      if (cluster.unexpectedExit) throw new Error(cluster.unexpectedExit);
      return cluster;
    });
  });
}
