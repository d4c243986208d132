// The bench's side of the load generator's stdin/stdout protocol (see
// testing/xds-load/main.go): one command at a time, answered by one JSON line;
// lines with "event" are progress, shown as they come.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

export type Answer = Record<string, unknown>;

export class XdsLoadClient {
  private readonly waiting: Array<(answer: Answer) => void> = [];
  private exited: string | undefined;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    progress: (event: Answer) => void,
  ) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      let answer: Answer;
      try {
        answer = JSON.parse(line) as Answer;
      } catch {
        return;
      }
      if ('event' in answer) progress(answer);
      else this.waiting.shift()?.(answer);
    });
    const stderr: string[] = [];
    child.stderr.on('data', (chunk: Buffer) => {
      stderr.push(chunk.toString());
      if (stderr.length > 20) stderr.shift();
    });
    child.on('exit', (code, signal) => {
      this.exited = `xds-load exited (${signal ?? `code ${code}`}): ${stderr.join('').trim().slice(-2_000)}`;
      for (const wake of this.waiting.splice(0)) wake({ error: this.exited });
    });
  }

  /** Starts the load generator binary. */
  static start(binary: string, progress: (event: Answer) => void): XdsLoadClient {
    return new XdsLoadClient(spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] }), progress);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Sends one command and resolves with its answer. `timeoutMs` bounds the wait
   * (the command's own timeout plus a margin); past it the generator is killed.
   */
  async ask(command: Record<string, unknown>, timeoutMs = 60_000): Promise<Answer> {
    if (this.exited) throw new Error(this.exited);
    const answer = new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`xds-load did not answer ${String(command['cmd'])} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiting.push((value) => {
        clearTimeout(timer);
        if (typeof value['error'] === 'string') reject(new Error(value['error']));
        else resolve(value);
      });
    });
    this.child.stdin.write(`${JSON.stringify(command)}\n`);
    return answer;
  }

  /** Closes every stream and waits (briefly) for the process to end. */
  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.ask({ cmd: 'close' }, 10_000).catch(() => undefined);
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  }
}
