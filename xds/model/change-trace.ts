// One trace per config change: the first informer event of a burst starts it
// (`xds.event`), the debouncer's wait is `xds.debounce`, later events of the same
// burst join it as children, and the rebuild runs as `xds.generate` with its span
// active, so whatever it sets off synchronously (the ADS server's pushes) parents
// to it without being told.
import { context, trace, type Context, type Span } from '@opentelemetry/api';
import { endWithError, tracer } from '../../lib/tracing.js';

export interface ChangeEvent {
  /** What the informer watches: services, endpointslices, virtualservices, ... */
  kind: string;
  /** add, update or delete. */
  type: string;
  namespace?: string | undefined;
  name?: string | undefined;
}

interface Burst {
  debounce: Span;
  context: Context;
  events: number;
  kinds: Set<string>;
}

export class ChangeTrace {
  private burst: Burst | undefined;

  /** An informer event: the start of a change's trace, or one more event of the burst being debounced. */
  event(event: ChangeEvent): void {
    const attributes = {
      'k8s.resource': event.kind,
      'k8s.event': event.type,
      ...(event.namespace ? { 'k8s.namespace.name': event.namespace } : {}),
      ...(event.name ? { 'k8s.object.name': event.name } : {}),
    };
    if (this.burst) {
      tracer().startSpan(`xds.event ${event.kind}`, { attributes }, this.burst.context).end();
      this.burst.events++;
      this.burst.kinds.add(event.kind);
      return;
    }
    const first = tracer().startSpan(`xds.event ${event.kind}`, { attributes, root: true });
    const debounce = tracer().startSpan('xds.debounce', {}, trace.setSpan(context.active(), first));
    first.end();
    this.burst = { debounce, context: trace.setSpan(context.active(), debounce), events: 1, kinds: new Set([event.kind]) };
  }

  /**
   * Ends the burst's debounce and runs `rebuild` as its `xds.generate` span (a
   * rebuild without events, such as the first one, starts a trace of its own).
   */
  generate<T>(rebuild: () => T): T {
    const burst = this.burst;
    this.burst = undefined;
    let parent = context.active();
    if (burst) {
      burst.debounce.setAttributes({ 'xds.events': burst.events, 'xds.event_kinds': [...burst.kinds].sort() });
      burst.debounce.end();
      parent = burst.context;
    }
    const span = tracer().startSpan('xds.generate', burst ? {} : { root: true }, parent);
    try {
      const result = context.with(trace.setSpan(parent, span), rebuild);
      // An asynchronous rebuild (one that yields between proxy groups) ends its span when it settles.
      if (result instanceof Promise) {
        result.then(
          () => span.end(),
          (error: unknown) => endWithError(span, error),
        );
      } else span.end();
      return result;
    } catch (error) {
      endWithError(span, error);
      throw error;
    }
  }

  /** Ends a burst that will not be rebuilt (the model is stopping). */
  stop(): void {
    this.burst?.debounce.end();
    this.burst = undefined;
  }
}
