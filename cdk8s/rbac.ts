// RBAC rules, least privilege. The operator holds every rule it grants weftd
// (Kubernetes refuses to let it grant more than it has).
import type { k8s } from 'cdk8s-plus-27';

type Rule = k8s.PolicyRule;
const read = ['get', 'list', 'watch'];
const manage = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];

/** The Istio resources Weft serves, by API group (the CRDs in crds/istio/). */
export const istioResources = {
  'networking.istio.io': [
    'virtualservices',
    'destinationrules',
    'serviceentries',
    'workloadentries',
    'workloadgroups',
    'sidecars',
    'gateways',
  ],
  'security.istio.io': ['peerauthentications', 'authorizationpolicies', 'requestauthentications'],
  'telemetry.istio.io': ['telemetries'],
} as const;

function istioRules(): Rule[] {
  return Object.entries(istioResources).flatMap(([group, resources]) => [
    { apiGroups: [group], resources: [...resources], verbs: read },
    { apiGroups: [group], resources: resources.map((resource) => `${resource}/status`), verbs: ['update', 'patch'] },
  ]);
}

/** The Gateway API kinds weftd serves (crds/gateway-api/), as xds/model/gateway-api-source.ts watches them. */
export const gatewayApiResources = [
  'gatewayclasses',
  'gateways',
  'httproutes',
  'grpcroutes',
  'tcproutes',
  'tlsroutes',
  'referencegrants',
  'backendtlspolicies',
] as const;

function gatewayApiRules(): Rule[] {
  const group = 'gateway.networking.k8s.io';
  return [
    { apiGroups: [group], resources: [...gatewayApiResources], verbs: read },
    // ReferenceGrant has no status.
    {
      apiGroups: [group],
      resources: gatewayApiResources.filter((r) => r !== 'referencegrants').map((resource) => `${resource}/status`),
      verbs: ['update', 'patch'],
    },
    { apiGroups: [group], resources: ['gatewayclasses'], verbs: ['create'] },
  ];
}

/** weftd, cluster-wide: discover workloads, distribute the root cert, authenticate callers, read mesh policy. */
export const weftdClusterRules: Rule[] = [
  { apiGroups: [''], resources: ['pods', 'services', 'namespaces', 'serviceaccounts', 'nodes'], verbs: read },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: read },
  // The trust bundle ConfigMap (root-cert.pem) in every namespace.
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] },
  { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
  // SDS (xds/credentials): gateway certificates from Secrets in any namespace, read only, as istiod's
  // ClusterRole; each asking proxy's ServiceAccount is checked to list Secrets itself (SubjectAccessReview).
  { apiGroups: [''], resources: ['secrets'], verbs: read },
  { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
  // Istio's APIs (crds/istio/): read them, and write only their status (conditions on each object).
  ...istioRules(),
  // The Kubernetes Gateway API (gatewayapi/): read, write status, and create the classes `weft` and `istio` when missing.
  ...gatewayApiRules(),
  // The Gateway API's automated deployment (xds/model/gateway-deployment-controller.ts), as istiod's deployment
  // controller: server-side apply (patch; create for a new object). No update or delete: removal is the garbage
  // collector's, through the objects' owner reference to their Gateway.
  { apiGroups: ['apps'], resources: ['deployments'], verbs: [...read, 'create', 'patch'] },
  { apiGroups: [''], resources: ['services', 'serviceaccounts'], verbs: ['create', 'patch'] },
  // weftd keeps the caBundle of its own webhook configurations current.
  {
    apiGroups: ['admissionregistration.k8s.io'],
    resources: ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'],
    verbs: ['get', 'list', 'watch', 'update', 'patch'],
  },
];

/** weftd, in its own namespace: the CA's Secrets, leader election, events. */
export const weftdNamespaceRules: Rule[] = [
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] },
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
];

/** The operator: manage what the control-plane chart contains, and hold what it grants. */
export const operatorClusterRules: Rule[] = [
  { apiGroups: ['mesh.weft.dev'], resources: ['meshinstallations'], verbs: ['get', 'list', 'watch', 'update', 'patch'] },
  { apiGroups: ['mesh.weft.dev'], resources: ['meshinstallations/status'], verbs: ['get', 'update', 'patch'] },
  { apiGroups: ['mesh.weft.dev'], resources: ['meshinstallations/finalizers'], verbs: ['update'] },
  { apiGroups: [''], resources: ['namespaces', 'serviceaccounts', 'services', 'configmaps'], verbs: manage },
  { apiGroups: ['apps'], resources: ['deployments'], verbs: manage },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: manage },
  // Gateways asking for autoscaling (spec.gateways[].autoscaling).
  { apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers'], verbs: manage },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles', 'clusterrolebindings', 'roles', 'rolebindings'], verbs: manage },
  {
    apiGroups: ['admissionregistration.k8s.io'],
    resources: ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'],
    verbs: manage,
  },
  ...weftdClusterRules,
  // Secrets: weftd's namespaced grant, held cluster-wide because the namespace comes from the spec,
  // plus delete, to remove the CA Secret weftd made when the installation is uninstalled.
  ...weftdNamespaceRules,
  { apiGroups: [''], resources: ['secrets'], verbs: ['delete'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
];
