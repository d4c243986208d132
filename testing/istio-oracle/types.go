// Package oracle runs Istio's own config generator and traffic simulator beside
// Weft's generated config, so tests compare behaviour (which listener, route and
// cluster a call reaches, and whether RBAC allows it) rather than bytes. Test tool
// only: built with `go test -c` at the Istio version the project pins.
package oracle

// Input is what the TypeScript side writes: the cases to run.
type Input struct {
	Cases []Case `json:"cases"`
}

// Case is one mesh (Kubernetes and Istio objects), one proxy, Weft's config for
// that proxy, and the calls to simulate through both.
type Case struct {
	Name string `json:"name"`
	// Kube holds what the API server holds, as multi-document YAML: Services, Pods, EndpointSlices,
	// Secrets, Namespaces, and Kubernetes Gateway API objects (read by Istio's gateway controller).
	Kube string `json:"kube"`
	// Istio holds networking.istio.io, security.istio.io and telemetry.istio.io objects as multi-document YAML.
	Istio string `json:"istio"`
	Mesh  Mesh   `json:"mesh"`
	Proxy Proxy  `json:"proxy"`
	// Weft is the generated config for Proxy: serialized Envoy protos, base64.
	Weft  Resources  `json:"weft"`
	Calls []CallSpec `json:"calls"`
}

// Mesh carries the MeshConfig fields the cases set.
type Mesh struct {
	RootNamespace         string `json:"rootNamespace,omitempty"`
	OutboundTrafficPolicy string `json:"outboundTrafficPolicy,omitempty"`
	// Config is MeshConfig YAML (Istio's field names) applied over the defaults: telemetry providers, say.
	Config string `json:"config,omitempty"`
}

// Proxy is the proxy the config is generated for.
type Proxy struct {
	// Kind is "sidecar" (Envoy, the default), "grpc" (a proxyless gRPC client, Istio's
	// GENERATOR=grpc) or "router" (a gateway: Istio's proxyv2 in router mode, node id
	// `router~...`, given the servers of the Gateways whose selector matches its Labels).
	Kind      string            `json:"kind,omitempty"`
	ID        string            `json:"id"`
	Namespace string            `json:"namespace"`
	IP        string            `json:"ip"`
	Labels    map[string]string `json:"labels"`
	// ServiceAccount is a router's identity, as its token proves it on 15012: SDS serves it
	// the Secrets of its own namespace.
	ServiceAccount string `json:"serviceAccount,omitempty"`
}

// Resources are serialized envoy.config.*.v3 messages, base64 encoded.
type Resources struct {
	Listeners []string `json:"listeners"`
	Clusters  []string `json:"clusters"`
	Routes    []string `json:"routes"`
	Endpoints []string `json:"endpoints"`
	// Secrets are a router's SDS answers (tls.v3.Secret) for the names its listeners use.
	Secrets []string `json:"secrets,omitempty"`
}

// CallSpec is one simulated connection or request.
type CallSpec struct {
	Name string `json:"name"`
	// Target is a proxyless gRPC call's `xds:///` target (host:port): the listener it asks for.
	Target string `json:"target,omitempty"`
	// Mode is outbound (captured by iptables to 15001), inbound (to 15006) or gateway
	// (no capture: straight to the listener on Port, a router's default).
	Mode     string `json:"mode"`
	Address  string `json:"address"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"` // http, http2 or tcp
	TLS      string `json:"tls,omitempty"`
	Alpn     string `json:"alpn,omitempty"`
	Sni      string `json:"sni,omitempty"`
	Host     string `json:"host,omitempty"`
	Method   string `json:"method,omitempty"`
	Path     string `json:"path,omitempty"`
	// Headers are lower-case names.
	Headers map[string]string `json:"headers,omitempty"`
	// SourcePrincipal is the caller's SPIFFE ID (mTLS), for RBAC.
	SourcePrincipal string `json:"sourcePrincipal,omitempty"`
	SourceIP        string `json:"sourceIp,omitempty"`
}

// Output is what the tool writes back.
type Output struct {
	Cases []CaseOutput `json:"cases"`
}

// CaseOutput holds, per case, Envoy's validation of Weft's resources and each call's outcome.
type CaseOutput struct {
	Name string `json:"name"`
	// Invalid lists every rule of Envoy's ValidateAll (and each deprecated field) Weft's resources break.
	Invalid []string `json:"invalid"`
	// Rejected names the Istio objects Istio's validation refuses (Kind/namespace/name).
	Rejected []string      `json:"rejected"`
	Calls    []CallOutcome `json:"calls"`
	// Error is set when the case could not be run at all.
	Error string `json:"error,omitempty"`
}

// CallOutcome is one call's outcome under Istio's config and under Weft's.
type CallOutcome struct {
	Name  string  `json:"name"`
	Istio Outcome `json:"istio"`
	Weft  Outcome `json:"weft"`
}

// Outcome is where a call ends up.
type Outcome struct {
	Error       string `json:"error,omitempty"`
	Listener    string `json:"listener,omitempty"`
	FilterChain string `json:"filterChain,omitempty"`
	RouteConfig string `json:"routeConfig,omitempty"`
	VirtualHost string `json:"virtualHost,omitempty"`
	Route       string `json:"route,omitempty"`
	// Clusters maps each upstream cluster to its share of calls (1 for a single cluster).
	Clusters map[string]float64 `json:"clusters,omitempty"`
	// Endpoints lists, per chosen cluster, where its connections go: "ip:port" of each
	// endpoint (EDS or inline), or the cluster's discovery type when it has no fixed endpoints.
	Endpoints map[string][]string `json:"endpoints,omitempty"`
	// UpstreamTLS says, per chosen cluster, how it speaks to endpoints for this call: "plaintext",
	// "tls sni=<sni sent> cert=<client certificate> verify=<roots> san=<names required>", or
	// "auto: <match>=<socket>..." for transport_socket_matches (Istio's auto mTLS).
	UpstreamTLS map[string]string `json:"upstreamTls,omitempty"`
	// Response is a direct response or redirect instead of a cluster: "direct 503",
	// "redirect 301 https" (a route's https_redirect or a virtual host's require_tls, which
	// Envoy answers alike), "redirect 302 host=a.example path=/b".
	Response string `json:"response,omitempty"`
	// DownstreamTLS says, for a router's calls, how the filter chain taken terminates TLS:
	// "" (plaintext, or TLS passed through untouched), else "SIMPLE" or "MUTUAL" (client
	// certificate required) with the SDS secrets it serves ("cert=kubernetes://<credentialName>")
	// and validates clients with ("ca=kubernetes://<credentialName>-cacert"), the subject alt
	// names it accepts, ALPN and TLS versions.
	DownstreamTLS string `json:"downstreamTls,omitempty"`
	// Connection summarises, for a router's HTTP calls, what the connection manager does at the
	// edge: client address from the peer or X-Forwarded-For, path normalisation, client
	// certificate details forwarded, request ids, Server header (see connectionOf).
	Connection string `json:"connection,omitempty"`
	// Secrets says, for each SDS name that chain uses, what SDS serves under it for this proxy:
	// "key pair CN=<subject CN> (<n> certificates)", "CA CN=<subject CN>,... (<n> certificates)",
	// or "not served" (no such Secret, a layout without those keys, or a Secret the proxy may not read).
	Secrets map[string]string `json:"secrets,omitempty"`
	// sdsNames are the SDS names of the chain taken, filled into Secrets by the case.
	sdsNames []string
	// RequestEdits summarises what the route taken does to the request before it goes upstream:
	// headers added ("add <name>=<value> <append action>") and removed, path and host rewrites.
	RequestEdits string `json:"requestEdits,omitempty"`
	// Retry summarises the route's retry policy (attempts, retry_on, status codes); Timeout is its timeout.
	Retry   string `json:"retry,omitempty"`
	Timeout string `json:"timeout,omitempty"`
	// AccessLog and Tracing summarise the HTTP connection manager's access loggers and tracer.
	AccessLog string `json:"accessLog,omitempty"`
	Tracing   string `json:"tracing,omitempty"`
	// Authz is "allow" or "deny" from the RBAC filters on the path taken ("" when none applies).
	Authz string `json:"authz,omitempty"`
	// AuthzPolicy names the RBAC policy that decided, when one matched.
	AuthzPolicy string `json:"authzPolicy,omitempty"`
}
