// The journey's workloads, as a user would write them: the echo Service, its
// versioned Deployments and a client, all of the sample app's image.
import type { InjectionTemplate } from './target.js';

export const echoPorts = { grpc: 8080, control: 8081 } as const;

export function echoService(namespace: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace, labels: { app: 'echo' } },
    spec: {
      selector: { app: 'echo' },
      ports: [
        { name: 'grpc', port: echoPorts.grpc, targetPort: echoPorts.grpc },
        { name: 'http-control', port: echoPorts.control, targetPort: echoPorts.control },
      ],
    },
  };
}

export interface SampleDeployment {
  namespace: string;
  name: string;
  /** The `app` label: echo-v1 and echo-v2 are both `echo`, behind one Service. */
  app: string;
  version: string;
  replicas: number;
  image: string;
  template: InjectionTemplate;
  /** The pod's ServiceAccount, its identity in the mesh; the namespace's `default` when absent. */
  serviceAccount?: string;
}

export function sampleDeployment({ namespace, name, app, version, replicas, image, template, serviceAccount }: SampleDeployment): object {
  const labels = { app, version };
  const field = (envName: string, fieldPath: string) => ({ name: envName, valueFrom: { fieldRef: { fieldPath } } });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: {
        metadata: {
          labels,
          ...(template === 'grpc-agent' ? { annotations: { 'inject.istio.io/templates': 'grpc-agent' } } : {}),
        },
        spec: {
          ...(serviceAccount ? { serviceAccountName: serviceAccount } : {}),
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'app',
              image,
              ports: [
                { name: 'grpc', containerPort: echoPorts.grpc },
                { name: 'http-control', containerPort: echoPorts.control },
              ],
              env: [{ name: 'VERSION', value: version }, field('POD_NAME', 'metadata.name'), field('POD_NAMESPACE', 'metadata.namespace')],
              readinessProbe: { httpGet: { path: '/healthz', port: echoPorts.control }, periodSeconds: 2 },
              resources: { requests: { cpu: '10m', memory: '64Mi' } },
              securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      },
    },
  };
}

export function serviceAccount(namespace: string, name: string): object {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } };
}

/** A List for `kubectl apply -f -`. */
export function list(...items: object[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
}
