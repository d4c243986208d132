// Stands in for Istio's pilot-agent of the `grpc-agent` template on the embedded
// cluster, where no container runs. When the injector gave the app GRPC_XDS_BOOTSTRAP,
// it writes the proxyless bootstrap the agent would (node id in Istio's form,
// GENERATOR=grpc), pointing straight at weftd's plaintext ADS port through the
// Service's EndpointSlice (the sandbox has no cluster DNS and routes no Service IP),
// then runs the app in this same process. Without GRPC_XDS_BOOTSTRAP it just runs the app.
//   argv: --kubeconfig <path> --xds-service <name>.<namespace>:<port> <app module>
//   env: POD_NAME, POD_NAMESPACE, POD_IP (from the pod, as for any workload)
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { DiscoveryV1Api, KubeConfig } from '@kubernetes/client-node';

const { values, positionals } = parseArgs({
  options: { kubeconfig: { type: 'string' }, 'xds-service': { type: 'string' } },
  allowPositionals: true,
});
const app = positionals[0];
if (!app) throw new Error('usage: local-grpc-agent --kubeconfig <path> --xds-service <name>.<namespace>:<port> <app module>');

async function weftdAddress(kubeconfig: string, service: string, timeoutMs = 60_000): Promise<string> {
  const [, name, namespace, port] = service.match(/^([^.]+)\.([^:]+):(\d+)$/) ?? [];
  if (!name || !namespace || !port) throw new Error(`--xds-service must be <name>.<namespace>:<port>, not ${service}`);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const slices = await discovery
      .listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${name}` })
      .catch(() => ({ items: [] }));
    const address = slices.items
      .flatMap((slice) => slice.endpoints ?? [])
      .find((endpoint) => endpoint.conditions?.ready !== false && endpoint.addresses[0])?.addresses[0];
    if (address) return `${address}:${port}`;
    if (Date.now() > deadline) throw new Error(`no ready endpoint of Service ${namespace}/${name} within ${timeoutMs / 1000} s`);
    await new Promise((done) => setTimeout(done, 500));
  }
}

if (process.env['GRPC_XDS_BOOTSTRAP']) {
  const pod = process.env['POD_NAME'];
  const namespace = process.env['POD_NAMESPACE'];
  const ip = process.env['POD_IP'];
  if (!pod || !namespace || !ip || !values.kubeconfig || !values['xds-service'])
    throw new Error('local-grpc-agent needs POD_NAME, POD_NAMESPACE, POD_IP, --kubeconfig and --xds-service');
  const server = await weftdAddress(values.kubeconfig, values['xds-service']);
  const bootstrap = {
    xds_servers: [{ server_uri: server, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: {
      id: `sidecar~${ip}~${pod}.${namespace}~${namespace}.svc.cluster.local`,
      locality: {},
      metadata: { GENERATOR: 'grpc', NAMESPACE: namespace, INSTANCE_IPS: ip },
    },
    server_listener_resource_name_template: 'xds.istio.io/grpc/lds/inbound/%s',
  };
  // The agent's file would be in a shared volume; here the bootstrap itself is handed over.
  delete process.env['GRPC_XDS_BOOTSTRAP'];
  process.env['GRPC_XDS_BOOTSTRAP_CONFIG'] = JSON.stringify(bootstrap);
  process.stdout.write(`local-grpc-agent: ${pod}.${namespace} gets its xDS from ${server}\n`);
}
await import(pathToFileURL(resolve(app)).href);
