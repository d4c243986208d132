// OpenTelemetry traces of the control plane's own work, exported over OTLP/HTTP
// when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set;
// otherwise every span is the API's no-op and costs nothing.
import { context, trace, SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, SimpleSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';
import { weftVersion } from './version.js';

export { SpanStatusCode, type Span };

/** The one tracer every component uses; a no-op until `startTracing` installs a provider. */
export function tracer(): Tracer {
  return trace.getTracer('weft', weftVersion);
}

export interface Tracing {
  /** Sends what is buffered. */
  flush(): Promise<void>;
  /** Flushes, then uninstalls the provider (spans become no-ops again). */
  shutdown(): Promise<void>;
}

const disabled: Tracing = { flush: async () => undefined, shutdown: async () => undefined };

/** Whether the environment asks for traces to be exported. */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_ENDPOINT']) && env['OTEL_SDK_DISABLED'] !== 'true';
}

/**
 * Installs the global tracer provider once per process. `exporter` replaces the
 * OTLP exporter the environment configures (tests pass an in-memory one); with
 * neither, nothing is installed.
 */
export function startTracing(serviceName: string, options: { exporter?: SpanExporter; env?: NodeJS.ProcessEnv } = {}): Tracing {
  const env = options.env ?? process.env;
  if (!options.exporter && !tracingConfigured(env)) return disabled;
  // The exporter reads the endpoint, headers and timeout from OTEL_EXPORTER_OTLP_* itself.
  const exporter = options.exporter ?? new OTLPTraceExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      'service.name': env['OTEL_SERVICE_NAME'] || serviceName,
      'service.version': weftVersion,
      ...(env['POD_NAMESPACE'] ? { 'k8s.namespace.name': env['POD_NAMESPACE'] } : {}),
      ...(env['POD_NAME'] ? { 'k8s.pod.name': env['POD_NAME'] } : {}),
    }),
    spanProcessors: [
      options.exporter ? new SimpleSpanProcessor({ exporter }) : new BatchSpanProcessor({ exporter, scheduledDelayMillis: 1000 }),
    ],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  return {
    flush: () => provider.forceFlush(),
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}

/**
 * The exporter settings a process hands on to the ones it runs (the operator to
 * weftd): endpoints, headers, protocol, timeouts, sampler and resource attributes;
 * never the service name, which each process sets for itself.
 */
export function exporterEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env))
    if (value && /^OTEL_(EXPORTER_OTLP_|TRACES_SAMPLER|RESOURCE_ATTRIBUTES$|SDK_DISABLED$)/.test(name)) out[name] = value;
  return out;
}

/** Ends a span with an error status carrying the error's message. */
export function endWithError(span: Span, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Error) span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  span.end();
}
