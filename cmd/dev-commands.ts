// `weft dev ...`: the embedded local cluster for demos and tests. This is the one
// place production entry points reach into testing/.
import { spawn } from 'node:child_process';
import { createServer as createNetServer, connect as connectNet } from 'node:net';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, watch, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { ensureClusterBinaries, ensureIstioOracle, ensurePrometheus, weftCacheDir } from '../testing/cluster/binaries.js';
import { LocalCluster } from '../testing/cluster/local-cluster.js';
import { installMeshDemo } from '../testing/cluster/mesh-demo.js';
import { bookinfoNextSteps, installBookinfoDemo } from '../testing/cluster/bookinfo-demo.js';
import type { PodProcessRunner } from '../testing/cluster/pod-processes.js';
import {
  enterSandboxArgs,
  insideSandbox,
  runInSandbox,
  sandboxUnavailableReason,
  spawnInSandbox,
} from '../testing/sandbox/network-sandbox.js';

interface ClusterState {
  name: string;
  kubeconfig: string;
  server: string;
  logs: string;
  kubectlDir: string;
  ready: boolean;
  error?: string;
}

interface LauncherState {
  sandboxPid: number;
}

const weftScript = fileURLToPath(new URL('./weft.js', import.meta.url));
const say = (line: string): void => {
  process.stderr.write(`[weft] ${line}\n`);
};

function stateDir(name: string): string {
  return join(weftCacheDir(), 'clusters', name);
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function requireSandbox(): void {
  const reason = sandboxUnavailableReason();
  if (reason) throw new Error(`the network sandbox is unavailable here: ${reason}`);
}

/** The local clusters whose sandbox is alive. */
function runningNames(): string[] {
  const root = dirname(stateDir('demo'));
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((other) => {
    const launcher = readJson<LauncherState>(join(root, other, 'launcher.json'));
    return !!launcher && alive(launcher.sandboxPid);
  });
}

function runningCluster(name: string): { state: ClusterState; launcher: LauncherState } {
  const dir = stateDir(name);
  const launcher = readJson<LauncherState>(join(dir, 'launcher.json'));
  const state = readJson<ClusterState>(join(dir, 'state.json'));
  if (!launcher || !state?.ready || !alive(launcher.sandboxPid)) {
    const running = runningNames().filter((other) => other !== name);
    const hint = running.length > 0 ? `; running: ${running.map((other) => `--name ${other}`).join(', ')}` : '';
    throw new Error(`no local cluster '${name}' is running${hint}; start one with 'make demo' or 'weft dev cluster up'`);
  }
  return { state, launcher };
}

async function up(name: string, nodes: number, withMesh: boolean): Promise<void> {
  const dir = stateDir(name);
  const launcher = readJson<LauncherState>(join(dir, 'launcher.json'));
  if (launcher && alive(launcher.sandboxPid)) {
    say(`local cluster '${name}' is already running`);
    printHowToUse(name, withMesh);
    return;
  }
  requireSandbox();
  // Downloads and builds happen here, outside the sandbox, which has no network.
  await ensureClusterBinaries(say);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const logPath = join(dir, 'serve.log');
  const log = openSync(logPath, 'a');
  const child = spawnInSandbox(
    process.execPath,
    [weftScript, 'dev', 'cluster', 'serve', '--name', name, '--nodes', String(nodes), ...(withMesh ? [] : ['--no-mesh'])],
    {
      stdio: ['ignore', log, log],
      detached: true,
    },
  );
  closeSync(log);
  child.unref();
  if (child.pid === undefined) throw new Error("could not start 'unshare' for the sandbox");
  writeFileSync(join(dir, 'launcher.json'), JSON.stringify({ sandboxPid: child.pid } satisfies LauncherState));

  let shown = 0;
  for (;;) {
    const lines = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n') : [];
    for (const line of lines.slice(shown, -1)) if (line.startsWith('[weft]')) process.stderr.write(`${line}\n`);
    shown = Math.max(shown, lines.length - 1);
    const state = readJson<ClusterState>(join(dir, 'state.json'));
    if (state?.ready) break;
    if (state?.error || child.exitCode !== null || !alive(child.pid ?? -1)) {
      throw new Error(`the local cluster failed to start: ${state?.error ?? 'see log'}\nLog: ${logPath}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  printHowToUse(name, withMesh);
}

function printHowToUse(name: string, withMesh = true): void {
  const flag = name === 'demo' ? '' : ` --name ${name}`;
  process.stdout.write(
    [
      '',
      `Local cluster '${name}' is running inside its network sandbox${withMesh ? ', with Weft installed' : ''}.`,
      `  ./weft dev shell${flag} -- kubectl get meshinstallations   the control plane and its status`,
      `  ./weft dev shell${flag}            a shell inside the sandbox with KUBECONFIG set and kubectl on PATH`,
      `  ./weft dev cluster down${flag}     stop it and remove its processes and namespace`,
      '',
      ...(withMesh ? [...bookinfoNextSteps(flag), ''] : []),
    ].join('\n'),
  );
}

const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url));

async function serve(name: string, nodes: number, withMesh: boolean): Promise<void> {
  if (!insideSandbox()) throw new Error("'weft dev cluster serve' runs only inside the network sandbox; use 'weft dev cluster up'");
  const dir = stateDir(name);
  const statePath = join(dir, 'state.json');
  const binaries = await ensureClusterBinaries(say);
  let cluster: LocalCluster | undefined;
  let pods: PodProcessRunner | undefined;
  let sample: PodProcessRunner | undefined;
  try {
    cluster = await LocalCluster.start({ binaries, nodes, progress: say });
    if (withMesh) {
      pods = await installMeshDemo(cluster, binaries, repositoryRoot, say);
      sample = await installBookinfoDemo(cluster, binaries, repositoryRoot, say);
    }
  } catch (error) {
    await pods?.stop();
    await cluster?.stop({ keepLogs: true });
    const message = error instanceof Error ? error.message : String(error);
    writeFileSync(statePath, JSON.stringify({ error: message }));
    throw error;
  }
  const state: ClusterState = {
    name,
    kubeconfig: cluster.kubeconfigPath,
    server: cluster.server,
    logs: join(cluster.workDir, 'logs'),
    kubectlDir: dirname(binaries.kubectl),
    ready: true,
  };
  writeFileSync(statePath, JSON.stringify(state, null, 2));
  // `down` asks for a graceful stop by creating the stop file.
  const stopFile = join(dir, 'stop');
  await new Promise<void>((resolve) => {
    const watcher = watch(dir, () => {
      if (existsSync(stopFile)) {
        watcher.close();
        resolve();
      }
    });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
  say('stopping the local cluster');
  await sample?.stop();
  await pods?.stop();
  await cluster.stop();
  rmSync(statePath, { force: true });
}

async function down(name: string): Promise<void> {
  const dir = stateDir(name);
  const launcher = readJson<LauncherState>(join(dir, 'launcher.json'));
  if (!launcher || !alive(launcher.sandboxPid)) {
    say(`no local cluster '${name}' is running`);
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  writeFileSync(join(dir, 'stop'), '');
  const deadline = Date.now() + 30_000;
  while (alive(launcher.sandboxPid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  if (alive(launcher.sandboxPid)) {
    say('the cluster did not stop within 30 s; killing its sandbox');
    process.kill(-launcher.sandboxPid, 'SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
  say(`local cluster '${name}' stopped`);
}

/** Runs `command` (a shell without one) in the sandbox; resolves to its exit code. Signals sent to this process reach it. */
async function shell(name: string, command: string[]): Promise<number> {
  const { state, launcher } = runningCluster(name);
  const argv = enterSandboxArgs(launcher.sandboxPid, command.length > 0 ? command : [process.env['SHELL'] ?? 'bash']);
  const child = spawn(argv[0] as string, argv.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, KUBECONFIG: state.kubeconfig, PATH: `${state.kubectlDir}:${process.env['PATH'] ?? ''}` },
  });
  // A terminal's Ctrl-C reaches both; a SIGTERM to this process alone (a script, CI) would otherwise orphan the command.
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, forward);
  try {
    return await new Promise<number>((resolve) => {
      child.once('error', () => resolve(1));
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1)));
    });
  } finally {
    for (const signal of signals) process.off(signal, forward);
  }
}

/**
 * `weft dashboard` for the sandboxed demo cluster: the API server is reachable only inside the
 * sandbox's network namespace, and the browser only outside it, so `weft dashboard` runs inside
 * on a unix socket (files are shared across network namespaces) and this process forwards
 * 127.0.0.1:<port> to it.
 */
async function dashboard(name: string, port: number): Promise<void> {
  const { state, launcher } = runningCluster(name);
  const socket = join(stateDir(name), 'dashboard.sock');
  rmSync(socket, { force: true });
  const argv = enterSandboxArgs(launcher.sandboxPid, [process.execPath, weftScript, 'dashboard', '--unix-socket', socket]);
  const inner = spawn(argv[0] as string, argv.slice(1), {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, KUBECONFIG: state.kubeconfig },
  });
  const deadline = Date.now() + 30_000;
  while (!existsSync(socket)) {
    if (inner.exitCode !== null || Date.now() > deadline)
      throw new Error('weft dashboard did not start inside the sandbox (its error is above)');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const connections = new Set<{ destroy(): void }>();
  const server = createNetServer((client) => {
    const upstream = connectNet(socket);
    connections.add(client);
    client.on('close', () => connections.delete(client));
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(error.code === 'EADDRINUSE' ? `127.0.0.1:${port} is in use; pick another with --port` : error.message)),
    );
    server.listen(port, '127.0.0.1', resolve);
  });
  process.stdout.write(`local cluster '${name}': the dashboard is at http://127.0.0.1:${port}/dashboard/\n(Ctrl-C to stop)\n`);
  // Whatever stops this process (Ctrl-C, kill, a closed terminal) stops the one inside the sandbox too:
  // left running, it would keep the sandbox's network namespace alive after `weft dev cluster down`.
  // So does `weft dev cluster down`: once the sandbox is gone, nothing is left to show.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  let watch: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    for (const signal of signals) process.once(signal, () => resolve());
    inner.once('exit', () => resolve());
    watch = setInterval(() => {
      if (!alive(launcher.sandboxPid)) {
        process.stderr.write(`[weft] local cluster '${name}' stopped; closing its dashboard\n`);
        resolve();
      }
    }, 1_000);
  });
  clearInterval(watch);
  server.close();
  for (const connection of connections) connection.destroy();
  if (inner.exitCode === null) {
    inner.kill('SIGTERM');
    const exited = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5_000);
      inner.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!exited) inner.kill('SIGKILL');
  }
  rmSync(socket, { force: true });
}

export function registerDevCommands(program: Command): void {
  const dev = program.command('dev').description('the embedded local cluster for demos and tests');
  const cluster = dev.command('cluster').description('a real Kubernetes control plane with kwok nodes, inside a network sandbox');
  const nameOption = ['--name <name>', 'cluster name', 'demo'] as const;
  const nodesOption = ['--nodes <n>', 'kwok nodes to create', '2'] as const;

  cluster
    .command('up')
    .description('build the binaries if needed, then start the cluster in the background')
    .option(...nameOption)
    .option(...nodesOption)
    .option('--no-mesh', 'start only the cluster, without installing Weft')
    .action(async (opts: { name: string; nodes: string; mesh: boolean }) => up(opts.name, Number(opts.nodes), opts.mesh));
  cluster
    .command('serve', { hidden: true })
    .option(...nameOption)
    .option(...nodesOption)
    .option('--no-mesh', 'start only the cluster')
    .action(async (opts: { name: string; nodes: string; mesh: boolean }) => serve(opts.name, Number(opts.nodes), opts.mesh));
  cluster
    .command('down')
    .description('stop the cluster; no process, file or namespace is left behind')
    .option(...nameOption)
    .action(async (opts: { name: string }) => down(opts.name));
  cluster
    .command('env')
    .description('print the environment for using the cluster from inside its sandbox')
    .option(...nameOption)
    .action((opts: { name: string }) => {
      const { state, launcher } = runningCluster(opts.name);
      process.stdout.write(
        `export KUBECONFIG=${state.kubeconfig}\nexport PATH=${state.kubectlDir}:$PATH\n# the API server listens inside the sandbox; enter it with:\n# ${enterSandboxArgs(launcher.sandboxPid, ['bash']).join(' ')}\n`,
      );
    });
  dev
    .command('shell')
    .description('open a shell (or run a command) inside the cluster sandbox with KUBECONFIG set')
    .option(...nameOption)
    .argument('[command...]', 'command to run instead of a shell')
    .action(async (command: string[], opts: { name: string }) => {
      process.exitCode = await shell(opts.name, command);
    });
  dev
    .command('dashboard')
    .description("the demo cluster's dashboard in your browser (weft dashboard, reached from outside the sandbox)")
    .option(...nameOption)
    .option('--port <port>', 'local port', '15000')
    .action(async (opts: { name: string; port: string }) => dashboard(opts.name, Number(opts.port)));
  dev
    .command('binaries')
    .description('build or locate the cluster binaries (etcd, kube-*, kwok) and print where they are')
    .action(async () => {
      const binaries = await ensureClusterBinaries(say);
      process.stdout.write(`${JSON.stringify(binaries, null, 2)}\n`);
    });
  dev
    .command('istio-oracle')
    .description("build or locate the parity oracle (Istio's generator and simulator, testing/istio-oracle) and print where it is")
    .action(async () => {
      process.stdout.write(`${await ensureIstioOracle(say)}\n`);
    });
  dev
    .command('prometheus')
    .description("build or locate Prometheus (for the dashboard's Prometheus source test, make test-prometheus) and print where it is")
    .action(async () => {
      process.stdout.write(`${await ensurePrometheus(say)}\n`);
    });
  dev
    .command('sandbox')
    .description('run a command inside a fresh network sandbox (pod CIDR on loopback, no route out)')
    .argument('<command...>', 'the command and its arguments')
    .action(async (command: string[]) => {
      const reason = sandboxUnavailableReason();
      if (reason) {
        say(`cannot create the network sandbox: ${reason}`);
        process.exitCode = 1;
        return;
      }
      process.exitCode = await runInSandbox(command[0] as string, command.slice(1));
    });
}
