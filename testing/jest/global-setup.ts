// A test run that leaves a socket, timer or child process open never ends: CI then
// stops it at its time limit with nothing to say why. Run in band, the integration
// and e2e tests share the process that runs this global setup, so it records where
// each handle that can keep Node alive was created (the first frames of our own code,
// following callbacks back to the code that scheduled them); once the run is over,
// global-teardown.ts prints whatever is still open after a grace period and fails the
// run. (`--forceExit` would end the run but hide the leak; `--detectOpenHandles`
// names only handles created synchronously by test code.) The two files share the
// record through globalThis: Jest loads each on its own, without our module mapping.
import { createHook } from 'node:async_hooks';

/** Handle types that keep the event loop alive while referenced (Node's async_hooks type names). */
const HANDLES = new Set([
  'TCPWRAP',
  'TCPSERVERWRAP',
  'TLSWRAP',
  'PIPEWRAP',
  'PIPESERVERWRAP',
  'PROCESSWRAP',
  'UDPWRAP',
  'Timeout',
  'Immediate',
  'HTTP2SESSION',
  'FSEVENTWRAP',
  'STATWATCHER',
  'SIGNALWRAP',
  'TTYWRAP',
  'MESSAGEPORT',
  'WORKER',
]);

export interface Tracked {
  type: string;
  /** Frames of our own code that created it, or that scheduled the callback that did. */
  origin: string;
  /** The first frames of the creating stack, libraries' included: when no frame is ours, they name the library. */
  stack: string;
  resource: WeakRef<object>;
}

const state = globalThis as { __weftOpenHandles?: Map<number, Tracked> };

const root = process.cwd();

/** Stack frames in our own files (not node_modules, not Node's internals): the test or module responsible. */
function ownFrames(stack: string): string {
  return stack
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.includes(root) && !line.includes('node_modules') && !line.includes('testing/jest/global-setup'))
    .slice(0, 6)
    .join('\n      ');
}

/** Jest globalSetup: starts recording where handles are created. */
export default function setup(): void {
  if (state.__weftOpenHandles) return;
  const handles = new Map<number, Tracked>();
  // Origins of every live async resource (promises aside), so a handle created inside
  // a callback (a listen after a DNS lookup) is traced to whoever scheduled it.
  const origins = new Map<number, string>();
  state.__weftOpenHandles = handles;
  createHook({
    init(asyncId, type, triggerAsyncId, resource) {
      if (type === 'PROMISE') return;
      const holder: { stack?: string } = {};
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 30;
      Error.captureStackTrace(holder);
      Error.stackTraceLimit = limit;
      const origin = ownFrames(holder.stack ?? '') || origins.get(triggerAsyncId) || '';
      if (origin) origins.set(asyncId, origin);
      if (HANDLES.has(type)) {
        const stack = (holder.stack ?? '')
          .split('\n')
          .slice(1)
          .map((line) => line.trim())
          .filter((line) => !line.includes('global-setup') && !line.includes('node:internal'))
          .slice(0, 8)
          .join('\n      ');
        handles.set(asyncId, { type, origin, stack, resource: new WeakRef(resource as object) });
      }
    },
    destroy(asyncId) {
      origins.delete(asyncId);
      handles.delete(asyncId);
    },
  }).enable();
}
