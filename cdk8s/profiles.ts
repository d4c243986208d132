import type { MeshInstallationSpec } from '../api/mesh-installation.js';

export interface ProfileDefaults {
  replicas: number;
  resources: { requests: { cpu: string; memory: string } };
  accessLogging: boolean;
  tracingSampling: number;
}

// What each profile means when the spec leaves a field unset.
const profiles: Record<MeshInstallationSpec['profile'], ProfileDefaults> = {
  default: { replicas: 2, resources: { requests: { cpu: '250m', memory: '512Mi' } }, accessLogging: false, tracingSampling: 1 },
  demo: { replicas: 1, resources: { requests: { cpu: '100m', memory: '256Mi' } }, accessLogging: true, tracingSampling: 100 },
  minimal: { replicas: 1, resources: { requests: { cpu: '50m', memory: '128Mi' } }, accessLogging: false, tracingSampling: 1 },
};

export function profileDefaults(profile: MeshInstallationSpec['profile']): ProfileDefaults {
  return profiles[profile];
}
