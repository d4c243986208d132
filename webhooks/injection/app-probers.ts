// Application probes through the agent, as Istio rewrites them
// (pkg/kube/inject/app_probe.go): with mTLS the kubelet cannot reach the app
// directly, so every readiness, liveness and startup probe (httpGet, tcpSocket or
// grpc) and every preStop/postStart hook (httpGet or tcpSocket) of every container
// but istio-proxy becomes an httpGet on the agent's status port, and the original
// goes to the agent in ISTIO_KUBE_APP_PROBERS. Pure.
import type { V1Container, V1HTTPGetAction, V1LifecycleHandler, V1Probe } from '@kubernetes/client-node';

/** pilot-agent's status port (meshConfig.defaultConfig.statusPort), where the kubelet's probes go. */
export const defaultStatusPort = 15020;

/** One entry of ISTIO_KUBE_APP_PROBERS (Istio's `Prober`), in Istio's field order. */
export interface AppProber {
  httpGet?: V1HTTPGetAction;
  tcpSocket?: { port: number | string; host?: string };
  grpc?: { port: number; service?: string };
  timeoutSeconds?: number;
}

/** The agent's paths for a container's probes and hooks (pilot-agent's status.FormatProberURL). */
export function proberUrls(container: string) {
  return {
    readinessProbe: `/app-health/${container}/readyz`,
    livenessProbe: `/app-health/${container}/livez`,
    startupProbe: `/app-health/${container}/startupz`,
    preStop: `/app-lifecycle/${container}/prestopz`,
    postStart: `/app-lifecycle/${container}/poststartz`,
  } as const;
}

const probeFields = ['readinessProbe', 'livenessProbe', 'startupProbe'] as const;
const hookFields = ['preStop', 'postStart'] as const;

/** Istio's ShouldRewriteAppHTTPProbers: the pod annotation, when it parses as a boolean, else the injector default (true). */
export function shouldRewriteAppProbers(annotations: Record<string, string> | undefined, byDefault = true): boolean {
  const value = annotations?.['sidecar.istio.io/rewriteAppHTTPProbers']?.trim().toLowerCase();
  if (value === 'true' || value === '1' || value === 't') return true;
  if (value === 'false' || value === '0' || value === 'f') return false;
  return byDefault;
}

/** The handler as the agent's prober, or undefined for exec (and empty) handlers, which stay with the kubelet. */
function proberOf(handler: V1Probe | V1LifecycleHandler | undefined, withTimeout: boolean): AppProber | undefined {
  if (!handler) return undefined;
  const timeout = withTimeout && (handler as V1Probe).timeoutSeconds ? { timeoutSeconds: (handler as V1Probe).timeoutSeconds } : {};
  if (handler.httpGet) return { httpGet: handler.httpGet, ...timeout };
  if (handler.tcpSocket) return { tcpSocket: handler.tcpSocket as AppProber['tcpSocket'] & object, ...timeout };
  if ((handler as V1Probe).grpc) return { grpc: (handler as V1Probe).grpc as AppProber['grpc'] & object, ...timeout };
  return undefined;
}

/**
 * Istio's DumpAppProbers for one handler: named ports resolved against the container's
 * ports (unknown names: left out, the agent could not reach them); a port already equal
 * to the status port means the probe was rewritten before: left out. gRPC ports are numbers.
 */
function resolved(prober: AppProber | undefined, portsByName: Map<string, number>, statusPort: number): AppProber | undefined {
  if (!prober) return undefined;
  if (prober.grpc) return prober;
  const port = prober.httpGet?.port ?? prober.tcpSocket?.port;
  let number: number;
  if (typeof port === 'string') {
    const found = portsByName.get(port);
    if (found === undefined) return undefined;
    number = found;
  } else if (typeof port === 'number') {
    if (port === statusPort) return undefined;
    number = port;
  } else return undefined;
  if (prober.httpGet) return { ...prober, httpGet: httpGetInGoOrder({ ...prober.httpGet, port: number }) };
  return { ...prober, tcpSocket: { ...prober.tcpSocket, port: number } };
}

/** HTTPGetAction in the field order Go marshals it (path, port, host, scheme, httpHeaders), so the JSON is Istio's. */
function httpGetInGoOrder(action: V1HTTPGetAction): V1HTTPGetAction {
  return {
    ...(action.path !== undefined ? { path: action.path } : {}),
    port: action.port,
    ...(action.host !== undefined ? { host: action.host } : {}),
    ...(action.scheme !== undefined ? { scheme: action.scheme } : {}),
    ...(action.httpHeaders !== undefined ? { httpHeaders: action.httpHeaders } : {}),
  };
}

/**
 * Istio's rewriteHTTPGetAction: the agent's path and port; HTTPS becomes HTTP (the kubelet
 * talks plain HTTP to the agent, which uses HTTPS to the app); host and headers stay.
 */
function rewrittenHttpGet(original: V1HTTPGetAction | undefined, path: string, statusPort: number): V1HTTPGetAction {
  const scheme = original?.scheme === 'HTTPS' ? 'HTTP' : original?.scheme;
  return httpGetInGoOrder({ ...original, path, port: statusPort, ...(scheme !== undefined ? { scheme } : {}) });
}

/** A probe or hook handed to the agent: an httpGet on the status port, the tcpSocket/grpc handler removed. */
function convertHandler<T extends V1Probe | V1LifecycleHandler>(
  handler: T,
  path: string,
  statusPort: number,
  probe: boolean,
): T | undefined {
  const kinds = probe ? ['httpGet', 'tcpSocket', 'grpc'] : ['httpGet', 'tcpSocket'];
  if (!kinds.some((kind) => (handler as Record<string, unknown>)[kind])) return undefined;
  const { tcpSocket: _tcp, grpc: _grpc, ...rest } = handler as V1Probe;
  return { ...rest, httpGet: rewrittenHttpGet(handler.httpGet, path, statusPort) } as T;
}

/**
 * Rewrites the probes and lifecycle hooks of `containers` (skipping istio-proxy) to the
 * agent at `statusPort`, and returns the agent's ISTIO_KUBE_APP_PROBERS entries for them,
 * keyed by path and sorted as Go marshals a map. Containers without such handlers are
 * returned as they were (same object).
 */
export function rewriteAppProbers(
  containers: readonly V1Container[],
  statusPort: number,
): { containers: V1Container[]; probers: Record<string, AppProber> } {
  const probers: Record<string, AppProber> = {};
  const rewritten = containers.map((container) => {
    if (container.name === 'istio-proxy') return container;
    const urls = proberUrls(container.name);
    const portsByName = new Map((container.ports ?? []).filter((p) => p.name).map((p) => [p.name as string, p.containerPort]));
    let copy: V1Container | undefined;
    for (const field of probeFields) {
      const probe = container[field];
      const prober = resolved(proberOf(probe, true), portsByName, statusPort);
      if (prober) probers[urls[field]] = prober;
      const converted = probe && convertHandler(probe, urls[field], statusPort, true);
      if (converted) (copy ??= { ...container })[field] = converted;
    }
    for (const field of hookFields) {
      const hook = container.lifecycle?.[field];
      const prober = resolved(proberOf(hook, false), portsByName, statusPort);
      if (prober) probers[urls[field]] = prober;
      const converted = hook && convertHandler(hook, urls[field], statusPort, false);
      if (converted) {
        copy ??= { ...container };
        copy.lifecycle = { ...copy.lifecycle, [field]: converted };
      }
    }
    return copy ?? container;
  });
  const sorted = Object.fromEntries(Object.entries(probers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { containers: rewritten, probers: sorted };
}
