// The local cluster is real Kubernetes: these tests hold it to what a cluster does.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:https';
import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import { describeWithCluster } from '../jest/local-cluster-fixture.js';
import { createNamespace, eventually } from '../jest/kube-helpers.js';
import { ensureClusterBinaries } from './binaries.js';
import { LocalCluster } from './local-cluster.js';
import { generateRsaKeyPair, issueCertificate, privateKeyToPem } from '../../lib/x509.js';
import { callEcho } from '../workloads/echo.js';

async function runningPods(kc: KubeConfig, namespace: string, selector: string, count: number): Promise<V1Pod[]> {
  const core = kc.makeApiClient(CoreV1Api);
  return eventually(`${count} running pods (${selector})`, async () => {
    const pods = (await core.listNamespacedPod({ namespace, labelSelector: selector })).items;
    const running = pods.filter((pod) => pod.status?.phase === 'Running' && pod.status.podIP);
    return running.length === count ? running : undefined;
  });
}

function deployment(name: string, replicas: number) {
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'app', image: 'registry.invalid/echo:1', ports: [{ containerPort: 8080 }] }] },
      },
    },
  };
}

describeWithCluster('local cluster', (cluster) => {
  it('schedules a Deployment onto kwok nodes whose pods run with IPs from the pod CIDR', async () => {
    const kc = cluster().kubeConfig();
    await createNamespace(kc, 'deploy');
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace: 'deploy', body: deployment('web', 8) });
    const pods = await runningPods(kc, 'deploy', 'app=web', 8);
    for (const pod of pods) {
      expect(cluster().nodeNames).toContain(pod.spec?.nodeName);
      expect(pod.status?.podIP).toMatch(/^10\.244\.\d+\.\d+$/);
    }
    // Eight pods on two nodes: every pod its own address (kwok's first allocations per node race otherwise).
    expect(new Set(pods.map((pod) => pod.status?.podIP)).size).toBe(8);
  });

  it("lists a Service's ready pods in its EndpointSlice", async () => {
    const kc = cluster().kubeConfig();
    await createNamespace(kc, 'svc');
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace: 'svc', body: deployment('api', 2) });
    await kc.makeApiClient(CoreV1Api).createNamespacedService({
      namespace: 'svc',
      body: { metadata: { name: 'api' }, spec: { selector: { app: 'api' }, ports: [{ name: 'grpc', port: 80, targetPort: 8080 }] } },
    });
    const podIps = (await runningPods(kc, 'svc', 'app=api', 2)).map((pod) => pod.status?.podIP).sort();
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const endpointIps = await eventually('EndpointSlice with both pods ready', async () => {
      const slices = await discovery.listNamespacedEndpointSlice({ namespace: 'svc', labelSelector: 'kubernetes.io/service-name=api' });
      const ready = slices.items.flatMap((slice) => (slice.endpoints ?? []).filter((e) => e.conditions?.ready).flatMap((e) => e.addresses));
      return ready.length === 2 ? ready.sort() : undefined;
    });
    expect(endpointIps).toEqual(podIps);
  });

  it('issues ServiceAccount tokens that TokenReview authenticates as that account', async () => {
    const kc = cluster().kubeConfig();
    await createNamespace(kc, 'identity');
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace: 'identity', body: { metadata: { name: 'cart' } } });
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      name: 'cart',
      namespace: 'identity',
      body: { spec: { audiences: ['istio-ca'], expirationSeconds: 3600 } },
    });
    const token = tokenRequest.status?.token ?? '';
    const authn = kc.makeApiClient(AuthenticationV1Api);
    const review = await authn.createTokenReview({ body: { spec: { token, audiences: ['istio-ca'] } } });
    expect(review.status?.authenticated).toBe(true);
    expect(review.status?.user?.username).toBe('system:serviceaccount:identity:cart');
    expect(review.status?.audiences).toEqual(['istio-ca']);

    const wrongAudience = await authn.createTokenReview({ body: { spec: { token, audiences: ['someone-else'] } } });
    expect(wrongAudience.status?.authenticated).toBeFalsy();
    const forged = await authn.createTokenReview({ body: { spec: { token: `${token.slice(0, -4)}AAAA` } } });
    expect(forged.status?.authenticated).toBeFalsy();
  });

  describe('with workloads bound to pod IPs in the sandbox', () => {
    const children: ChildProcess[] = [];
    const servers: Server[] = [];
    afterAll(async () => {
      for (const child of children) child.kill('SIGKILL');
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    });

    function startWorkload(pod: V1Pod, port: number): Promise<void> {
      const script = join(process.cwd(), 'dist', 'testing', 'workloads', 'echo-workload.js');
      if (!existsSync(script)) throw new Error(`${script} is missing: run 'make build' first`);
      const child = spawn(process.execPath, [script], {
        env: { ...process.env, POD_NAME: pod.metadata?.name, POD_IP: pod.status?.podIP, PORT: String(port) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      return new Promise((resolve, reject) => {
        child.stdout?.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`workload for ${pod.metadata?.name} exited with ${code}`)));
      });
    }

    it('carries a gRPC call between two processes bound to two pod IPs', async () => {
      const kc = cluster().kubeConfig();
      await createNamespace(kc, 'traffic');
      await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({ namespace: 'traffic', body: deployment('echo', 2) });
      const [first, second] = await runningPods(kc, 'traffic', 'app=echo', 2);
      if (!first || !second) throw new Error('expected two pods');
      await Promise.all([startWorkload(first, 8080), startWorkload(second, 8080)]);

      const reply = await callEcho(`${first.status?.podIP}:8080`, { message: 'hello', forwardTo: `${second.status?.podIP}:8080` });
      expect(reply.pod).toBe(first.metadata?.name);
      expect(reply.forwarded).toEqual({ pod: second.metadata?.name, message: 'hello' });
    });

    it('calls a MutatingWebhookConfiguration served from a pod IP and stores its patch', async () => {
      const kc = cluster().kubeConfig();
      await createNamespace(kc, 'hooks');
      await createNamespace(kc, 'hooked');
      const core = kc.makeApiClient(CoreV1Api);
      // The webhook "pod": a kwok pod whose IP this test process serves HTTPS on.
      await core.createNamespacedPod({
        namespace: 'hooks',
        body: {
          metadata: { name: 'webhook', labels: { app: 'webhook' } },
          spec: { containers: [{ name: 'hook', image: 'registry.invalid/hook:1' }] },
        },
      });
      const [hookPod] = await runningPods(kc, 'hooks', 'app=webhook', 1);
      const hookIp = hookPod?.status?.podIP as string;
      await core.createNamespacedService({
        namespace: 'hooks',
        body: { metadata: { name: 'webhook' }, spec: { selector: { app: 'webhook' }, ports: [{ port: 443, targetPort: 9443 }] } },
      });

      const day = 24 * 3600 * 1000;
      const caKeys = generateRsaKeyPair();
      const caPem = issueCertificate({ commonName: 'hook-ca', isCA: true, notAfter: new Date(Date.now() + day) }, caKeys.publicKey, {
        selfSigningKey: caKeys.privateKey,
      });
      const servingKeys = generateRsaKeyPair();
      const servingPem = issueCertificate(
        { commonName: 'webhook.hooks.svc', dnsNames: ['webhook.hooks.svc'], usages: ['serverAuth'], notAfter: new Date(Date.now() + day) },
        servingKeys.publicKey,
        { certificatePem: caPem, privateKey: caKeys.privateKey },
      );
      const reviewedPods: string[] = [];
      const server = createServer({ cert: servingPem, key: privateKeyToPem(servingKeys.privateKey) }, (req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => {
          const review = JSON.parse(body) as { request: { uid: string; object: V1Pod } };
          reviewedPods.push(review.request.object.metadata?.generateName ?? review.request.object.metadata?.name ?? '');
          const patch = [{ op: 'add', path: '/metadata/annotations', value: { 'weft.dev/seen-by': 'test-webhook' } }];
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({
              apiVersion: 'admission.k8s.io/v1',
              kind: 'AdmissionReview',
              response: {
                uid: review.request.uid,
                allowed: true,
                patchType: 'JSONPatch',
                patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
              },
            }),
          );
        });
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(9443, hookIp, resolve));
      await eventually('webhook endpoints', async () => {
        const slices = await kc
          .makeApiClient(DiscoveryV1Api)
          .listNamespacedEndpointSlice({ namespace: 'hooks', labelSelector: 'kubernetes.io/service-name=webhook' });
        return slices.items.some((slice) => (slice.endpoints ?? []).some((e) => e.conditions?.ready)) ? true : undefined;
      });

      await kc.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
        body: {
          metadata: { name: 'test-hook' },
          webhooks: [
            {
              name: 'pods.test-hook.weft.dev',
              admissionReviewVersions: ['v1'],
              sideEffects: 'None',
              failurePolicy: 'Fail',
              timeoutSeconds: 5,
              clientConfig: {
                service: { name: 'webhook', namespace: 'hooks', path: '/inject' },
                caBundle: Buffer.from(caPem).toString('base64'),
              },
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'hooked' } },
              rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
            },
          ],
        },
      });
      // Webhook configurations reach the apiserver's admission chain asynchronously.
      const stored = await eventually('a pod admitted through the webhook', async () => {
        const pod = await core.createNamespacedPod({
          namespace: 'hooked',
          body: { metadata: { generateName: 'app-' }, spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] } },
        });
        if (pod.metadata?.annotations?.['weft.dev/seen-by']) return pod;
        await core.deleteNamespacedPod({ name: pod.metadata?.name as string, namespace: 'hooked' });
        return undefined;
      });
      const reread = await core.readNamespacedPod({ name: stored.metadata?.name as string, namespace: 'hooked' });
      expect(reread.metadata?.annotations?.['weft.dev/seen-by']).toBe('test-webhook');
      expect(reviewedPods).toContain('app-');
    });
  });

  it('has no route out of the sandbox: a dial to any non-local address fails at once', async () => {
    const started = Date.now();
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => {
      const socket = connect({ host: '192.0.2.10', port: 443 });
      socket.on('error', resolve);
      socket.on('connect', () => resolve(Object.assign(new Error('connected'), { code: 'CONNECTED' })));
    });
    expect(error.code).toBe('ENETUNREACH');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('runs a second cluster side by side and leaves no process or file behind when it stops', async () => {
    const binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
    const second = await LocalCluster.start({ binaries, nodes: 1 });
    try {
      expect(second.server).not.toBe(cluster().server);
      const nodes = await second.kubeConfig().makeApiClient(CoreV1Api).listNode();
      expect(nodes.items.map((node) => node.metadata?.name)).toEqual(['kwok-node-0']);
      // The first cluster does not see the second's objects.
      await createNamespace(second.kubeConfig(), 'only-in-second');
      const firstNamespaces = await cluster().kubeConfig().makeApiClient(CoreV1Api).listNamespace();
      expect(firstNamespaces.items.map((ns) => ns.metadata?.name)).not.toContain('only-in-second');
    } finally {
      const pids = second.pids();
      expect(pids).toHaveLength(5);
      await second.stop();
      for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
      expect(existsSync(second.workDir)).toBe(false);
    }
  }, 120_000);
});
