// A child process whose output goes to a log file and which can never outlive us:
// every live child is killed when this process exits, however it exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export class ManagedProcess {
  private child!: ChildProcess;
  private exitCode: number | null | undefined;
  private exited!: Promise<void>;
  private expectedExit = false;
  private onUnexpectedExit: ((message: string) => void) | undefined;
  private exitedAt: number | undefined;

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: string[],
    readonly logPath: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.spawn();
  }

  private spawn(): void {
    const log = openSync(this.logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.command, this.args, { stdio: ['ignore', log, log], env: this.env });
    } finally {
      closeSync(log);
    }
    this.child = child;
    this.exitCode = undefined;
    this.exitedAt = undefined;
    this.expectedExit = false;
    live.add(child);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        live.delete(child);
        this.exitCode = code ?? (signal ? -1 : null);
        this.exitedAt = Date.now();
        if (!this.expectedExit && this.onUnexpectedExit) {
          this.onUnexpectedExit(`${this.name} exited unexpectedly (${signal ?? `code ${code}`}); log: ${this.logPath}`);
        }
        resolve();
      });
      child.on('error', () => {
        live.delete(child);
        this.exitCode = -1;
        this.exitedAt = Date.now();
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** When the process exited (epoch ms), as a container's `finishedAt`; undefined while it runs. */
  get finishedAt(): number | undefined {
    return this.exitedAt;
  }

  watchUnexpectedExit(callback: (message: string) => void): void {
    this.onUnexpectedExit = callback;
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /**
   * Sends `signal` (SIGKILL by default: a crash, nothing runs on the way out) and resolves once
   * the process is gone. The exit counts as expected: no unexpected-exit callback.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.expectedExit = true;
    if (!this.running) return;
    this.child.kill(signal);
    await this.exited;
  }

  /**
   * Starts the same command again (same arguments, environment and log file, so the same
   * ports and data directory), as a restarted container. Throws while the process still runs.
   */
  respawn(): void {
    if (this.running) throw new Error(`${this.name} is still running (pid ${this.pid}); kill it before respawning`);
    this.spawn();
  }

  /** SIGTERM, then SIGKILL after the grace period. Resolves once the process is gone. */
  async stop(graceMs = 5_000): Promise<void> {
    this.expectedExit = true;
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
