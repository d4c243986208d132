import type { V1Container } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { InjectInputError, injectManifests } from './inject-manifests.js';
import { defaultInjectionConfig } from './injection-config.js';

const config = { ...defaultInjectionConfig };
const podSpec = `      containers:
        - name: app
          image: app:1`;
const workload = (kind: string, apiVersion: string, extra = '') => `apiVersion: ${apiVersion}
kind: ${kind}
metadata:
  name: web
  namespace: shop
spec:
  template:
    metadata:
      labels:
        app: web${extra}
    spec:
${podSpec}
`;
const containersOf = (doc: any, kind: string): V1Container[] => {
  const pod = kind === 'Pod' ? doc : kind === 'CronJob' ? doc.spec.jobTemplate.spec.template : doc.spec.template;
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
};
const docs = (text: string) => parseAllDocuments(text).map((d) => d.toJS());

describe('weft inject -f accepts what istioctl kube-inject -f accepts', () => {
  it.each([
    ['Deployment', workload('Deployment', 'apps/v1')],
    ['StatefulSet', workload('StatefulSet', 'apps/v1')],
    ['DaemonSet', workload('DaemonSet', 'apps/v1')],
    ['ReplicaSet', workload('ReplicaSet', 'apps/v1')],
    ['Job', workload('Job', 'batch/v1')],
    [
      'CronJob',
      `apiVersion: batch/v1
kind: CronJob
metadata: { name: web, namespace: shop }
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: app
              image: app:1
`,
    ],
    [
      'Pod',
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  containers:\n    - name: app\n      image: app:1\n`,
    ],
  ])('%s', (kind, text) => {
    const result = injectManifests(text, config);
    const [out] = docs(result.output);
    expect(containersOf(out, kind).map((c) => c.name)).toEqual(['istio-init', 'istio-proxy', 'app']);
    expect(result.injected).toEqual([`injected ${kind} shop/web`]);
    expect(result.skipped).toEqual([]);
  });

  it('skips hostNetwork and opted-out workloads, saying why, and leaves them byte for byte', () => {
    const hostNetwork = workload('Deployment', 'apps/v1').replace('    spec:\n', '    spec:\n      hostNetwork: true\n');
    const optedOut = workload('Deployment', 'apps/v1', "\n        sidecar.istio.io/inject: 'false'  # keep out").replace(
      'name: web',
      'name: batch',
    );
    const service = `# the service, untouched
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{port: 80, name: "http"}]
`;
    const text = `${hostNetwork}---\n${optedOut}---\n${service}`;
    const result = injectManifests(text, config);
    expect(result.output).toBe(text);
    expect(result.skipped).toEqual([
      'skipped Deployment shop/web: hostNetwork pods share the node network and are never injected',
      'skipped Deployment shop/batch: pod opted out with label sidecar.istio.io/inject=false',
      'skipped Service shop/web: not a Pod or a workload with a pod template',
    ]);
  });

  it('injects in a multi-document stream and a List, leaving the other documents as they were', () => {
    const service = `apiVersion: v1\nkind: Service   # comment kept\nmetadata: {name: web}\n`;
    const list = `apiVersion: v1
kind: List
items:
  - ${workload('Deployment', 'apps/v1').trimEnd().split('\n').join('\n    ')}
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings}
`;
    const text = `---\n${service}---\n${list}...\n`;
    const result = injectManifests(text.replace('...\n', ''), config);
    expect(result.output.startsWith(`---\n${service}---\n`)).toBe(true);
    const [, out] = docs(result.output);
    expect(containersOf(out.items[0], 'Deployment').map((c: V1Container) => c.name)).toEqual(['istio-init', 'istio-proxy', 'app']);
    expect(out.items[1]).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' } });
    expect(result.injected).toEqual(['injected Deployment shop/web']);
  });

  it('an already injected document is left byte for byte (re-injection is a no-op)', () => {
    const once = injectManifests(workload('Deployment', 'apps/v1'), config).output;
    const again = injectManifests(once, config);
    expect(again.output).toBe(once);
    expect(again.skipped).toEqual(['skipped Deployment shop/web: already injected']);
  });

  it('refuses a pod template whose ports or volumes are not lists, naming the field', () => {
    const badPorts = workload('Deployment', 'apps/v1').replace('image: app:1', 'image: app:1\n          ports: {http: 80}');
    expect(() => injectManifests(badPorts, config)).toThrow(
      new InjectInputError('Deployment shop/web: spec.template.spec.containers[0].ports is not a list'),
    );
    const badVolumes = workload('Deployment', 'apps/v1').replace('    spec:\n', '    spec:\n      volumes: data\n');
    expect(() => injectManifests(badVolumes, config)).toThrow('spec.template.spec.volumes is not a list');
    expect(() => injectManifests('a: [1,\n', config)).toThrow(InjectInputError);
  });
});

describe('the injected proxy names its workload as istioctl kube-inject does', () => {
  it.each([
    ['Deployment', 'apps/v1', 'kubernetes://apis/apps/v1/namespaces/shop/deployments/web'],
    ['StatefulSet', 'apps/v1', 'kubernetes://apis/apps/v1/namespaces/shop/statefulsets/web'],
    ['Job', 'batch/v1', 'kubernetes://apis/batch/v1/namespaces/shop/jobs/web'],
  ])('%s: ISTIO_META_OWNER and WORKLOAD_NAME name it, and the template gets no ownerReferences', (kind, apiVersion, owner) => {
    const [doc] = docs(injectManifests(workload(kind, apiVersion), config).output);
    const proxy = containersOf(doc, kind).find((c) => c.name === 'istio-proxy');
    const env = Object.fromEntries((proxy?.env ?? []).map((e) => [e.name, e.value]));
    expect(env['ISTIO_META_OWNER']).toBe(owner);
    expect(env['ISTIO_META_WORKLOAD_NAME']).toBe('web');
    expect(doc.spec.template.metadata.ownerReferences).toBeUndefined();
  });
});
