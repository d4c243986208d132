// Names shared across Weft: labels and annotations on objects the operator owns,
// and the Istio-compatible ports (see ../shared/design/istio-compat.md).
export const labels = {
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
  name: 'app.kubernetes.io/name',
  component: 'app.kubernetes.io/component',
  version: 'app.kubernetes.io/version',
  /** Every object the operator creates for a MeshInstallation carries its name here; pruning selects on it. */
  installation: 'mesh.weft.dev/installation',
  revision: 'istio.io/rev',
} as const;

export const operatorFieldManager = 'weft-operator';
export const meshFinalizer = 'mesh.weft.dev/uninstall';

export const ports = {
  xdsPlaintext: 15010,
  xdsTls: 15012,
  monitoring: 15014,
  webhook: 15017,
  webhookService: 443,
} as const;

/** The trust bundle weftd's CA puts in every namespace: the ConfigMap Istio's agent mounts. */
export const trustBundle = { configMap: 'istio-ca-root-cert', key: 'root-cert.pem' } as const;

/**
 * weftd's webhook probe (webhooks/webhook-probe.ts): ConfigMaps with this label in weftd's
 * namespace reach the probe webhooks the chart writes, at these paths of the webhook server.
 */
export const webhookProbe = { label: 'weft.dev/webhook-probe', mutatePath: '/probe/mutate', validatePath: '/probe/validate' } as const;
