// `weft analyze` live, as users run it (`node dist/cmd/weft.js analyze`, a real
// subprocess with only a kubeconfig), against a real cluster carrying Istio's CRDs:
// unknown subsets, selectors matching nothing, pods missing the proxy and
// namespaces without an injection label are found with istioctl's codes and exit code.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { readWeftCrds } from '../api/crds.js';
import { ensureClusterBinaries } from '../testing/cluster/binaries.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, kubectl } from '../testing/jest/kube-helpers.js';

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

describeWithCluster('weft analyze (live)', (cluster) => {
  let kc: KubeConfig;

  const weft = (args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [join(process.cwd(), 'dist', 'cmd', 'weft.js'), ...args],
        { env: { ...process.env, KUBECONFIG: cluster().kubeconfigPath }, timeout: 60_000 },
        (error, stdout, stderr) => resolve({ status: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }),
      );
    });

  beforeAll(async () => {
    kc = cluster().kubeConfig();
    const { kubectl: kubectlPath } = await ensureClusterBinaries(undefined, { allowBuild: false });
    const istioCrds = readWeftCrds().filter((crd) => String((crd['spec'] as { group: string }).group).endsWith('istio.io'));
    expect(
      kubectl(cluster(), kubectlPath, ['apply', '--server-side', '-f', '-'], istioCrds.map((c) => stringify(c)).join('---\n')).stderr,
    ).toBe('');
    const crdNames = istioCrds.map((crd) => `crd/${(crd['metadata'] as { name: string }).name}`);
    expect(kubectl(cluster(), kubectlPath, ['wait', '--for=condition=Established', '--timeout=60s', ...crdNames]).status).toBe(0);

    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await createNamespace(kc, 'shop', { 'weft-injection': 'enabled' });
    await createNamespace(kc, 'plain');
    await createNamespace(kc, 'both', { 'istio-injection': 'enabled', 'istio.io/rev': 'canary' });
    await core.createNamespacedService({
      namespace: 'shop',
      body: { metadata: { name: 'echo' }, spec: { selector: { app: 'echo' }, ports: [{ name: 'grpc', port: 8080 }] } },
    });
    // A pod created before the namespace was labelled (or while the injector was down): no proxy.
    await core.createNamespacedPod({
      namespace: 'shop',
      body: {
        metadata: { name: 'echo-v1', labels: { app: 'echo', version: 'v1' } },
        spec: { containers: [{ name: 'echo', image: 'registry.example/echo:1' }] },
      },
    });
    const create = (group: string, plural: string, kind: string, name: string, spec: object) =>
      custom.createNamespacedCustomObject({
        group,
        version: 'v1',
        namespace: 'shop',
        plural,
        body: { apiVersion: `${group}/v1`, kind, metadata: { name, namespace: 'shop' }, spec },
      });
    await create('networking.istio.io', 'destinationrules', 'DestinationRule', 'echo', {
      host: 'echo',
      subsets: [{ name: 'v1', labels: { version: 'v1' } }],
    });
    await create('networking.istio.io', 'virtualservices', 'VirtualService', 'echo', {
      hosts: ['echo'],
      http: [{ route: [{ destination: { host: 'echo', subset: 'v2' } }] }],
    });
    await create('security.istio.io', 'authorizationpolicies', 'AuthorizationPolicy', 'ghost-only', {
      selector: { matchLabels: { app: 'ghost' } },
      action: 'ALLOW',
    });
    await create('security.istio.io', 'peerauthentications', 'PeerAuthentication', 'echo-strict', {
      selector: { matchLabels: { app: 'echo' } },
      mtls: { mode: 'STRICT' },
    });
  });

  it('reports the namespace it is asked about, with istioctl codes, and exits 79 on errors', async () => {
    const run = await weft(['analyze', '-n', 'shop']);
    // stderr rides along so a failure says why weft stopped.
    expect({ status: run.status, stderr: run.status === 79 ? '' : run.stderr }).toEqual({ status: 79, stderr: '' });
    const lines = run.stdout.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^Error \[IST0101\] \(VirtualService shop\/echo\) .*subset "v2"/),
      expect.stringMatching(/^Warning \[IST0103\] \(Pod shop\/echo-v1\) The pod echo-v1 is missing the Istio proxy/),
      'Warning [IST0127] (AuthorizationPolicy shop/ghost-only) No matching workloads for this resource with the following labels: app=ghost',
    ]);
    expect(run.stderr).toMatch(/^Error: Analyzers found issues when analyzing namespace: shop\./);
  });

  it('warns about a namespace with both injection labels (IST0123), as istioctl does', async () => {
    const both = await weft(['analyze', '-n', 'both']);
    expect(both.stdout.trim().split('\n')).toEqual([
      'Warning [IST0123] (Namespace both) The namespace has more than one type of injection labels [istio-injection=enabled istio.io/rev=canary], which may lead to undefined behavior. Make sure only one injection label exists.',
    ]);
    expect(both.status).toBe(0);
  });

  it('lists its analyzers as istioctl analyze -L does', async () => {
    const list = await weft(['analyze', '--list-analyzers']);
    expect(list.status).toBe(0);
    expect(list.stdout).toContain(
      '* injection.Analyzer:\n    Checks conditions related to Istio sidecar injection (IST0102, IST0103, IST0123)\n',
    );
  });

  it('tells an unlabelled namespace apart (Info, exit 0), and reads every namespace with -A as JSON', async () => {
    const plain = await weft(['analyze', '-n', 'plain']);
    expect(plain.status).toBe(0);
    expect(plain.stdout).toMatch(
      /^Info \[IST0102\] \(Namespace plain\) The namespace is not enabled for Istio injection\. Run 'kubectl label namespace plain weft-injection=enabled'/,
    );

    const all = await weft(['analyze', '-A', '-o', 'json']);
    expect(all.status).toBe(0);
    const messages = JSON.parse(all.stdout) as Array<{ code: string; origin: string }>;
    expect(messages.map((m) => `${m.code} ${m.origin}`)).toEqual(
      expect.arrayContaining([
        'IST0101 VirtualService shop/echo',
        'IST0102 Namespace plain',
        'IST0102 Namespace default',
        'IST0103 Pod shop/echo-v1',
      ]),
    );
    expect(messages.some((m) => m.origin.startsWith('Namespace kube-'))).toBe(false);
  });

  it("checks a Gateway's credentialName Secret in its workloads' namespace, reading Secret names only", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await createNamespace(kc, 'edge');
    await createNamespace(kc, 'edge-gateways');
    await core.createNamespacedPod({
      namespace: 'edge-gateways',
      body: {
        metadata: { name: 'front-gateway', labels: { app: 'front-gateway' } },
        spec: { containers: [{ name: 'istio-proxy', image: 'registry.example/proxyv2:1' }] },
      },
    });
    const keyMaterial = 'weft-analyze-must-not-print-this';
    const secret = (namespace: string, name: string) =>
      core.createNamespacedSecret({
        namespace,
        body: { metadata: { name }, stringData: { 'tls.crt': keyMaterial, 'tls.key': keyMaterial } },
      });
    // In the Gateway's namespace, not the gateway pods': the proxy could not read it.
    await secret('edge', 'front-cert');
    await secret('edge-gateways', 'api-cert');
    const server = (port: number, credentialName: string) => ({
      port: { number: port, name: `https-${port}`, protocol: 'HTTPS' },
      hosts: ['*.example.com'],
      tls: { mode: 'SIMPLE', credentialName },
    });
    await custom.createNamespacedCustomObject({
      group: 'networking.istio.io',
      version: 'v1',
      namespace: 'edge',
      plural: 'gateways',
      body: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'Gateway',
        metadata: { name: 'front', namespace: 'edge' },
        spec: { selector: { app: 'front-gateway' }, servers: [server(443, 'front-cert'), server(8443, 'api-cert')] },
      },
    });
    const run = await weft(['analyze', '-n', 'edge']);
    expect(run.stdout).toContain('Error [IST0101] (Gateway edge/front) Referenced credentialName not found: "front-cert"\n');
    expect(run.stdout).not.toMatch(/api-cert/);
    expect(run.status).toBe(79);
    expect(run.stdout + run.stderr).not.toContain(keyMaterial);
  });

  it('analyzes files over the live cluster with --use-kube, as if they were applied', async () => {
    const fixed = join(cluster().workDir, 'echo-vs-fixed.yaml');
    writeFileSync(
      fixed,
      stringify({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'echo', namespace: 'shop' },
        spec: { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo', subset: 'v1' } }] }] },
      }),
    );
    const run = await weft(['analyze', '-n', 'shop', '--use-kube', '-f', fixed]);
    expect(run.stdout).not.toMatch(/IST0101/);
    expect(run.stdout).toMatch(/IST0127/);
    expect(run.status).toBe(0);
    // Without -n the context's namespace is analyzed, and the file's own objects still are: a missing
    // subset in a file for shop is reported though the context points at default.
    const broken = join(cluster().workDir, 'echo-vs-broken.yaml');
    writeFileSync(
      broken,
      stringify({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'echo', namespace: 'shop' },
        spec: { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo', subset: 'v3' } }] }] },
      }),
    );
    const unscoped = await weft(['analyze', '--use-kube', '-f', broken]);
    expect(unscoped.stdout).toMatch(/Error \[IST0101\] \(VirtualService shop\/echo/);
    expect(unscoped.status).toBe(79);
    // Offline, the same file alone: the host is unknown without the cluster's Services.
    const offline = await weft(['analyze', '-f', fixed]);
    expect(offline.status).toBe(79);
    expect(offline.stdout).toMatch(
      new RegExp(`^Error \\[IST0101\\] \\(VirtualService shop/echo ${fixed.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`),
    );
  });
});
