import type { GatewaySpec, MeshInstallationSpec } from '../api/mesh-installation.js';

export interface ProfileDefaults {
  replicas: number;
  resources: { requests: { cpu: string; memory: string } };
  accessLogging: boolean;
  tracingSampling: number;
  /** The gateways a profile installs when `spec.gateways.ingress`/`egress` is unset (Istio's manifests/profiles). */
  gateways: { ingress: GatewaySpec[]; egress: GatewaySpec[] };
}

const ingressGateway: GatewaySpec = { name: 'istio-ingressgateway', enabled: true, service: {} };
const egressGateway: GatewaySpec = { name: 'istio-egressgateway', enabled: true, service: {} };

// What each profile means when the spec leaves a field unset. Gateways as Istio's profiles:
// default has the ingress gateway, demo both, minimal none.
const profiles: Record<MeshInstallationSpec['profile'], ProfileDefaults> = {
  default: {
    replicas: 2,
    resources: { requests: { cpu: '250m', memory: '512Mi' } },
    accessLogging: false,
    tracingSampling: 1,
    gateways: { ingress: [ingressGateway], egress: [] },
  },
  demo: {
    replicas: 1,
    resources: { requests: { cpu: '100m', memory: '256Mi' } },
    accessLogging: true,
    tracingSampling: 100,
    gateways: { ingress: [ingressGateway], egress: [egressGateway] },
  },
  minimal: {
    replicas: 1,
    resources: { requests: { cpu: '50m', memory: '128Mi' } },
    accessLogging: false,
    tracingSampling: 1,
    gateways: { ingress: [], egress: [] },
  },
};

export function profileDefaults(profile: MeshInstallationSpec['profile']): ProfileDefaults {
  return profiles[profile];
}
