// Jest globalTeardown of the integration and e2e projects: reports the handles still
// open after the run, from the record global-setup.ts keeps (see there for why).
// A type-only import: Node strips it, so it costs no module resolution at run time.
import type { Tracked } from './global-setup.js';

const state = globalThis as { __weftOpenHandles?: Map<number, Tracked> };

/**
 * Whether the handle still keeps the event loop alive: a handle (socket, server, child process,
 * timer) that is referenced and, for a timer, not yet fired or cleared. Streams over a socket
 * (TLS, HTTP/2) have no ref of their own: their socket is the handle.
 */
function stillHeld(entry: Tracked): boolean {
  const resource = entry.resource.deref() as { hasRef?: () => boolean; _destroyed?: boolean } | undefined;
  if (!resource || typeof resource.hasRef !== 'function' || !resource.hasRef()) return false;
  return !(entry.type === 'Timeout' && resource._destroyed);
}

/**
 * Handles a library keeps open after we closed everything it gave us, each with why. They do
 * not fail the run: the run ends with Jest's own result, and the note says what was left.
 */
const knownLibraryLeaks: ReadonlyArray<{ matches: (entry: Tracked, timer: string) => boolean; why: string }> = [
  {
    // Seen in gatewayapi/gamma-traffic.itest.ts: after a client whose routes changed is closed, an mTLS
    // subchannel stays referenced (grpc-js 1.14.7, grpc-js-xds), so its FileWatcherCertificateProvider
    // never removes its listener and re-reads the SPIFFE files every refresh_interval.
    matches: (entry, timer) =>
      entry.type === 'Timeout' && timer.includes('updateCertificates') && entry.stack.includes('certificate-provider'),
    why: "grpc-js's file_watcher certificate provider, held by an mTLS subchannel grpc-js-xds keeps after its channel closed",
  },
];

/** A timer's delay and callback, which name it when its stack does not. */
function timerOf(entry: Tracked): string {
  if (entry.type !== 'Timeout') return '';
  const timer = entry.resource.deref() as { _idleTimeout?: number; _repeat?: number | null; _onTimeout?: () => void } | undefined;
  const callback = String(timer?._onTimeout ?? '')
    .replace(/\s+/g, ' ')
    .slice(0, 300);
  return ` (every ${timer?._repeat ?? timer?._idleTimeout} ms${timer?._repeat ? ', repeating' : ''}; calls ${callback})`;
}

/**
 * If the process is still held open `WEFT_OPEN_HANDLES_GRACE_MS` (default 15,000) ms
 * after the run, prints each held handle's type and origin and exits with status 1.
 * The timer is unref'd: a clean run exits at once.
 */
export default function teardown(): void {
  const graceMs = Number(process.env.WEFT_OPEN_HANDLES_GRACE_MS ?? 15_000);
  const timer = setTimeout(() => {
    const all = [...(state.__weftOpenHandles ?? new Map<number, Tracked>()).values()].filter(stillHeld);
    const known = all.filter((entry) => knownLibraryLeaks.some((leak) => leak.matches(entry, timerOf(entry))));
    const held = all.filter((entry) => !known.includes(entry));
    if (held.length === 0) {
      const why = [...new Set(known.map((entry) => knownLibraryLeaks.find((leak) => leak.matches(entry, timerOf(entry)))?.why))];
      process.stderr.write(`\n[weft] the tests ended; only known library handles are left open (${why.join('; ')}): exiting.\n`);
      // Jest has set the run's result as the exit code by now.
      process.exit();
    }
    const lines = held.map(
      (entry) => `  ${entry.type}${timerOf(entry)}\n      ${entry.origin || `(not traced to our code; created at)\n      ${entry.stack}`}`,
    );
    process.stderr.write(
      `\n[weft] the tests ended but ${held.length} handle(s) still keep Node running ${graceMs} ms later ` +
        `(active: ${process.getActiveResourcesInfo().join(', ')}). Each was created at:\n${lines.join('\n')}\n` +
        '[weft] close them in the test that opened them. Failing the run rather than hanging.\n',
    );
    process.exit(1);
  }, graceMs);
  timer.unref();
}
