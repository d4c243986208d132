// The Kubernetes Gateway API objects Weft reads (gateway.networking.k8s.io, the standard channel's
// v1 shapes, sigs.k8s.io/gateway-api apis/v1), reduced to the fields the conversion and status read.
// Plain JSON as the API server returns it: every field optional, as a hand-written object may be.

export const gatewayApiGroup = 'gateway.networking.k8s.io';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  generation?: number;
  creationTimestamp?: string | Date;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

export interface GatewayApiObject<Spec, Status> {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: Spec;
  status?: Status;
}

export type GatewayClass = GatewayApiObject<{ controllerName?: string; parametersRef?: unknown }, { conditions?: Condition[] }>;

export interface RouteGroupKind {
  group?: string;
  kind: string;
}

export interface SecretObjectReference {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
}

export interface Listener {
  name: string;
  hostname?: string;
  port: number;
  protocol: string;
  tls?: {
    mode?: 'Terminate' | 'Passthrough';
    certificateRefs?: SecretObjectReference[];
    options?: Record<string, string>;
  };
  allowedRoutes?: {
    namespaces?: { from?: 'All' | 'Same' | 'Selector' | 'None'; selector?: LabelSelector };
    kinds?: RouteGroupKind[];
  };
}

/** Client certificate validation for a Gateway's TLS listeners (Gateway.spec.tls.frontend). */
export interface FrontendTls {
  validation?: {
    caCertificateRefs?: Array<{ group?: string; kind: string; name: string; namespace?: string }>;
    mode?: 'AllowValidOnly' | 'AllowInsecureFallback';
  };
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }>;
}

export interface GatewayStatusAddress {
  type?: string;
  value: string;
}

export interface ListenerStatus {
  name: string;
  supportedKinds: RouteGroupKind[];
  attachedRoutes: number;
  conditions: Condition[];
}

export type Gateway = GatewayApiObject<
  {
    gatewayClassName?: string;
    listeners?: Listener[];
    addresses?: GatewayStatusAddress[];
    infrastructure?: { labels?: Record<string, string>; annotations?: Record<string, string>; parametersRef?: unknown };
    tls?: {
      frontend?: { default?: FrontendTls; perPort?: Array<{ port: number; tls: FrontendTls }> };
      backend?: { clientCertificateRef?: SecretObjectReference };
    };
  },
  { addresses?: GatewayStatusAddress[]; conditions?: Condition[]; listeners?: ListenerStatus[] }
>;

export interface ParentReference {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
  port?: number;
}

export interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  filters?: HttpRouteFilter[];
}

export interface HeaderFilter {
  set?: Array<{ name: string; value: string }>;
  add?: Array<{ name: string; value: string }>;
  remove?: string[];
}

export interface HttpRouteFilter {
  type: string;
  requestHeaderModifier?: HeaderFilter;
  responseHeaderModifier?: HeaderFilter;
  requestRedirect?: {
    scheme?: string;
    hostname?: string;
    path?: { type: 'ReplaceFullPath' | 'ReplacePrefixMatch'; replaceFullPath?: string; replacePrefixMatch?: string };
    port?: number;
    statusCode?: number;
  };
  urlRewrite?: {
    hostname?: string;
    path?: { type: 'ReplaceFullPath' | 'ReplacePrefixMatch'; replaceFullPath?: string; replacePrefixMatch?: string };
  };
  requestMirror?: { backendRef: BackendRef; percent?: number; fraction?: { numerator: number; denominator?: number } };
  cors?: {
    allowOrigins?: string[];
    allowCredentials?: boolean;
    allowMethods?: string[];
    allowHeaders?: string[];
    exposeHeaders?: string[];
    maxAge?: number;
  };
  extensionRef?: unknown;
}

export interface HttpRouteMatch {
  path?: { type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; value?: string };
  headers?: Array<{ type?: 'Exact' | 'RegularExpression'; name: string; value: string }>;
  queryParams?: Array<{ type?: 'Exact' | 'RegularExpression'; name: string; value: string }>;
  method?: string;
}

export interface GrpcRouteMatch {
  method?: { type?: 'Exact' | 'RegularExpression'; service?: string; method?: string };
  headers?: Array<{ type?: 'Exact' | 'RegularExpression'; name: string; value: string }>;
}

export interface RouteRule<Match> {
  name?: string;
  matches?: Match[];
  filters?: HttpRouteFilter[];
  backendRefs?: BackendRef[];
  timeouts?: { request?: string; backendRequest?: string };
  retry?: { codes?: number[]; attempts?: number; backoff?: string };
}

export interface RouteParentStatus {
  parentRef: ParentReference;
  controllerName: string;
  conditions: Condition[];
}

export interface RouteSpec<Match> {
  parentRefs?: ParentReference[];
  hostnames?: string[];
  rules?: Array<RouteRule<Match>>;
}

export type HttpRoute = GatewayApiObject<RouteSpec<HttpRouteMatch>, { parents?: RouteParentStatus[] }>;
export type GrpcRoute = GatewayApiObject<RouteSpec<GrpcRouteMatch>, { parents?: RouteParentStatus[] }>;
export type TcpRoute = GatewayApiObject<RouteSpec<never>, { parents?: RouteParentStatus[] }>;
export type TlsRoute = GatewayApiObject<RouteSpec<never>, { parents?: RouteParentStatus[] }>;

export type ReferenceGrant = GatewayApiObject<
  {
    from?: Array<{ group: string; kind: string; namespace: string }>;
    to?: Array<{ group: string; kind: string; name?: string }>;
  },
  never
>;

export type BackendTlsPolicy = GatewayApiObject<
  {
    targetRefs?: Array<{ group?: string; kind: string; name: string; sectionName?: string }>;
    validation?: {
      caCertificateRefs?: Array<{ group?: string; kind: string; name: string }>;
      hostname?: string;
      wellKnownCACertificates?: string;
      subjectAltNames?: Array<{ type: 'Hostname' | 'URI'; hostname?: string; uri?: string }>;
    };
  },
  unknown
>;

/** The route kinds Weft serves, by kind. */
export type RouteKind = 'HTTPRoute' | 'GRPCRoute' | 'TCPRoute' | 'TLSRoute';
