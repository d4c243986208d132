// The `xds.push` spans of one stream: a push made while a config change's trace is
// active (the model's `xds.generate`) opens a span that ends when the proxy ACKs
// (status OK) or NACKs (status ERROR, with its error) that type. Pushes outside a
// change (a proxy's own requests) are not traced.
import { context, trace, type Span } from '@opentelemetry/api';
import { SpanStatusCode, tracer } from '../../lib/tracing.js';

const shortType = (typeUrl: string) => typeUrl.split('.').pop() ?? typeUrl;

export class PushSpans {
  private readonly open = new Map<string, Span>();

  /** `stream` is read when a push happens (the proxy has identified itself by then). */
  constructor(private readonly stream: () => { id: number; nodeId: string | undefined }) {}

  pushed(typeUrl: string, bytes: number, resources: number): void {
    const parent = context.active();
    const previous = this.open.get(typeUrl);
    if (previous) {
      // A newer push of the same type supersedes this one: its ACK will never come.
      previous.setAttribute('xds.superseded', true);
      previous.end();
      this.open.delete(typeUrl);
    }
    if (!trace.getSpan(parent)?.isRecording()) return;
    const span = tracer().startSpan(
      'xds.push',
      {
        attributes: {
          'xds.proxy': this.stream().nodeId ?? '',
          'xds.stream': this.stream().id,
          'xds.type': shortType(typeUrl),
          'xds.resources': resources,
          'xds.bytes': bytes,
        },
      },
      parent,
    );
    this.open.set(typeUrl, span);
  }

  acked(typeUrl: string, version?: string): void {
    const span = this.open.get(typeUrl);
    if (!span) return;
    this.open.delete(typeUrl);
    if (version !== undefined) span.setAttribute('xds.version', version);
    span.setStatus({ code: SpanStatusCode.OK });
    span.end();
  }

  nacked(typeUrl: string, error: string): void {
    const span = this.open.get(typeUrl);
    if (!span) return;
    this.open.delete(typeUrl);
    span.addEvent('NACK', { 'xds.error': error });
    span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    span.end();
  }

  /** The stream ended: pushes still waiting for an answer end unanswered. */
  closed(): void {
    for (const span of this.open.values()) {
      span.setAttribute('xds.stream_closed', true);
      span.end();
    }
    this.open.clear();
  }
}
