// The operator against a real cluster: installed from dist/install.yaml, run as
// the process of its own kwok pods with its own ServiceAccount's token.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
} from '@kubernetes/client-node';
import { meshInstallationApi, type MeshInstallation } from '../api/mesh-installation.js';
import { ensureClusterBinaries, type ClusterBinaries } from '../testing/cluster/binaries.js';
import { PodProcessRunner, weftImageRule } from '../testing/cluster/pod-processes.js';
import { describeWithCluster } from '../testing/jest/local-cluster-fixture.js';
import { createNamespace, eventually, kubectl } from '../testing/jest/kube-helpers.js';
import { generateRsaKeyPair, issueCertificate, privateKeyToPem } from '../lib/x509.js';
import { certificateServiceDefinition } from '../ca/server/certificate-service.js';
import { buildCsr } from '../testing/fixtures/csr.js';

const { group, version, plural } = meshInstallationApi;
const installYaml = join(process.cwd(), 'dist', 'install.yaml');

function installationYaml(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 'mesh.weft.dev/v1alpha1', kind: 'MeshInstallation', metadata: { name }, spec });
}

describeWithCluster(
  'operator',
  (cluster) => {
    let binaries: ClusterBinaries;
    let runner: PodProcessRunner;
    let kc: KubeConfig;
    const run = (args: string[], input?: string) => kubectl(cluster(), binaries.kubectl, args, input);
    const readInstallation = async (name: string) =>
      (await kc.makeApiClient(CustomObjectsApi).getClusterCustomObject({ group, version, plural, name })) as MeshInstallation;
    const condition = (mi: MeshInstallation, type: string) => mi.status?.conditions?.find((c) => c.type === type);
    const waitForCondition = (name: string, type: string, status: string, reason?: string) =>
      eventually(`${name} ${type}=${status}${reason ? ` (${reason})` : ''}`, async () => {
        const mi = await readInstallation(name);
        const c = condition(mi, type);
        return c?.status === status && (!reason || c.reason === reason) && mi.status?.observedGeneration === mi.metadata.generation
          ? mi
          : undefined;
      });
    const apps = () => kc.makeApiClient(AppsV1Api);
    const admission = () => kc.makeApiClient(AdmissionregistrationV1Api);
    const core = () => kc.makeApiClient(CoreV1Api);
    /** Successful reconciles so far, summed over the operator's pods (each serves /metrics on 15014). */
    const operatorReconciles = async () => {
      const pods = await core().listNamespacedPod({ namespace: 'weft-operator' });
      let total = 0;
      for (const pod of pods.items) {
        if (!pod.status?.podIP) continue;
        const text = await fetch(`http://${pod.status.podIP}:15014/metrics`).then(
          (r) => (r.ok ? r.text() : ''),
          () => '',
        );
        const sample = /^weft_operator_reconcile_total\{result="success"\} (\d+)$/m.exec(text);
        total += Number(sample?.[1] ?? 0);
      }
      return total;
    };

    beforeAll(async () => {
      if (!existsSync(installYaml)) throw new Error(`${installYaml} is missing: run 'make manifests' (make test-integration does)`);
      binaries = await ensureClusterBinaries(undefined, { allowBuild: false });
      kc = cluster().kubeConfig();
      const applied = run(['apply', '--server-side', '-f', installYaml]);
      expect(applied.stderr).toBe('');
      expect(run(['wait', '--for=condition=Established', 'crd/meshinstallations.mesh.weft.dev', '--timeout=30s']).status).toBe(0);
      runner = new PodProcessRunner(kc, {
        server: cluster().server,
        caFile: cluster().pki.caFile,
        workDir: join(cluster().workDir, 'pods'),
        rules: [weftImageRule(process.cwd())],
      });
      runner.start();
      await eventually('an operator replica to win the leader lease', async () => {
        const lease = await kc
          .makeApiClient(CoordinationV1Api)
          .readNamespacedLease({ name: 'weft-operator-leader', namespace: 'weft-operator' });
        return lease.spec?.holderIdentity?.startsWith('weft-operator-') ? lease : undefined;
      });
    }, 120_000);

    afterAll(async () => {
      await runner?.stop();
    });

    it('turns the sample MeshInstallation into a Ready control plane, with weftd running in its pod', async () => {
      const applied = run(['apply', '-f', join(process.cwd(), 'config', 'samples', 'meshinstallation.yaml')]);
      expect(applied.status).toBe(0);
      const mi = await waitForCondition('default', 'Ready', 'True');
      expect(condition(mi, 'Reconciled')).toMatchObject({ status: 'True', reason: 'Applied' });
      expect(condition(mi, 'Degraded')?.status).toBe('False');
      expect(mi.status?.components).toEqual([{ name: 'weftd', ready: true, message: '1/1 weftd replicas ready, 1 up to date' }]);

      const deployment = await apps().readNamespacedDeployment({ name: 'weftd', namespace: 'weft-system' });
      expect(deployment.spec?.replicas).toBe(1);
      const service = await core().readNamespacedService({ name: 'weftd', namespace: 'weft-system' });
      expect(service.spec?.ports?.map((p) => p.port)).toEqual([15010, 15012, 15014, 443]);
      const injector = await admission().readMutatingWebhookConfiguration({ name: 'weft-sidecar-injector-weft-system' });
      expect(injector.webhooks?.[0]?.clientConfig.service).toMatchObject({ name: 'weftd', namespace: 'weft-system', path: '/inject' });
      await admission().readValidatingWebhookConfiguration({ name: 'weft-validator-weft-system' });

      // weftd is a real process bound to its pod's IP, answering its readiness probe.
      const pods = await core().listNamespacedPod({ namespace: 'weft-system', labelSelector: 'app.kubernetes.io/name=weftd' });
      const podIp = pods.items[0]?.status?.podIP;
      const ready = await eventually('weftd /ready', async () => {
        const response = await fetch(`http://${podIp}:15014/ready`).catch(() => undefined);
        return response?.status === 200 ? response : undefined;
      });
      expect(await ready.text()).toBe('ready');

      // A second reconcile changes nothing: the resourceVersion stays put. An annotation on weftd's
      // Deployment (an object the operator watches for drift) makes the leader reconcile again, and
      // its success counter going up proves that reconcile has finished before we look.
      const before = await readInstallation('default');
      const reconciled = await operatorReconciles();
      await apps().patchNamespacedDeployment({
        name: 'weftd',
        namespace: 'weft-system',
        body: [{ op: 'add', path: '/metadata/annotations/weft.test~1touched', value: 'once' }],
      });
      await eventually('the operator to reconcile again', async () => ((await operatorReconciles()) > reconciled ? true : undefined));
      expect((await readInstallation('default')).metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    });

    it('runs a weftd that issues workload certificates on 15012 under its own least-privilege RBAC', async () => {
      await createNamespace(kc, 'payments');
      await core().createNamespacedServiceAccount({ namespace: 'payments', body: { metadata: { name: 'api' } } });
      const token = (
        await core().createNamespacedServiceAccountToken({
          name: 'api',
          namespace: 'payments',
          body: { spec: { audiences: ['istio-ca'] } },
        })
      ).status?.token;
      const bundle = await eventually(
        'the trust bundle in payments',
        async () => (await core().readNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace: 'payments' })).data?.['root-cert.pem'],
      );
      const pods = await core().listNamespacedPod({ namespace: 'weft-system', labelSelector: 'app.kubernetes.io/name=weftd' });
      const podIp = pods.items[0]?.status?.podIP;
      const Client = grpc.makeGenericClientConstructor(certificateServiceDefinition(), 'IstioCertificateService');
      const client = new Client(`${podIp}:15012`, grpc.credentials.createSsl(Buffer.from(bundle)), {
        'grpc.ssl_target_name_override': 'weftd.weft-system.svc',
      });
      const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${token}`);
      const response = await new Promise<{ cert_chain: string[] }>((resolve, reject) =>
        (
          client as unknown as Record<
            string,
            (r: object, m: grpc.Metadata, cb: (e: Error | null, v: { cert_chain: string[] }) => void) => void
          >
        )['CreateCertificate']?.({ csr: buildCsr(keys), validity_duration: 3600 }, metadata, (error, value) =>
          error ? reject(error) : resolve(value),
        ),
      );
      client.close();
      expect(new X509Certificate(response.cert_chain[0] as string).subjectAltName).toBe('URI:spiffe://cluster.local/ns/payments/sa/api');
      expect(response.cert_chain[response.cert_chain.length - 1]).toBe(bundle);
    });

    it('refuses invalid specs with a message naming the field, and changes nothing', async () => {
      const bad = (spec: Record<string, unknown>) => run(['apply', '-f', '-'], installationYaml('broken', spec));
      expect(bad({ profile: 'huge' }).stderr).toMatch(
        /spec\.profile: Unsupported value: "huge": supported values: "default", "demo", "minimal"/,
      );
      expect(bad({ ca: { mode: 'Plugged' } }).stderr).toContain('spec.ca.pluggedSecretName: Invalid value');
      expect(bad({ ca: { mode: 'Plugged' } }).stderr).toContain('ca.pluggedSecretName is required when ca.mode is Plugged');
      expect(bad({ ca: { workloadCertTTL: '5s' } }).stderr).toContain('workloadCertTTL must be between 1m and 2160h');
      expect(bad({ controlPlane: { replicas: 0 } }).stderr).toContain('spec.controlPlane.replicas: Invalid value: 0');
      expect(bad({ namespace: 'Not_A_Namespace' }).stderr).toContain('spec.namespace: Invalid value: "Not_A_Namespace"');
      for (const url of ['prometheus:9090', 'ftp://prometheus.istio-system', 'not a url'])
        expect(bad({ dashboard: { prometheus: { url } } }).stderr).toMatch(
          /spec\.dashboard\.prometheus\.url: Invalid value: .*dashboard\.prometheus\.url must be an absolute http or https URL/,
        );
      const goodUrl = { dashboard: { prometheus: { url: 'http://prometheus.istio-system:9090' } } };
      expect(bad({ ...goodUrl, profile: 'huge' }).stderr).not.toContain('dashboard');
      const moved = run(['patch', 'meshinstallation', 'default', '--type=merge', '-p', '{"spec":{"namespace":"elsewhere"}}']);
      expect(moved.stderr).toContain('namespace is immutable');
      expect(run(['get', 'meshinstallation', 'broken']).status).not.toBe(0);
    });

    it('refuses invalid gateways with a message naming the field', async () => {
      const bad = (gateways: Record<string, unknown>) => run(['apply', '-f', '-'], installationYaml('broken', { gateways })).stderr;
      expect(bad({ ingress: [{ name: 'gw', autoscaling: { minReplicas: 5, maxReplicas: 2 } }] })).toMatch(
        /spec\.gateways\.ingress\[0\]\.autoscaling\.minReplicas: Invalid value: .*autoscaling\.minReplicas must not exceed autoscaling\.maxReplicas/,
      );
      expect(bad({ ingress: [{ name: 'gw', replicas: 2, autoscaling: { maxReplicas: 3 } }] })).toMatch(
        /spec\.gateways\.ingress\[0\]\.replicas: Invalid value: .*replicas and autoscaling are exclusive/,
      );
      expect(bad({ ingress: [{ name: 'gw' }, { name: 'gw' }] })).toContain('spec.gateways.ingress[1]: Duplicate value');
      expect(bad({ ingress: [{ name: 'gw' }], egress: [{ name: 'gw' }] })).toMatch(
        /spec\.gateways\.egress: Invalid value: .*a gateway name is used by both an ingress and an egress gateway/,
      );
      const ports = (list: unknown[]) => bad({ egress: [{ name: 'gw', service: { ports: list } }] });
      expect(
        ports([
          { name: 'http', port: 8080 },
          { name: 'http-alt', port: 8080 },
        ]),
      ).toMatch(/spec\.gateways\.egress\[0\]\.service\.ports: Invalid value: .*each port number may appear once per protocol/);
      expect(ports([{ name: 'http', port: 80 }])).toMatch(
        /spec\.gateways\.egress\[0\]\.service\.ports\[0\]\.targetPort: Invalid value: .*targetPort is required when port is below 1024/,
      );
      expect(ports([{ name: 'http', port: 80, targetPort: 80 }])).toContain(
        'spec.gateways.egress[0].service.ports[0].targetPort: Invalid value: 80: spec.gateways.egress[0].service.ports[0].targetPort in body should be greater than or equal to 1024',
      );
      expect(bad({ ingress: [{ name: 'gw', service: { type: 'External' } }] })).toContain(
        'spec.gateways.ingress[0].service.type: Unsupported value: "External"',
      );
      expect(bad({ ingress: [{ name: 'gw', podDisruptionBudget: { minAvailable: 1, maxUnavailable: 1 } }] })).toContain(
        'set one of podDisruptionBudget.minAvailable and podDisruptionBudget.maxUnavailable, not both',
      );
      expect(bad({ ingress: [{ name: 'gw', podDisruptionBudget: { minAvailable: 'half' } }] })).toMatch(
        /spec\.gateways\.ingress\[0\]\.podDisruptionBudget\.minAvailable: Invalid value: .*minAvailable must be a number of pods/,
      );
      expect(bad({ ingress: [{ name: 'weftd-gateway' }] })).toMatch(/spec\.gateways\.ingress\[0\]\.name: Invalid value: .*reserved/);
      // The gateways sample is valid as written (server-side dry run: nothing changes).
      const sample = run(['apply', '--dry-run=server', '-f', join(process.cwd(), 'config', 'samples', 'gateways.yaml')]);
      expect(sample.stderr).toBe('');
      expect(run(['get', 'meshinstallation', 'broken']).status).not.toBe(0);
    });

    it('deploys spec.gateways with autoscaling and a PDB, reports them in status, and prunes a gateway taken out', async () => {
      const gateways = (namespace: string, name: string) => ({
        deployment: () => apps().readNamespacedDeployment({ name, namespace }),
        gone: async () => {
          for (const kind of ['deployment', 'service', 'serviceaccount', 'role', 'rolebinding', 'hpa', 'pdb']) {
            const object = kind === 'serviceaccount' ? `${name}-service-account` : kind.startsWith('role') ? `${name}-sds` : name;
            if (run(['get', kind, object, '-n', namespace]).status === 0) return undefined;
          }
          return true;
        },
      });
      const patchGateways = (value: unknown) =>
        run(['patch', 'meshinstallation', 'default', '--type=merge', '-p', JSON.stringify({ spec: { gateways: value } })]);

      // The sample's demo profile brings Istio's two gateways, and Ready waited for them.
      const before = await waitForCondition('default', 'Ready', 'True');
      expect(before.status?.gateways?.map((g) => `${g.kind} ${g.namespace}/${g.name} ${g.conditions?.[0]?.status}`)).toEqual([
        'Ingress weft-system/istio-ingressgateway True',
        'Egress weft-system/istio-egressgateway True',
      ]);
      const profileIngress = await gateways('weft-system', 'istio-ingressgateway').deployment();
      expect(profileIngress.spec?.template.spec?.containers[0]?.args?.slice(0, 2)).toEqual(['proxy', 'router']);

      await createNamespace(kc, 'edge');
      const edge = {
        name: 'edge-gateway',
        namespace: 'edge',
        labels: { istio: 'edge' },
        service: { type: 'ClusterIP' },
        autoscaling: { minReplicas: 2, maxReplicas: 3 },
        podDisruptionBudget: {},
      };
      // A list set replaces the profile's: istio-ingressgateway goes, istio-egressgateway stays.
      expect(patchGateways({ ingress: [edge] }).status).toBe(0);
      // The Deployment leaves its replicas to the autoscaler, which raises them to minReplicas.
      const mi = await eventually('edge-gateway Ready at the autoscaler minimum', async () => {
        const current = await waitForCondition('default', 'Ready', 'True');
        const entry = current.status?.gateways?.find((g) => g.name === 'edge-gateway');
        return entry?.desiredReplicas === 2 && entry.readyReplicas === 2 ? entry : undefined;
      });
      expect(mi).toMatchObject({
        namespace: 'edge',
        kind: 'Ingress',
        conditions: [{ type: 'Ready', status: 'True', reason: 'GatewayReady' }],
      });
      const service = await core().readNamespacedService({ name: 'edge-gateway', namespace: 'edge' });
      expect(service.spec?.selector).toEqual({ istio: 'edge' });
      expect(service.spec?.ports?.map((p) => `${p.name}:${p.port}->${p.targetPort}`)).toEqual([
        'status-port:15021->15021',
        'http2:80->8080',
        'https:443->8443',
      ]);
      expect(run(['get', 'pdb', 'edge-gateway', '-n', 'edge', '-o', 'jsonpath={.spec.minAvailable}']).stdout).toBe('1');
      expect(
        run([
          'auth',
          'can-i',
          'watch',
          'secrets',
          '-n',
          'edge',
          '--as=system:serviceaccount:edge:edge-gateway-service-account',
        ]).stdout.trim(),
      ).toBe('yes');
      expect(
        run([
          'auth',
          'can-i',
          'get',
          'secrets',
          '-n',
          'weft-system',
          '--as=system:serviceaccount:edge:edge-gateway-service-account',
        ]).stdout.trim(),
      ).toBe('no');
      await eventually('the profile ingress gateway to be pruned', gateways('weft-system', 'istio-ingressgateway').gone);
      await apps().readNamespacedDeployment({ name: 'istio-egressgateway', namespace: 'weft-system' });

      expect(patchGateways({ ingress: [] }).status).toBe(0);
      await eventually('every edge-gateway object to be pruned', gateways('edge', 'edge-gateway').gone);
      const after = await waitForCondition('default', 'Ready', 'True');
      expect(after.status?.gateways?.map((g) => g.name)).toEqual(['istio-egressgateway']);

      // A Deployment the installation does not own is refused with a condition naming it, never taken over.
      await apps().createNamespacedDeployment({
        namespace: 'edge',
        body: {
          metadata: { name: 'taken' },
          spec: {
            selector: { matchLabels: { app: 'taken' } },
            template: {
              metadata: { labels: { app: 'taken' } },
              spec: { containers: [{ name: 'app', image: 'example.com/not-a-gateway' }] },
            },
          },
        },
      });
      expect(patchGateways({ ingress: [{ name: 'taken', namespace: 'edge' }] }).status).toBe(0);
      const refused = await waitForCondition('default', 'Reconciled', 'False', 'GatewayConflict');
      expect(condition(refused, 'Reconciled')?.message).toBe(
        'gateway taken: Deployment edge/taken already exists and belongs to something else (no mesh.weft.dev/installation label); rename the gateway, or remove that Deployment',
      );
      const untouched = await apps().readNamespacedDeployment({ name: 'taken', namespace: 'edge' });
      expect(untouched.spec?.template.spec?.containers.map((c) => c.image)).toEqual(['example.com/not-a-gateway']);

      // Unset again: the profile's gateways come back.
      expect(patchGateways(null).status).toBe(0);
      await eventually('the profile ingress gateway to be back', async () =>
        (await waitForCondition('default', 'Ready', 'True')).status?.gateways?.length === 2 ? true : undefined,
      );
    });

    it('rolls out spec changes, then prunes what is no longer desired', async () => {
      const patch = {
        spec: {
          controlPlane: { replicas: 3 },
          proxy: { image: 'example.com/istio/proxyv2:1.99.0' },
          meshConfig: { mtls: { mode: 'STRICT' } },
        },
      };
      expect(run(['patch', 'meshinstallation', 'default', '--type=merge', '-p', JSON.stringify(patch)]).status).toBe(0);
      await waitForCondition('default', 'Ready', 'True');
      expect((await apps().readNamespacedDeployment({ name: 'weftd', namespace: 'weft-system' })).spec?.replicas).toBe(3);
      await kc
        .makeApiClient(CoreV1Api)
        .readNamespacedConfigMap({ name: 'weft', namespace: 'weft-system' })
        .then((cm) => {
          expect(cm.data?.['mesh']).toContain('mtlsMode: STRICT');
        });
      const injector = await core().readNamespacedConfigMap({ name: 'weft-sidecar-injector', namespace: 'weft-system' });
      expect(JSON.parse(injector.data?.['values'] ?? '{}').proxy.image).toBe('example.com/istio/proxyv2:1.99.0');
      await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'weft-system' });
      expect(run(['get', 'pdb', 'weftd', '-n', 'weft-system']).status).toBe(0);

      expect(run(['patch', 'meshinstallation', 'default', '--type=merge', '-p', '{"spec":{"controlPlane":{"replicas":1}}}']).status).toBe(
        0,
      );
      await waitForCondition('default', 'Ready', 'True');
      await eventually('the PodDisruptionBudget to be pruned', async () =>
        run(['get', 'pdb', 'weftd', '-n', 'weft-system']).status !== 0 ? true : undefined,
      );
    });

    it('repairs objects edited or deleted by hand within seconds', async () => {
      await admission().deleteMutatingWebhookConfiguration({ name: 'weft-sidecar-injector-weft-system' });
      await eventually(
        'the injector webhook to be restored',
        async () => admission().readMutatingWebhookConfiguration({ name: 'weft-sidecar-injector-weft-system' }),
        15_000,
      );

      expect(run(['scale', 'deployment', 'weftd', '-n', 'weft-system', '--replicas=5']).status).toBe(0);
      await eventually(
        'weftd to be scaled back to the spec',
        async () =>
          (await apps().readNamespacedDeployment({ name: 'weftd', namespace: 'weft-system' })).spec?.replicas === 1 ? true : undefined,
        15_000,
      );
      const failurePolicy = [{ op: 'replace', path: '/webhooks/0/failurePolicy', value: 'Ignore' }];
      expect(
        run([
          'patch',
          'mutatingwebhookconfiguration',
          'weft-sidecar-injector-weft-system',
          '--type=json',
          '-p',
          JSON.stringify(failurePolicy),
        ]).status,
      ).toBe(0);
      await eventually(
        'the webhook failurePolicy to be restored',
        async () =>
          (await admission().readMutatingWebhookConfiguration({ name: 'weft-sidecar-injector-weft-system' })).webhooks?.[0]
            ?.failurePolicy === 'Fail'
            ? true
            : undefined,
        15_000,
      );
    });

    it('refuses a second installation of the same namespace with a clear condition', async () => {
      expect(run(['apply', '-f', '-'], installationYaml('copycat', { namespace: 'weft-system' })).status).toBe(0);
      const mi = await waitForCondition('copycat', 'Reconciled', 'False', 'NamespaceConflict');
      expect(condition(mi, 'Reconciled')?.message).toContain(
        "MeshInstallation 'default' already installs a control plane in namespace 'weft-system'",
      );
      expect(
        (await apps().readNamespacedDeployment({ name: 'weftd', namespace: 'weft-system' })).metadata?.labels?.[
          'mesh.weft.dev/installation'
        ],
      ).toBe('default');
      expect(run(['delete', 'meshinstallation', 'copycat', '--wait=true', '--timeout=30s']).status).toBe(0);
      // Deleting the loser removed nothing of the winner's.
      await waitForCondition('default', 'Ready', 'True');
      await admission().readMutatingWebhookConfiguration({ name: 'weft-sidecar-injector-weft-system' });
    });

    it('reports a bad plugged-in CA Secret, recovers once it is fixed, and keeps the user namespace on uninstall', async () => {
      await createNamespace(kc, 'mesh-plugged');
      await core().createNamespacedSecret({
        namespace: 'mesh-plugged',
        body: { metadata: { name: 'cacerts' }, stringData: { 'ca-cert.pem': 'garbage' } },
      });
      expect(
        run(
          ['apply', '-f', '-'],
          installationYaml('plugged', {
            namespace: 'mesh-plugged',
            profile: 'minimal',
            ca: { mode: 'Plugged', pluggedSecretName: 'cacerts' },
          }),
        ).status,
      ).toBe(0);
      const bad = await waitForCondition('plugged', 'Reconciled', 'False', 'InvalidCACerts');
      expect(condition(bad, 'Reconciled')?.message).toBe(
        "Secret cacerts lacks ca-key.pem, root-cert.pem, cert-chain.pem; it needs all of ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem (Istio's cacerts layout)",
      );
      expect(run(['get', 'deployment', 'weftd', '-n', 'mesh-plugged']).status).not.toBe(0);

      const root = generateRsaKeyPair();
      const rootPem = issueCertificate({ commonName: 'root', isCA: true, notAfter: new Date(Date.now() + 86_400_000) }, root.publicKey, {
        selfSigningKey: root.privateKey,
      });
      await core().replaceNamespacedSecret({
        name: 'cacerts',
        namespace: 'mesh-plugged',
        body: {
          metadata: { name: 'cacerts' },
          stringData: {
            'ca-cert.pem': rootPem,
            'ca-key.pem': privateKeyToPem(root.privateKey),
            'root-cert.pem': rootPem,
            'cert-chain.pem': rootPem,
          },
        },
      });
      await waitForCondition('plugged', 'Ready', 'True');
      expect(run(['delete', 'meshinstallation', 'plugged', '--wait=true', '--timeout=60s']).status).toBe(0);
      expect(run(['get', 'deployment', 'weftd', '-n', 'mesh-plugged']).status).not.toBe(0);
      const kept = await core().readNamespacedSecret({ name: 'cacerts', namespace: 'mesh-plugged' });
      expect(kept.metadata?.name).toBe('cacerts');
      expect((await core().readNamespace({ name: 'mesh-plugged' })).status?.phase).toBe('Active');
    });

    it('exports reconcile metrics from the leader', async () => {
      const lease = await kc
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ name: 'weft-operator-leader', namespace: 'weft-operator' });
      const leader = await core().readNamespacedPod({ name: lease.spec?.holderIdentity as string, namespace: 'weft-operator' });
      const metrics = await (await fetch(`http://${leader.status?.podIP}:15014/metrics`)).text();
      expect(metrics).toMatch(/weft_operator_reconcile_total\{result="success"\} [1-9]/);
      expect(metrics).toContain('weft_operator_reconcile_duration_seconds_bucket');
    });

    it('picks up where it left off after the operator restarts', async () => {
      expect(run(['scale', 'deployment', 'weft-operator', '-n', 'weft-operator', '--replicas=0']).status).toBe(0);
      await eventually('operator processes to stop', async () =>
        [...runner.processes().keys()].some((k) => k.startsWith('weft-operator/')) ? undefined : true,
      );
      expect(run(['patch', 'meshinstallation', 'default', '--type=merge', '-p', '{"spec":{"controlPlane":{"replicas":2}}}']).status).toBe(
        0,
      );
      expect(run(['scale', 'deployment', 'weft-operator', '-n', 'weft-operator', '--replicas=2']).status).toBe(0);
      await waitForCondition('default', 'Ready', 'True');
      expect((await apps().readNamespacedDeployment({ name: 'weftd', namespace: 'weft-system' })).spec?.replicas).toBe(2);
    });

    it('hands leadership to the standby when the leader goes away, and the new leader reconciles', async () => {
      const leases = kc.makeApiClient(CoordinationV1Api);
      const holder = async () =>
        (await leases.readNamespacedLease({ name: 'weft-operator-leader', namespace: 'weft-operator' })).spec?.holderIdentity;
      const before = await eventually('a leader', holder);
      await core().deleteNamespacedPod({ name: before, namespace: 'weft-operator' });
      const after = await eventually('a new leader', async () => {
        const current = await holder();
        return current && current !== before ? current : undefined;
      });
      expect(after).toMatch(/^weft-operator-/);
      expect(run(['patch', 'meshinstallation', 'default', '--type=merge', '-p', '{"spec":{"controlPlane":{"replicas":1}}}']).status).toBe(
        0,
      );
      await waitForCondition('default', 'Ready', 'True');
      expect((await apps().readNamespacedDeployment({ name: 'weftd', namespace: 'weft-system' })).spec?.replicas).toBe(1);
    });

    it('uninstalls everything on deletion, webhook configurations first', async () => {
      const goneAt: Record<string, number> = {};
      const gone = async (read: () => Promise<{ metadata?: { deletionTimestamp?: Date } }>) =>
        read().then(
          (object) => Boolean(object.metadata?.deletionTimestamp),
          () => true,
        );
      await kc.makeApiClient(CustomObjectsApi).deleteClusterCustomObject({ group, version, plural, name: 'default' });
      await eventually(
        'the MeshInstallation to be deleted',
        async () => {
          if (await gone(() => admission().readMutatingWebhookConfiguration({ name: 'weft-sidecar-injector-weft-system' })))
            goneAt['webhook'] ??= Date.now();
          if (await gone(() => apps().readNamespacedDeployment({ name: 'weftd', namespace: 'weft-system' })))
            goneAt['deployment'] ??= Date.now();
          return (await gone(() => readInstallation('default'))) && run(['get', 'meshinstallation', 'default']).status !== 0
            ? true
            : undefined;
        },
        90_000,
      );
      expect(goneAt['webhook']).toBeDefined();
      expect(goneAt['webhook'] ?? Infinity).toBeLessThanOrEqual(goneAt['deployment'] ?? 0);
      for (const [kind, name] of [
        ['namespace', 'weft-system'],
        ['clusterrole', 'weftd-weft-system'],
        ['clusterrolebinding', 'weftd-weft-system'],
        ['validatingwebhookconfiguration', 'weft-validator-weft-system'],
      ] as const) {
        await eventually(`${kind} ${name} to be gone`, async () => (run(['get', kind, name]).status !== 0 ? true : undefined));
      }
    });
  },
  { nodes: 2 },
);
