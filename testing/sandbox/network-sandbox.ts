// The network sandbox: a fresh network namespace with only a loopback device that
// carries the pod and node ranges, and no route out. Tests and the demo cluster run
// inside it, so pod IPs are reachable there and a stray dial to any other address
// fails at once without leaving the machine. A private PID namespace makes the
// kernel kill every process of the sandbox when its command ends.
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { sandboxAddressing } from './addressing.js';

export const sandboxEnvMarker = 'WEFT_NETWORK_SANDBOX';

/** True when this process runs inside a sandbox made by {@link spawnInSandbox}. */
export function insideSandbox(): boolean {
  return process.env[sandboxEnvMarker] === '1' && Object.keys(networkInterfaces()).every((name) => name === 'lo');
}

function unshareArgs(): string[] {
  const args = ['--net', '--pid', '--fork', '--kill-child', '--mount-proc'];
  // Without root, a user namespace maps us to root inside so that `ip` may configure loopback.
  if (process.getuid?.() !== 0) args.unshift('--user', '--map-root-user');
  return args;
}

/** Why a sandbox cannot be made here, or undefined when it can. */
export function sandboxUnavailableReason(): string | undefined {
  const probe = spawnSync('unshare', [...unshareArgs(), 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (probe.error) return `'unshare' could not run (${probe.error.message}); install util-linux and iproute2`;
  if (probe.status !== 0) {
    return `could not create a network namespace: ${probe.stderr.trim() || `exit ${probe.status}`}. Run as root or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)`;
  }
  return undefined;
}

// `$@` runs as a child of the namespace's init shell (not exec'd), so the
// terminal's Ctrl-C reaches it, and its exit code becomes the sandbox's.
const setupScript = [
  'set -e',
  'ip link set lo up',
  `ip addr add ${sandboxAddressing.podCidr} dev lo`,
  `ip addr add ${sandboxAddressing.nodeCidr} dev lo`,
  'set +e',
  '"$@"',
  'status=$?',
  'exit $status',
].join('\n');

export function spawnInSandbox(
  command: string,
  args: string[],
  options: { stdio?: StdioOptions; env?: NodeJS.ProcessEnv; detached?: boolean } = {},
): ChildProcess {
  return spawn('unshare', [...unshareArgs(), 'sh', '-c', setupScript, 'weft-sandbox', command, ...args], {
    stdio: options.stdio ?? 'inherit',
    env: { ...(options.env ?? process.env), [sandboxEnvMarker]: '1' },
    detached: options.detached ?? false,
  });
}

/** Runs a command inside a new sandbox and resolves with its exit code. */
export async function runInSandbox(command: string, args: string[]): Promise<number> {
  const child = spawnInSandbox(command, args);
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

/** argv that runs a command inside the network (and user) namespace of a sandbox process. */
export function enterSandboxArgs(sandboxPid: number, command: string[]): string[] {
  const user = process.getuid?.() !== 0 ? ['--user', '--preserve-credentials'] : [];
  return ['nsenter', `--target=${sandboxPid}`, '--net', ...user, '--', ...command];
}
