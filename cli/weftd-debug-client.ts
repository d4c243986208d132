// weftd's debug endpoints (15014), reached through the API server's pod proxy so a
// kubeconfig is all the CLI needs: /debug/syncz, /debug/config_dump, /ready.
import { ports } from '../api/labels.js';
import type { ProxySyncStatus } from '../xds/server/discovery-types.js';
import { CliError } from './cli-error.js';
import type { ClusterConnection, RawResponse } from './cluster-connection.js';
import type { ControlPlane, WeftdPod } from './control-plane-locator.js';
import type { ConfigDump } from './config-dump.js';
import type { ConnectedProxy } from './sync-status.js';

const proxyPath = (pod: WeftdPod, path: string) =>
  `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}:${ports.monitoring}/proxy${path}`;

/** The API server's reason when it could not reach the pod (a Status body), else the pod's own answer. */
function reasonOf(response: RawResponse): string {
  let reason = response.body.trim();
  try {
    const status = JSON.parse(response.body) as { kind?: string; message?: string };
    if (status.kind === 'Status' && status.message) reason = status.message;
  } catch {
    // not JSON: keep the body
  }
  return `HTTP ${response.statusCode}${reason ? `: ${reason.slice(0, 300)}` : ''}`;
}

const failure = (pod: WeftdPod, path: string, response: RawResponse) =>
  `weftd pod ${pod.namespace}/${pod.name} answered ${path} with ${reasonOf(response)}`;

async function getJson<T>(connection: ClusterConnection, pod: WeftdPod, path: string): Promise<T> {
  const response = await connection
    .get(proxyPath(pod, path))
    .catch((error: unknown) => Promise.reject(connection.explain(error, `reading ${path} from ${pod.namespace}/${pod.name}`)));
  if (response.statusCode !== 200) throw new CliError(failure(pod, path, response));
  try {
    return JSON.parse(response.body) as T;
  } catch {
    throw new CliError(`weftd pod ${pod.namespace}/${pod.name} answered ${path} with something other than JSON`);
  }
}

/** Every proxy connected to any weftd pod; pods that cannot be read become warnings, unless all fail. */
export async function readSyncz(
  connection: ClusterConnection,
  planes: ControlPlane[],
): Promise<{ proxies: ConnectedProxy[]; warnings: string[] }> {
  const pods = planes.flatMap((plane) => plane.pods);
  if (pods.length === 0) {
    const where = planes.map((plane) => `${plane.namespace} (MeshInstallation ${plane.installation.metadata.name})`).join(', ');
    throw new CliError(`no weftd pod is running in ${where}; see \`weft status\``);
  }
  const answers = await Promise.allSettled(pods.map((pod) => getJson<ProxySyncStatus[]>(connection, pod, '/debug/syncz')));
  const proxies: ConnectedProxy[] = [];
  const warnings: string[] = [];
  answers.forEach((answer, index) => {
    const pod = pods[index] as WeftdPod;
    if (answer.status === 'fulfilled') for (const status of answer.value) proxies.push({ ...status, weftd: pod });
    else warnings.push(answer.reason instanceof Error ? answer.reason.message : String(answer.reason));
  });
  if (warnings.length === pods.length) throw new CliError(warnings.join('\n'));
  return { proxies, warnings };
}

/** What weftd sent one proxy, decoded (its Anys still packed). */
export async function readConfigDump(connection: ClusterConnection, proxy: ConnectedProxy): Promise<ConfigDump> {
  const dump = await getJson<ConfigDump & { error?: string }>(
    connection,
    proxy.weftd,
    `/debug/config_dump?proxyID=${encodeURIComponent(proxy.nodeId)}`,
  );
  if (dump.error) throw new CliError(`weftd pod ${proxy.weftd.namespace}/${proxy.weftd.name}: ${dump.error}`);
  return dump;
}

/** weftd's own readiness (/ready), which kubelets probe. */
export async function readReady(connection: ClusterConnection, pod: WeftdPod): Promise<{ ready: boolean; detail: string }> {
  try {
    const response = await connection.get(proxyPath(pod, '/ready'), 5_000);
    return response.statusCode === 200
      ? { ready: true, detail: response.body.trim() || 'ready' }
      : { ready: false, detail: reasonOf(response) };
  } catch (error) {
    return { ready: false, detail: connection.explain(error, `reading /ready from ${pod.namespace}/${pod.name}`).message };
  }
}
