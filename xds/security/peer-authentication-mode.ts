// PeerAuthentication's effective mTLS mode for one workload port, with Istio's
// precedence: the workload's own policy (selector) over its namespace's over the
// mesh's (root namespace), a port-level setting over the workload policy's mode,
// UNSET inheriting, and PERMISSIVE when nothing says otherwise. Pure.
import { byAge, type ConfigObject, type PeerAuthenticationSpec } from '../model/istio-config.js';
import { labelsMatch } from '../traffic/host-names.js';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface Workload {
  namespace: string;
  labels: Record<string, string>;
}

const setMode = (mode: string | undefined): MtlsMode | undefined =>
  mode === 'STRICT' || mode === 'PERMISSIVE' || mode === 'DISABLE' ? mode : undefined;

export function mtlsModeFor(
  policies: ReadonlyArray<ConfigObject<PeerAuthenticationSpec>>,
  rootNamespace: string,
  workload: Workload,
  port?: number,
  /** The MeshInstallation's default, below every PeerAuthentication. */
  meshDefault: MtlsMode = 'PERMISSIVE',
): MtlsMode {
  const sorted = [...policies].sort(byAge);
  // An empty selector is no selector (Istio); selector policies in the root namespace are ignored.
  const selects = (p: ConfigObject<PeerAuthenticationSpec>) => Object.keys(p.spec.selector?.matchLabels ?? {}).length > 0;
  const mesh = sorted.find((p) => p.namespace === rootNamespace && !selects(p));
  const namespace = sorted.find((p) => p.namespace === workload.namespace && workload.namespace !== rootNamespace && !selects(p));
  const own = sorted.find(
    (p) =>
      p.namespace === workload.namespace &&
      p.namespace !== rootNamespace &&
      selects(p) &&
      labelsMatch(p.spec.selector?.matchLabels as Record<string, string> | undefined, workload.labels),
  );
  let mode: MtlsMode = meshDefault;
  for (const policy of [mesh, namespace, own]) mode = setMode(policy?.spec.mtls?.mode) ?? mode;
  // Port-level settings count only on a policy that selects the workload (Istio ignores them elsewhere).
  const portLevel = port !== undefined ? own?.spec.portLevelMtls?.[String(port)] : undefined;
  return setMode(portLevel?.mode) ?? mode;
}
