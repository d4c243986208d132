// Istio's Telemetry API (telemetry.istio.io/v1) and MeshConfig telemetry defaults
// as Envoy HttpConnectionManager fields: access logs and tracing, for one
// workload and direction. A workload's Telemetry overrides its namespace's, which
// overrides the mesh's (root namespace); within the chosen level, entries match
// CLIENT (outbound), SERVER (inbound) or both. Pure.
import { byAge, emptyIstioConfig, type ConfigObject, type TelemetrySpec } from '../model/istio-config.js';
import { serviceHost, type ExtensionProvider, type MeshModel } from '../model/mesh-model.js';
import { any } from '../protos.js';
import { labelsMatch, resolveHost } from '../traffic/host-names.js';
import { outboundClusterName } from '../traffic/http-routes.js';

const types = {
  fileAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
  openTelemetry: 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
  zipkin: 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig',
};

/** Istio's default text access log format. */
export const istioAccessLogFormat =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% ' +
  '%BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% ' +
  '%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's default JSON access log fields. */
const istioJsonFields: Record<string, string> = {
  start_time: '%START_TIME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  route_name: '%ROUTE_NAME%',
};

export type Direction = 'CLIENT' | 'SERVER';

export interface HcmTelemetry {
  fields: Record<string, unknown>;
  /** What could not be applied (an unknown provider, a CEL filter), for status and analysis. */
  problems: string[];
}

interface Entry {
  providers?: Array<{ name: string }>;
  disabled?: boolean;
  match?: { mode?: string };
  filter?: { expression?: string };
  randomSamplingPercentage?: number;
  disableSpanReporting?: boolean;
  customTags?: Record<
    string,
    { literal?: { value: string }; environment?: { name: string; defaultValue?: string }; header?: { name: string; defaultValue?: string } }
  >;
}

/** The Telemetry objects that apply, least specific first: mesh, namespace, workload. */
function levels(model: MeshModel, workload: { namespace: string; labels: Record<string, string> }): Array<ConfigObject<TelemetrySpec>> {
  const all = [...(model.istio ?? emptyIstioConfig()).telemetries].sort(byAge);
  const root = model.rootNamespace ?? 'istio-system';
  return [
    all.find((t) => t.namespace === root && !t.spec.selector),
    all.find((t) => t.namespace === workload.namespace && workload.namespace !== root && !t.spec.selector),
    all.find(
      (t) =>
        t.namespace === workload.namespace &&
        t.spec.selector &&
        labelsMatch(t.spec.selector.matchLabels as Record<string, string>, workload.labels),
    ),
  ].filter((t): t is ConfigObject<TelemetrySpec> => !!t);
}

/** The most specific level that says anything about this field wins; then entries for this direction. */
function entriesFor(
  applied: Array<ConfigObject<TelemetrySpec>>,
  field: 'accessLogging' | 'tracing',
  direction: Direction,
): Entry[] | undefined {
  const level = [...applied].reverse().find((t) => (t.spec[field]?.length ?? 0) > 0);
  if (!level) return undefined;
  return ((level.spec[field] ?? []) as Entry[]).filter(
    (e) => !e.match?.mode || e.match.mode === 'CLIENT_AND_SERVER' || e.match.mode === direction,
  );
}

/**
 * The access log providers of one direction, as Istio's mergeLogs (pilot/pkg/model/telemetry.go):
 * the most specific level (mesh, namespace, workload) naming providers for this direction chooses
 * which providers are in scope (else the mesh's default providers); then every level's entries for
 * this direction, in order, turn each in-scope provider on (with its filter) or off, an entry that
 * names no provider standing for the providers of the entry before it. Undefined when no level has
 * an accessLogging entry (the mesh's default providers, then accessLogFile, apply).
 */
function accessLogProviders(
  applied: Array<ConfigObject<TelemetrySpec>>,
  defaults: string[],
  direction: Direction,
): Map<string, { disabled: boolean; filter?: string }> | undefined {
  const levelsWithLogs = applied.filter((t) => (t.spec.accessLogging?.length ?? 0) > 0);
  if (levelsWithLogs.length === 0) return undefined;
  const matches = (e: Entry) => !e.match?.mode || e.match.mode === 'CLIENT_AND_SERVER' || e.match.mode === direction;
  const entriesOf = (t: ConfigObject<TelemetrySpec>) => (t.spec.accessLogging ?? []) as Entry[];
  let inScope = defaults;
  const filters = new Map<string, string | undefined>();
  for (const level of levelsWithLogs) {
    const names = new Set<string>();
    for (const entry of entriesOf(level).filter(matches)) {
      for (const provider of entry.providers ?? []) {
        names.add(provider.name);
        filters.set(provider.name, entry.filter?.expression);
      }
    }
    if (names.size > 0) inScope = [...names];
  }
  const providers = new Map<string, { disabled: boolean; filter?: string }>();
  let parent = defaults;
  for (const level of levelsWithLogs) {
    for (const entry of entriesOf(level)) {
      const names = entry.providers && entry.providers.length > 0 ? entry.providers.map((p) => p.name) : parent;
      parent = names;
      if (!matches(entry)) continue;
      for (const name of names.filter((n) => inScope.includes(n))) {
        const filter = filters.get(name);
        providers.set(name, entry.disabled ? { disabled: true } : { disabled: false, ...(filter ? { filter } : {}) });
      }
    }
  }
  return providers;
}

function providerNamed(model: MeshModel, name: string): ExtensionProvider | undefined {
  const provider = model.meshConfig?.telemetry?.extensionProviders?.find((p) => p.name === name);
  // Istio's built-in provider: Envoy's own access log on stdout.
  return provider ?? (name === 'envoy' ? { name: 'envoy', envoyFileAccessLog: { path: '/dev/stdout' } } : undefined);
}

function fileAccessLog(path: string, format: { text?: string; labels?: Record<string, string> } | undefined) {
  const logFormat = format?.labels
    ? { json_format: { fields: Object.fromEntries(Object.entries(format.labels).map(([k, v]) => [k, { stringValue: v }])) } }
    : {
        text_format_source: {
          inline_string: format?.text ? (format.text.endsWith('\n') ? format.text : `${format.text}\n`) : istioAccessLogFormat,
        },
      };
  return { name: 'envoy.access_loggers.file', typed_config: any(types.fileAccessLog, { path, log_format: logFormat }) };
}

export function hcmTelemetry(
  model: MeshModel,
  workload: { namespace: string; labels: Record<string, string> },
  direction: Direction,
): HcmTelemetry {
  const mesh = model.meshConfig?.telemetry ?? {};
  const applied = levels(model, workload);
  const problems: string[] = [];
  const fields: Record<string, unknown> = {};

  // Access logs: the Telemetry entries, else the default providers, else MeshConfig's accessLogFile.
  const logProviders = accessLogProviders(applied, mesh.defaultProviders?.accessLogging ?? [], direction);
  const accessLogs: Array<Record<string, unknown>> = [];
  if (logProviders) {
    for (const [name, spec] of [...logProviders].sort((a, b) => a[0].localeCompare(b[0]))) {
      if (spec.disabled) continue;
      if (spec.filter) problems.push(`accessLogging filter "${spec.filter}" is not supported; every request is logged`);
      const provider = providerNamed(model, name);
      if (!provider?.envoyFileAccessLog) {
        problems.push(`access log provider "${name}" is not an envoyFileAccessLog extension provider of the mesh`);
        continue;
      }
      accessLogs.push(fileAccessLog(provider.envoyFileAccessLog.path ?? '/dev/stdout', provider.envoyFileAccessLog.logFormat));
    }
  } else if (mesh.defaultProviders?.accessLogging?.length) {
    for (const name of mesh.defaultProviders.accessLogging) {
      const provider = providerNamed(model, name);
      if (provider?.envoyFileAccessLog)
        accessLogs.push(fileAccessLog(provider.envoyFileAccessLog.path ?? '/dev/stdout', provider.envoyFileAccessLog.logFormat));
    }
  } else if (mesh.accessLogFile) {
    accessLogs.push(
      fileAccessLog(
        mesh.accessLogFile,
        mesh.accessLogEncoding === 'JSON' ? { labels: istioJsonFields } : mesh.accessLogFormat ? { text: mesh.accessLogFormat } : undefined,
      ),
    );
  }
  if (accessLogs.length > 0) fields['access_log'] = accessLogs;

  // Tracing: one provider per connection manager, as in Envoy and Istio.
  const traceEntries = entriesFor(applied, 'tracing', direction);
  const entry = traceEntries?.find((e) => !e.disableSpanReporting);
  const disabled = traceEntries !== undefined && !entry;
  const name = entry?.providers?.[0]?.name ?? (disabled ? undefined : mesh.defaultProviders?.tracing?.[0]);
  if (!name && traceEntries === undefined) {
    // No Telemetry and no default provider: Istio's legacy path (meshConfig.enableTracing, on by default;
    // tracing.go configureTracingFromTelemetry) samples at the proxy config's rate with no provider of its own,
    // so Envoy reports to the tracer of its bootstrap (the agent's ProxyConfig tracing, Zipkin by default).
    fields['tracing'] = { random_sampling: { value: mesh.tracingSampling ?? 1 } };
  }
  if (name) {
    const provider = providerNamed(model, name);
    const tracer = provider ? tracerOf(model, provider, workload) : undefined;
    if (!provider || (!provider.opentelemetry && !provider.zipkin))
      problems.push(`tracing provider "${name}" is not an opentelemetry or zipkin extension provider of the mesh`);
    else if (!tracer)
      problems.push(`tracing provider "${name}": its collector service is not in the mesh, so nothing is traced (as in Istio)`);
    else {
      fields['tracing'] = {
        provider: tracer,
        random_sampling: { value: entry?.randomSamplingPercentage ?? mesh.tracingSampling ?? 1 },
        ...(entry?.customTags ? { custom_tags: customTags(entry.customTags) } : {}),
      };
    }
  }
  return { fields, problems };
}

/** The hostnames of a model's services, once per model (a tracer is looked up per proxy group and direction). */
const hostsByModel = new WeakMap<MeshModel, Set<string>>();
function meshHosts(model: MeshModel): Set<string> {
  let hosts = hostsByModel.get(model);
  if (!hosts) hostsByModel.set(model, (hosts = new Set(model.services.map((s) => serviceHost(s, model.clusterDomain)))));
  return hosts;
}

function tracerOf(model: MeshModel, provider: ExtensionProvider, workload: { namespace: string; labels: Record<string, string> }) {
  const serviceName = `${workload.labels['app'] ?? workload.labels['app.kubernetes.io/name'] ?? 'unknown'}.${workload.namespace}`;
  // Istio configures a tracer only when its collector is a service of the mesh (tracing.go, LookupCluster):
  // a tracer naming a cluster Envoy does not have would get the listener rejected.
  const inMesh = (host: string) => meshHosts(model).has(host);
  if (provider.opentelemetry) {
    const host = resolveHost(provider.opentelemetry.service, model.rootNamespace ?? 'istio-system', model.clusterDomain);
    if (!inMesh(host)) return undefined;
    return {
      name: 'envoy.tracers.opentelemetry',
      typed_config: any(types.openTelemetry, {
        grpc_service: { envoy_grpc: { cluster_name: outboundClusterName(provider.opentelemetry.port, host), authority: host } },
        service_name: serviceName,
      }),
    };
  }
  if (provider.zipkin) {
    const host = resolveHost(provider.zipkin.service, model.rootNamespace ?? 'istio-system', model.clusterDomain);
    if (!inMesh(host)) return undefined;
    return {
      name: 'envoy.tracers.zipkin',
      typed_config: any(types.zipkin, {
        collector_cluster: outboundClusterName(provider.zipkin.port, host),
        collector_endpoint: provider.zipkin.path ?? '/api/v2/spans',
        collector_endpoint_version: 'HTTP_JSON',
        trace_id_128bit: true,
        shared_span_context: { value: false },
      }),
    };
  }
  return undefined;
}

function customTags(tags: NonNullable<Entry['customTags']>): Array<Record<string, unknown>> {
  return Object.entries(tags)
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([tag, value]): Array<Record<string, unknown>> => {
      if (value.literal) return [{ tag, literal: { value: value.literal.value } }];
      if (value.environment)
        return [{ tag, environment: { name: value.environment.name, default_value: value.environment.defaultValue ?? '' } }];
      if (value.header) return [{ tag, request_header: { name: value.header.name, default_value: value.header.defaultValue ?? '' } }];
      return [];
    });
}
