// A child process whose output goes to a log file and which can never outlive us:
// every live child is killed when this process exits, however it exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export class ManagedProcess {
  private readonly child: ChildProcess;
  private exitCode: number | null | undefined;
  private readonly exited: Promise<void>;
  private expectedExit = false;
  private onUnexpectedExit: ((message: string) => void) | undefined;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    readonly logPath: string,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    const log = openSync(logPath, 'a');
    try {
      this.child = spawn(command, args, { stdio: ['ignore', log, log], env });
    } finally {
      closeSync(log);
    }
    live.add(this.child);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        live.delete(this.child);
        this.exitCode = code ?? (signal ? -1 : null);
        if (!this.expectedExit && this.onUnexpectedExit) {
          this.onUnexpectedExit(`${name} exited unexpectedly (${signal ?? `code ${code}`}); log: ${logPath}`);
        }
        resolve();
      });
      this.child.on('error', () => {
        live.delete(this.child);
        this.exitCode = -1;
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
