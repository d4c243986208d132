// The journey's target on a kind cluster (`make e2e-kind`, e2e/kind/run.sh): real
// kubelets and containers, Weft's and the sample app's images loaded into the nodes,
// Istio's proxyv2 pulled from Docker Hub. Sample pods get Envoy sidecars, which
// capture the client's plain DNS dial to the Service; requests from inside a pod go
// through `kubectl exec` into its app container.
//   KUBECONFIG (required), WEFT_E2E_ECHO_IMAGE (the tag run.sh loaded)
import { run, type E2eTarget } from './target.js';

export function kindTarget(): E2eTarget {
  const kubeconfigPath = process.env['KUBECONFIG'];
  const echoImage = process.env['WEFT_E2E_ECHO_IMAGE'];
  if (!kubeconfigPath || !echoImage)
    throw new Error('the kind target needs KUBECONFIG and WEFT_E2E_ECHO_IMAGE; run it with `make e2e-kind`');
  const kubectl = (args: string[], input?: string) => run('kubectl', args, input === undefined ? {} : { input });
  return {
    name: 'kind',
    kubeconfigPath,
    echoImage,
    injectionTemplate: 'sidecar',
    serviceTarget: (host, port) => `dns:///${host}:${port}`,
    plainServiceTarget: async (service, namespace, port) => `dns:///${service}.${namespace}.svc.cluster.local:${port}`,
    kubectl,
    async httpGetFromPod(namespace, pod, port, path) {
      // The app image is node without curl: node's fetch, from the app container (not the proxy's UID).
      const script =
        'fetch(process.argv[1]).then(async (r) => { process.stdout.write(await r.text()); if (!r.ok) process.exit(1); }, (e) => { console.error(e.message); process.exit(2); })';
      const result = await kubectl([
        'exec',
        '-n',
        namespace,
        pod,
        '-c',
        'app',
        '--',
        'node',
        '-e',
        script,
        `http://127.0.0.1:${port}${path}`,
      ]);
      if (result.status !== 0) throw new Error(`GET ${path} in ${namespace}/${pod}: ${result.stderr.trim() || result.stdout}`);
      return result.stdout;
    },
    async logs(namespace) {
      const pods = await kubectl(['get', 'pods', '-n', namespace, '-o', 'name']);
      const sections: string[] = [];
      for (const pod of pods.stdout.split('\n').filter(Boolean)) {
        const logs = await kubectl(['logs', '-n', namespace, pod, '--all-containers', '--prefix', '--tail=80']);
        sections.push(`--- ${namespace}/${pod}\n${logs.stdout}${logs.stderr}`);
      }
      return sections.join('\n');
    },
    async stop() {},
  };
}
