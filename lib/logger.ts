// Structured JSON logs on stderr, one child logger per component. Each component's
// level can be changed at run time (weftd's and the operator's /debug/loglevel on
// 15014, like istiod's ControlZ logging scopes): the change reaches every logger of
// that component already made, and the ones made later.
import { pino, type DestinationStream, type Level, type Logger } from 'pino';

export type { Logger };

export const levelNames: readonly Level[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

export function isLogLevel(value: string): value is Level {
  return (levelNames as readonly string[]).includes(value);
}

const defaultLevel = (): Level => {
  const level = process.env['WEFT_LOG_LEVEL'] ?? 'info';
  return isLogLevel(level) ? level : 'info';
};

/** Every logger made for a component, weakly held, with the component's level. */
export class LogLevels {
  private readonly loggers = new Map<string, Set<WeakRef<Logger>>>();
  private readonly overrides = new Map<string, Level>();
  readonly root: Logger;

  constructor(
    private defaultLevel: Level,
    destination: DestinationStream,
  ) {
    this.root = pino(
      {
        level: defaultLevel,
        base: { app: 'weft' },
        // Never let a key or token reach a log line, whatever a caller passes.
        redact: { paths: ['*.privateKey', '*.privateKeyPem', '*.token', '*.password', 'privateKey', 'token'], censor: '[redacted]' },
        // Inherited by every child: children of children register too (their nearest component wins).
        onChild: (child) => this.register(child),
      },
      destination,
    );
  }

  /** Components that have loggers, with their current level. */
  list(): Record<string, Level> {
    const out: Record<string, Level> = {};
    for (const component of [...this.loggers.keys()].sort()) out[component] = this.levelOf(component);
    return out;
  }

  levelOf(component: string): Level {
    return this.overrides.get(component) ?? this.defaultLevel;
  }

  /** Sets one component's level, or every component's (and the default) when `component` is undefined. */
  setLevel(component: string | undefined, level: Level): void {
    if (component === undefined) {
      this.defaultLevel = level;
      this.overrides.clear();
      this.root.level = level;
      for (const name of this.loggers.keys()) this.apply(name);
      return;
    }
    this.overrides.set(component, level);
    this.apply(component);
  }

  private register(child: Logger): void {
    dedupeBindings(child);
    const component = (child.bindings() as { component?: unknown }).component;
    if (typeof component !== 'string') return;
    let set = this.loggers.get(component);
    if (!set) this.loggers.set(component, (set = new Set()));
    for (const ref of set) if (!ref.deref()) set.delete(ref);
    set.add(new WeakRef(child));
    child.level = this.levelOf(component);
  }

  private apply(component: string): void {
    const level = this.levelOf(component);
    for (const ref of this.loggers.get(component) ?? []) {
      const logger = ref.deref();
      if (logger) logger.level = level;
    }
  }
}

/**
 * pino appends a child's bindings to its parent's, so `log.child({ component: 'ca' })`
 * under another component wrote `component` twice in every line. The child's own
 * value wins (as JSON.parse reads it); the line carries each field once.
 */
function dedupeBindings(child: Logger): void {
  const holder = child as unknown as Record<symbol, string | undefined>;
  const serialized = holder[pino.symbols.chindingsSym];
  if (!serialized) return;
  // Bindings are already serialized (and redacted) JSON: parsing keeps the last of each key, and
  // writing it again changes nothing else, so a shorter text means a key was there twice.
  const parsed = JSON.parse(`{${serialized.slice(1)}}`) as Record<string, unknown>;
  const once = Object.entries(parsed)
    .map(([key, value]) => `,${JSON.stringify(key)}:${JSON.stringify(value)}`)
    .join('');
  if (once.length < serialized.length) holder[pino.symbols.chindingsSym] = once;
}

export const runtimeLogLevels = new LogLevels(defaultLevel(), pino.destination(2));

export function componentLogger(component: string): Logger {
  return runtimeLogLevels.root.child({ component });
}
