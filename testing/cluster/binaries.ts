// Finds the real binaries the local cluster runs: $KUBEBUILDER_ASSETS first (the
// envtest convention), then a per-user cache keyed by version, else builds them
// once from the Go module proxy with build-binaries.sh.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Pinned versions: the newest Kubernetes release that builds with Go 1.26. */
export const pinnedVersions = {
  kubernetes: 'v1.37.2',
  etcd: 'v3.6.16',
  kwok: 'v0.8.0',
  // istio.io/istio has no semver tags on the module proxy: a pseudo-version of its main branch (Aug 2026).
  'istio-client': 'v0.0.0-20260827124520-eed52ebb66ad',
} as const;

type Component = keyof typeof pinnedVersions;

const binariesOf: Record<Component, string[]> = {
  kubernetes: ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl'],
  etcd: ['etcd'],
  kwok: ['kwok', 'kwok-stages.yaml'],
  'istio-client': ['istio-client'],
};

export interface ClusterBinaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
  kwok: string;
  /** kwok's Stage objects (node initialise and heartbeat, pod ready, complete, delete). */
  kwokStages: string;
  /** Istio's own client code (citadel CA client, adsc Delta xDS client), for compatibility tests. */
  istioClient: string;
}

export function weftCacheDir(): string {
  const base = process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache');
  return process.env['WEFT_CACHE_DIR'] ?? join(base, 'weft');
}

function isPresent(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

const buildScript = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'testing', 'cluster', 'build-binaries.sh');

function scriptPath(): string {
  // Compiled to dist/testing/cluster/, run from source by jest: the script lives in the source tree.
  const fromSource = join(dirname(fileURLToPath(import.meta.url)), 'build-binaries.sh');
  return isPresent(fromSource) ? fromSource : buildScript;
}

/** Runs build-binaries.sh for one component (a cluster component, or a bench-only one such as pilot-discovery). */
async function build(component: string, version: string, dest: string, progress: (line: string) => void): Promise<void> {
  progress(`building ${component} ${version} from the Go module proxy into ${dest} (once per machine)`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('bash', [scriptPath(), component, version, dest], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    const onData = (chunk: Buffer): void => {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() === '') continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        if (line.startsWith('[build')) progress(line);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    // Long Go builds print nothing for minutes: show a heartbeat so nobody thinks it hung.
    const started = Date.now();
    const heartbeat = setInterval(() => {
      progress(`still building ${component} (${Math.round((Date.now() - started) / 60_000)} min so far)`);
    }, 60_000);
    child.on('error', (error) => {
      clearInterval(heartbeat);
      reject(error);
    });
    child.on('exit', (code) => {
      clearInterval(heartbeat);
      if (code === 0) resolve();
      else reject(new Error(`building ${component} failed (exit ${code}). Last output:\n${tail.join('\n')}`));
    });
  });
}

/** Resolves every binary, building what is missing. Safe to call before entering the sandbox. */
export async function ensureClusterBinaries(
  progress: (line: string) => void = () => {},
  options: { allowBuild?: boolean } = {},
): Promise<ClusterBinaries> {
  const assets = process.env['KUBEBUILDER_ASSETS'];
  const found = new Map<string, string>();
  for (const component of Object.keys(pinnedVersions) as Component[]) {
    const cached = join(weftCacheDir(), 'bin', `${component}-${pinnedVersions[component]}`);
    const locate = (name: string): string | undefined => {
      if (assets && isPresent(join(assets, name))) return join(assets, name);
      if (isPresent(join(cached, name))) return join(cached, name);
      return undefined;
    };
    if (binariesOf[component].some((name) => locate(name) === undefined)) {
      if (options.allowBuild === false) {
        throw new Error(
          `${component} ${pinnedVersions[component]} is not built yet; run 'make cluster-binaries' (outside the network sandbox) first`,
        );
      }
      await build(component, pinnedVersions[component], cached, progress);
    }
    for (const name of binariesOf[component]) {
      const path = locate(name);
      if (path === undefined) throw new Error(`${name} is missing after building ${component} into ${cached}`);
      found.set(name, path);
    }
  }
  const get = (name: string): string => found.get(name) as string;
  return {
    etcd: get('etcd'),
    kubeApiserver: get('kube-apiserver'),
    kubeControllerManager: get('kube-controller-manager'),
    kubeScheduler: get('kube-scheduler'),
    kubectl: get('kubectl'),
    kwok: get('kwok'),
    kwokStages: get('kwok-stages.yaml'),
    istioClient: get('istio-client'),
  };
}

/** istio.io/istio pseudo-version of istiod for `make bench`: the same commit `istio-client` pins. */
export const pilotDiscoveryVersion = pinnedVersions['istio-client'];

/**
 * Finds (or builds once, from the Go module proxy) istiod's `pilot-discovery` at
 * the Istio version `istio-client` pins, for `make bench` to run beside weftd.
 * Kept apart from {@link ensureClusterBinaries} so `make test` never builds it.
 */
export async function ensurePilotDiscovery(
  progress: (line: string) => void = () => {},
  options: { allowBuild?: boolean } = {},
): Promise<string> {
  const dest = join(weftCacheDir(), 'bin', `pilot-discovery-${pilotDiscoveryVersion}`);
  const binary = join(dest, 'pilot-discovery');
  if (isPresent(binary)) return binary;
  if (options.allowBuild === false) {
    throw new Error(
      `pilot-discovery ${pilotDiscoveryVersion} is not built yet; run 'make bench' (it builds it outside the network sandbox) first`,
    );
  }
  await build('pilot-discovery', pilotDiscoveryVersion, dest, progress);
  if (!isPresent(binary)) throw new Error(`pilot-discovery is missing after building it into ${dest}`);
  return binary;
}

/** Prometheus for the dashboard's Prometheus source test: its 3.16.0 release, as the Go module proxy numbers it. */
export const prometheusVersion = 'v0.316.0';

/**
 * Finds (or builds once, from the Go module proxy) Prometheus's `prometheus` server at {@link prometheusVersion},
 * for `make test-prometheus` (dashboard/prometheus-source.itest.ts). Kept apart from {@link ensureClusterBinaries}
 * so `make test` never builds it. `allowBuild: false` inside the network sandbox, which cannot reach the proxy.
 */
export async function ensurePrometheus(
  progress: (line: string) => void = () => {},
  options: { allowBuild?: boolean } = {},
): Promise<string> {
  const dest = join(weftCacheDir(), 'bin', `prometheus-${prometheusVersion}`);
  const binary = join(dest, 'prometheus');
  if (isPresent(binary)) return binary;
  if (options.allowBuild === false)
    throw new Error(
      `prometheus ${prometheusVersion} is not built yet; run 'make test-prometheus' (it builds it outside the network sandbox)`,
    );
  await build('prometheus', prometheusVersion, dest, progress);
  if (!isPresent(binary)) throw new Error(`prometheus is missing after building it into ${dest}`);
  return binary;
}

/** The oracle's Go sources: part of its cache key, so an edit rebuilds it. */
const oracleSources = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'testing', 'istio-oracle');

function oracleSourceDir(): string {
  const fromSource = join(dirname(fileURLToPath(import.meta.url)), '..', 'istio-oracle');
  return isPresent(join(fromSource, 'oracle_test.go')) ? fromSource : oracleSources;
}

/**
 * Finds (or builds once, from the Go module proxy) `istio-oracle`: Istio's own
 * config generator and traffic simulator (pilot/test/xds, pilot/pkg/simulation) at
 * the Istio version `istio-client` pins, beside Envoy's validation rules, for the
 * parity tests (xds/parity/). Cached by Istio version and a digest of its sources.
 */
export async function ensureIstioOracle(
  progress: (line: string) => void = () => {},
  options: { allowBuild?: boolean } = {},
): Promise<string> {
  const sources = oracleSourceDir();
  const digest = createHash('sha256');
  for (const file of readdirSync(sources)
    .filter((f) => f.endsWith('.go'))
    .sort()) {
    digest.update(file).update(readFileSync(join(sources, file)));
  }
  const version = `${pinnedVersions['istio-client']}-${digest.digest('hex').slice(0, 12)}`;
  const dest = join(weftCacheDir(), 'bin', `istio-oracle-${version}`);
  const binary = join(dest, 'istio-oracle');
  if (isPresent(binary)) return binary;
  if (options.allowBuild === false) throw new Error(`istio-oracle ${version} is not built yet; run 'make test-parity' first`);
  await build('istio-oracle', pinnedVersions['istio-client'], dest, progress);
  if (!isPresent(binary)) throw new Error(`istio-oracle is missing after building it into ${dest}`);
  return binary;
}
