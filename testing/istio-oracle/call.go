package oracle

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	fileaccesslog "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	otelaccesslog "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/open_telemetry/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpupstreamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xdstest"
)

// runCall simulates one call with Istio's simulator (listener, filter chain,
// virtual host), then matches the route with headers and method as Envoy does
// (the simulator matches paths only), reads weighted clusters, and evaluates the
// RBAC filters of the chain taken. kind is the proxy's (Proxy.Kind): a router's
// calls go straight to their port (gateway mode) and report the chain's downstream TLS.
func runCall(t *testing.T, sim *simulation.Simulation, spec CallSpec, kind string) (out Outcome) {
	// A config the simulator cannot follow (an RDS name no route configuration answers, say)
	// makes it panic: that call fails, the other calls and cases still run.
	defer func() {
		if r := recover(); r != nil {
			out = Outcome{Error: fmt.Sprintf("the simulator could not follow this config: %v", r)}
		}
	}()
	return simulate(t, sim, spec, kind)
}

func simulate(t *testing.T, sim *simulation.Simulation, spec CallSpec, kind string) Outcome {
	call := simulation.Call{
		Address:    spec.Address,
		Port:       spec.Port,
		Path:       spec.Path,
		Protocol:   simulation.Protocol(spec.Protocol),
		TLS:        simulation.TLSMode(spec.TLS),
		Alpn:       spec.Alpn,
		Sni:        spec.Sni,
		HostHeader: spec.Host,
		CallMode:   simulation.CallMode(spec.Mode),
		Headers:    http.Header{},
	}
	if call.CallMode == "" {
		call.CallMode = simulation.CallModeOutbound
		if kind == "router" {
			call.CallMode = simulation.CallModeGateway
		}
	}
	for name, value := range spec.Headers {
		call.Headers[name] = []string{value}
	}
	// The simulator names the chain it took, but a gateway's chains are often unnamed: the
	// validation hook hands over the chain itself once TLS is settled.
	var taken *listener.FilterChain
	call.CustomListenerValidations = []simulation.CustomFilterChainValidation{func(fc *listener.FilterChain) error {
		taken = fc
		return nil
	}}
	result := sim.Run(call)
	out := Outcome{
		Listener:    result.ListenerMatched,
		FilterChain: result.FilterChainMatched,
		RouteConfig: result.RouteConfigMatched,
		VirtualHost: result.VirtualHostMatched,
		Route:       result.RouteMatched,
	}
	if result.ClusterMatched != "" {
		out.Clusters = map[string]float64{result.ClusterMatched: 1}
	}
	l := xdstest.ExtractListener(result.ListenerMatched, sim.Listeners)
	chain := taken
	if chain == nil {
		chain = chainOf(l, result.FilterChainMatched)
	}
	if kind == "router" {
		out.DownstreamTLS = downstreamTLSOf(chain)
		out.sdsNames = sdsNamesOf(chain)
	}
	if errors.Is(result.Error, simulation.ErrTLSRedirect) {
		// A virtual host's require_tls ALL (Istio's httpsRedirect): Envoy answers 301 to the
		// same host and path over https, as a route's https_redirect does.
		out.Response = "redirect 301 https"
		return out
	}
	if result.Error != nil && result.Error != simulation.ErrNoRoute {
		out.Error = result.Error.Error()
		return out
	}
	request := requestOf(spec)
	if hcm := xdstest.ExtractHTTPConnectionManager(t, chain); hcm != nil && result.VirtualHostMatched != "" {
		rc := hcm.GetRouteConfig()
		if rc == nil {
			rc = xdstest.ExtractRouteConfigurations(sim.Routes)[result.RouteConfigMatched]
		}
		out.Error = ""
		out.Route, out.Clusters, out.Response = "", nil, ""
		if vh := virtualHostNamed(rc, result.VirtualHostMatched); vh != nil {
			if r := matchRoute(vh.Routes, request); r != nil {
				out.Route = r.Name
				out.Clusters, out.Response = destinationOf(r)
				out.Retry, out.Timeout = retryOf(r, vh)
				out.RequestEdits = requestEditsOf(rc, vh, r)
			} else {
				out.Error = simulation.ErrNoRoute.Error()
			}
		}
		out.Authz, out.AuthzPolicy = evaluateChainRBAC(chain, request, hcm)
		out.AccessLog, out.Tracing = telemetryOf(hcm)
		if kind == "router" {
			out.Connection = connectionOf(hcm)
		}
	} else if chain != nil {
		if result.Error != nil {
			out.Error = result.Error.Error()
		}
		if tcp := xdstest.ExtractTCPProxy(t, chain); tcp != nil && tcp.GetWeightedClusters() != nil {
			// The simulator reads tcp_proxy's single cluster only.
			out.Clusters = tcpSharesOf(tcp.GetWeightedClusters().GetClusters())
		}
		out.Authz, out.AuthzPolicy = evaluateChainRBAC(chain, request, nil)
	}
	return out
}

// chainOf finds the filter chain the simulator picked: by name, or the default chain.
// An unnamed chain cannot be told apart by name: nil.
func chainOf(l *listener.Listener, name string) *listener.FilterChain {
	if l == nil || name == "" {
		return nil
	}
	for _, fc := range l.FilterChains {
		if fc.Name == name {
			return fc
		}
	}
	if l.DefaultFilterChain != nil && l.DefaultFilterChain.Name == name {
		return l.DefaultFilterChain
	}
	return nil
}

func virtualHostNamed(rc *route.RouteConfiguration, name string) *route.VirtualHost {
	for _, vh := range rc.GetVirtualHosts() {
		if vh.Name == name {
			return vh
		}
	}
	return nil
}

// destinationOf reads a route's action: a cluster, weighted clusters (as shares), or a response.
func destinationOf(r *route.Route) (map[string]float64, string) {
	switch action := r.Action.(type) {
	case *route.Route_Route:
		if c := action.Route.GetCluster(); c != "" {
			return map[string]float64{c: 1}, ""
		}
		if w := action.Route.GetWeightedClusters(); w != nil {
			total := 0.0
			for _, c := range w.Clusters {
				total += float64(c.GetWeight().GetValue())
			}
			shares := map[string]float64{}
			for _, c := range w.Clusters {
				if total > 0 && c.GetWeight().GetValue() > 0 {
					shares[c.Name] += float64(c.GetWeight().GetValue()) / total
				}
			}
			return shares, ""
		}
		if h := action.Route.GetClusterHeader(); h != "" {
			return nil, "cluster from header " + h
		}
	case *route.Route_DirectResponse:
		return nil, "direct " + strconv.Itoa(int(action.DirectResponse.GetStatus()))
	case *route.Route_Redirect:
		return nil, redirectOf(action.Redirect)
	}
	return nil, "none"
}

// connectionOf summarises what a gateway's HTTP connection manager does to requests at
// the edge (http_connection_manager.proto): whether the peer's address is the client's
// (use_remote_address, xff_num_trusted_hops, skip_xff_append), how it treats paths
// (normalize_path, merge_slashes, path_with_escaped_slashes_action), client certificate
// details forwarded (forward_client_cert_details), request ids, the Server header, and
// HTTP/1.0 and HTTP/2 settings that change who may connect.
func connectionOf(h *hcmv3.HttpConnectionManager) string {
	parts := []string{}
	if h.GetUseRemoteAddress().GetValue() {
		parts = append(parts, "use_remote_address")
	}
	if n := h.GetXffNumTrustedHops(); n > 0 {
		parts = append(parts, fmt.Sprintf("xff_trusted_hops=%d", n))
	}
	if h.GetSkipXffAppend() {
		parts = append(parts, "skip_xff_append")
	}
	if h.GetNormalizePath().GetValue() {
		parts = append(parts, "normalize_path")
	}
	if h.GetMergeSlashes() {
		parts = append(parts, "merge_slashes")
	}
	if a := h.GetPathWithEscapedSlashesAction(); a != hcmv3.HttpConnectionManager_IMPLEMENTATION_SPECIFIC_DEFAULT {
		parts = append(parts, "escaped_slashes="+a.String())
	}
	parts = append(parts, "forward_client_cert="+h.GetForwardClientCertDetails().String())
	if h.GetPreserveExternalRequestId() {
		parts = append(parts, "preserve_external_request_id")
	}
	if h.GetGenerateRequestId() != nil && !h.GetGenerateRequestId().GetValue() {
		parts = append(parts, "no_request_id")
	}
	if name := h.GetServerName(); name != "" {
		parts = append(parts, "server="+name)
	}
	if t := h.GetServerHeaderTransformation(); t != hcmv3.HttpConnectionManager_OVERWRITE {
		parts = append(parts, "server_header="+t.String())
	}
	if h.GetHttpProtocolOptions().GetAcceptHttp_10() {
		parts = append(parts, "http/1.0")
	}
	if t := h.GetStreamIdleTimeout(); t != nil {
		parts = append(parts, "stream_idle_timeout="+t.AsDuration().String())
	}
	return strings.Join(parts, " ")
}

// tcpSharesOf reads tcp_proxy's weighted clusters as shares of connections (weights are relative).
func tcpSharesOf(clusters []*tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight) map[string]float64 {
	total := 0.0
	for _, c := range clusters {
		total += float64(c.GetWeight())
	}
	shares := map[string]float64{}
	for _, c := range clusters {
		if total > 0 && c.GetWeight() > 0 {
			shares[c.GetName()] += float64(c.GetWeight()) / total
		}
	}
	return shares
}

// redirectOf summarises a redirect as the client sees it: the status code, then what
// changes in the location (scheme, host, port, path or prefix, query).
func redirectOf(r *route.RedirectAction) string {
	codes := map[route.RedirectAction_RedirectResponseCode]string{
		route.RedirectAction_MOVED_PERMANENTLY:  "301",
		route.RedirectAction_FOUND:              "302",
		route.RedirectAction_SEE_OTHER:          "303",
		route.RedirectAction_TEMPORARY_REDIRECT: "307",
		route.RedirectAction_PERMANENT_REDIRECT: "308",
	}
	parts := []string{"redirect", codes[r.GetResponseCode()]}
	if r.GetHttpsRedirect() {
		parts = append(parts, "https")
	} else if scheme := r.GetSchemeRedirect(); scheme != "" {
		parts = append(parts, scheme)
	}
	if host := r.GetHostRedirect(); host != "" {
		parts = append(parts, "host="+host)
	}
	if port := r.GetPortRedirect(); port != 0 {
		parts = append(parts, "port="+strconv.Itoa(int(port)))
	}
	if path := r.GetPathRedirect(); path != "" {
		parts = append(parts, "path="+path)
	}
	if prefix := r.GetPrefixRewrite(); prefix != "" {
		parts = append(parts, "prefix="+prefix)
	}
	if regex := r.GetRegexRewrite(); regex != nil {
		parts = append(parts, "regex="+regex.GetPattern().GetRegex()+"->"+regex.GetSubstitution())
	}
	if r.GetStripQuery() {
		parts = append(parts, "strip-query")
	}
	return strings.Join(parts, " ")
}

// downstreamTLSOf summarises how a filter chain terminates TLS: "" without a
// transport socket (plaintext, or TLS passed through to the upstream untouched), else
// SIMPLE or MUTUAL (require_client_certificate) with the certificates it serves (SDS
// names, or "file"), the validation context (SDS name, "file" or "inline"), the
// subject alt names it accepts, ALPN and the TLS versions it allows
// (extensions.transport_sockets.tls.v3.DownstreamTlsContext).
func downstreamTLSOf(chain *listener.FilterChain) string {
	socket := chain.GetTransportSocket()
	if socket == nil {
		return ""
	}
	ctx := &tlsv3.DownstreamTlsContext{}
	if !unpack(socket.GetTypedConfig(), ctx) {
		return "transport socket " + socket.GetName()
	}
	mode := "SIMPLE"
	if ctx.GetRequireClientCertificate().GetValue() {
		mode = "MUTUAL"
	}
	parts := []string{mode}
	common := ctx.GetCommonTlsContext()
	for _, sds := range common.GetTlsCertificateSdsSecretConfigs() {
		parts = append(parts, "cert="+sds.GetName())
	}
	if len(common.GetTlsCertificates()) > 0 {
		parts = append(parts, "cert=file")
	}
	var sans []*tlsv3.SubjectAltNameMatcher
	switch v := common.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		parts = append(parts, "ca="+v.ValidationContextSdsSecretConfig.GetName())
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		parts = append(parts, "ca="+v.CombinedValidationContext.GetValidationContextSdsSecretConfig().GetName())
		sans = v.CombinedValidationContext.GetDefaultValidationContext().GetMatchTypedSubjectAltNames()
	case *tlsv3.CommonTlsContext_ValidationContext:
		if v.ValidationContext.GetTrustedCa() != nil {
			parts = append(parts, "ca=file")
		}
		sans = v.ValidationContext.GetMatchTypedSubjectAltNames()
	}
	for _, san := range sans {
		parts = append(parts, "san="+stringMatcherOf(san.GetMatcher()))
	}
	if alpn := common.GetAlpnProtocols(); len(alpn) > 0 {
		parts = append(parts, "alpn="+strings.Join(alpn, ","))
	}
	if params := common.GetTlsParams(); params != nil {
		if v := params.GetTlsMinimumProtocolVersion(); v != tlsv3.TlsParameters_TLS_AUTO {
			parts = append(parts, "min="+v.String())
		}
		if v := params.GetTlsMaximumProtocolVersion(); v != tlsv3.TlsParameters_TLS_AUTO {
			parts = append(parts, "max="+v.String())
		}
	}
	return strings.Join(parts, " ")
}

// stringMatcherOf writes a type.matcher.v3.StringMatcher as "exact:x", "prefix:x"...
func stringMatcherOf(m *matcher.StringMatcher) string {
	switch p := m.GetMatchPattern().(type) {
	case *matcher.StringMatcher_Exact:
		return "exact:" + p.Exact
	case *matcher.StringMatcher_Prefix:
		return "prefix:" + p.Prefix
	case *matcher.StringMatcher_Suffix:
		return "suffix:" + p.Suffix
	case *matcher.StringMatcher_Contains:
		return "contains:" + p.Contains
	case *matcher.StringMatcher_SafeRegex:
		return "regex:" + p.SafeRegex.GetRegex()
	}
	return "?"
}

// request is what RBAC and route matching see of a call.
type request struct {
	http      bool
	headers   map[string]string // lower-case names, with :method, :path, :authority
	path      string
	port      int
	principal string
	sourceIP  string
	sni       string
}

func requestOf(spec CallSpec) request {
	r := request{
		http:      spec.Protocol == "http" || spec.Protocol == "http2",
		headers:   map[string]string{},
		path:      spec.Path,
		port:      spec.Port,
		principal: spec.SourcePrincipal,
		sourceIP:  spec.SourceIP,
		sni:       spec.Sni,
	}
	if r.path == "" {
		r.path = "/"
	}
	if r.sourceIP == "" {
		r.sourceIP = "10.0.0.99"
	}
	for name, value := range spec.Headers {
		r.headers[strings.ToLower(name)] = value
	}
	if r.http {
		method := spec.Method
		if method == "" {
			method = "GET"
		}
		r.headers[":method"] = method
		r.headers[":path"] = r.path
		r.headers[":authority"] = spec.Host
	}
	return r
}

// retryOf summarises what decides retries and timeouts of a routed call: the
// route's retry policy (or the virtual host's), and the route timeout.
func retryOf(r *route.Route, vh *route.VirtualHost) (string, string) {
	action := r.GetRoute()
	if action == nil {
		return "", ""
	}
	policy := action.GetRetryPolicy()
	if policy == nil {
		policy = vh.GetRetryPolicy()
	}
	retry := "none"
	if policy != nil {
		attempts := uint32(1)
		if policy.GetNumRetries() != nil {
			attempts = policy.GetNumRetries().GetValue()
		}
		codes := []string{}
		for _, code := range policy.GetRetriableStatusCodes() {
			codes = append(codes, strconv.Itoa(int(code)))
		}
		retry = fmt.Sprintf("%d on %s codes [%s]", attempts, policy.GetRetryOn(), strings.Join(codes, ","))
		if t := policy.GetPerTryTimeout(); t != nil {
			retry += " per try " + t.AsDuration().String()
		}
	}
	timeout := "15s (Envoy's default)"
	if t := action.GetTimeout(); t != nil {
		timeout = t.AsDuration().String()
	}
	return retry, timeout
}

// telemetryOf summarises what a request leaves behind: each access logger (its
// extension and, for files, the path) and the tracer (provider, the collector's
// cluster, sampling).
func telemetryOf(h *hcmv3.HttpConnectionManager) (string, string) {
	logs := []string{}
	for _, log := range h.GetAccessLog() {
		entry := log.GetName()
		file := &fileaccesslog.FileAccessLog{}
		if unpack(log.GetTypedConfig(), file) {
			entry += " " + file.GetPath()
		}
		otel := &otelaccesslog.OpenTelemetryAccessLogConfig{}
		if unpack(log.GetTypedConfig(), otel) {
			entry += " " + otel.GetCommonConfig().GetGrpcService().GetEnvoyGrpc().GetClusterName()
		}
		logs = append(logs, entry)
	}
	sort.Strings(logs)
	tracing := ""
	if t := h.GetTracing(); t != nil {
		tracing = t.GetProvider().GetName()
		otel := &tracev3.OpenTelemetryConfig{}
		if unpack(t.GetProvider().GetTypedConfig(), otel) {
			tracing += " " + otel.GetGrpcService().GetEnvoyGrpc().GetClusterName()
		}
		zipkin := &tracev3.ZipkinConfig{}
		if unpack(t.GetProvider().GetTypedConfig(), zipkin) {
			tracing += " " + zipkin.GetCollectorCluster()
		}
		if s := t.GetRandomSampling(); s != nil {
			tracing += fmt.Sprintf(" sampling %g%%", s.GetValue())
		}
	}
	return strings.Join(logs, "; "), tracing
}

// endpointsOf says where each chosen cluster sends connections: its endpoints'
// addresses and ports (from EDS for EDS clusters, else the inline load assignment),
// sorted, or its discovery type (ORIGINAL_DST) when it has none of its own.
func endpointsOf(chosen map[string]float64, clusters []*clusterv3.Cluster, assignments []*endpointv3.ClusterLoadAssignment) map[string][]string {
	if len(chosen) == 0 {
		return nil
	}
	byName := map[string]*clusterv3.Cluster{}
	for _, c := range clusters {
		byName[c.Name] = c
	}
	byService := map[string]*endpointv3.ClusterLoadAssignment{}
	for _, a := range assignments {
		byService[a.ClusterName] = a
	}
	out := map[string][]string{}
	for name := range chosen {
		c, ok := byName[name]
		if !ok {
			out[name] = []string{"(no such cluster)"}
			continue
		}
		assignment := c.GetLoadAssignment()
		if c.GetType() == clusterv3.Cluster_EDS {
			service := c.GetEdsClusterConfig().GetServiceName()
			if service == "" {
				service = c.Name
			}
			assignment = byService[service]
		}
		addresses := []string{}
		for _, locality := range assignment.GetEndpoints() {
			for _, lb := range locality.GetLbEndpoints() {
				socket := lb.GetEndpoint().GetAddress().GetSocketAddress()
				if socket != nil {
					addresses = append(addresses, fmt.Sprintf("%s:%d", socket.GetAddress(), socket.GetPortValue()))
				}
			}
		}
		if len(addresses) == 0 {
			addresses = []string{"(" + c.GetType().String() + ", no endpoints)"}
		}
		sort.Strings(addresses)
		out[name] = addresses
	}
	return out
}

// upstreamTLSOf summarises each chosen cluster's transport: plaintext, TLS with the SNI
// it sends for a request to host (its own, or the Host header's under auto_sni), the
// certificate it presents and how it verifies the server's (see socketSummary), or the
// transport socket matches of auto mTLS (each match's metadata and what it selects). host
// is the call's Host header, "" for TCP and proxyless gRPC.
func upstreamTLSOf(chosen map[string]float64, clusters []*clusterv3.Cluster, host string) map[string]string {
	if len(chosen) == 0 {
		return nil
	}
	out := map[string]string{}
	for name := range chosen {
		for _, c := range clusters {
			if c.Name != name {
				continue
			}
			if matches := c.GetTransportSocketMatches(); len(matches) > 0 {
				parts := []string{}
				for _, m := range matches {
					keys := []string{}
					for k, v := range m.GetMatch().GetFields() {
						keys = append(keys, k+"="+v.GetStringValue())
					}
					sort.Strings(keys)
					parts = append(parts, "{"+strings.Join(keys, ",")+"} "+socketSummary(m.GetTransportSocket(), c, host))
				}
				out[name] = "auto: " + strings.Join(parts, "; ")
			} else {
				out[name] = socketSummary(c.GetTransportSocket(), c, host)
			}
		}
	}
	return out
}

// socketSummary says what a TLS origination does for one request: the SNI sent (the
// context's own, else under the cluster's auto_sni the request's host), the client
// certificate presented, where the server's certificate is verified against ("verify=" an
// SDS name such as ROOTCA or file-root:system, a file, or inline) and the names it must
// carry ("san=": the validation context's matchers, and the host under auto_san_validation).
func socketSummary(socket *corev3.TransportSocket, c *clusterv3.Cluster, host string) string {
	upstream := &tlsv3.UpstreamTlsContext{}
	if socket == nil || !unpack(socket.GetTypedConfig(), upstream) {
		return "plaintext"
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	autoSNI, autoSAN := autoSNIOf(c)
	sni := upstream.GetSni()
	if sni == "" && autoSNI {
		sni = host
	}
	summary := "tls sni=" + sni
	common := upstream.GetCommonTlsContext()
	for _, sds := range common.GetTlsCertificateSdsSecretConfigs() {
		summary += " cert=" + sds.GetName()
	}
	if len(common.GetTlsCertificates()) > 0 {
		summary += " cert=file"
	}
	var validation *tlsv3.CertificateValidationContext
	switch v := common.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		summary += " verify=" + trustOf(v.ValidationContextSdsSecretConfig.GetName())
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		summary += " verify=" + trustOf(v.CombinedValidationContext.GetValidationContextSdsSecretConfig().GetName())
		validation = v.CombinedValidationContext.GetDefaultValidationContext()
	case *tlsv3.CommonTlsContext_ValidationContext:
		validation = v.ValidationContext
		if ca := validation.GetTrustedCa(); ca.GetFilename() != "" {
			summary += " verify=" + trustOf("file:"+ca.GetFilename())
		} else if ca != nil {
			summary += " verify=inline"
		}
	}
	names := subjectAltNamesOf(validation)
	if autoSAN && host != "" {
		names = append(names, "exact:"+host)
	}
	sort.Strings(names)
	for _, name := range names {
		summary += " san=" + name
	}
	return summary
}

// systemRoots are where Envoy may be pointed at the operating system's trust store: Istio
// names it file-root:system (istio-agent serves the bundle it finds), a generator may name
// the bundle's file directly.
var systemRoots = map[string]bool{
	"file-root:system":                                       true,
	"file:/etc/ssl/certs/ca-certificates.crt":                true,
	"file:/etc/pki/tls/certs/ca-bundle.crt":                  true,
	"file:/etc/ssl/ca-bundle.pem":                            true,
	"file:/etc/pki/tls/cacert.pem":                           true,
	"file:/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem": true,
	"file:/etc/ssl/cert.pem":                                 true,
}

// trustOf names a validation context's trust source, the system trust store alike however named.
func trustOf(name string) string {
	if systemRoots[name] {
		return "system roots"
	}
	return name
}

// subjectAltNamesOf lists the names a validation context requires of the peer, from both
// match_typed_subject_alt_names and the deprecated match_subject_alt_names Istio still sets.
func subjectAltNamesOf(v *tlsv3.CertificateValidationContext) []string {
	names := []string{}
	for _, san := range v.GetMatchTypedSubjectAltNames() {
		names = append(names, stringMatcherOf(san.GetMatcher()))
	}
	for _, san := range v.GetMatchSubjectAltNames() { //nolint:staticcheck // Istio sets the deprecated field.
		names = append(names, stringMatcherOf(san))
	}
	return names
}

// autoSNIOf reads a cluster's upstream HTTP options: whether SNI, and the server name
// verified, follow each request's host (auto_sni, auto_san_validation).
func autoSNIOf(c *clusterv3.Cluster) (bool, bool) {
	options := &httpupstreamv3.HttpProtocolOptions{}
	if !unpack(c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"], options) {
		return false, false
	}
	upstream := options.GetUpstreamHttpProtocolOptions()
	return upstream.GetAutoSni(), upstream.GetAutoSanValidation()
}

// requestEditsOf summarises what Envoy does to a request on the route taken before it goes
// upstream (route.proto): headers added, with how they combine with a value already there, and
// removed, at the route configuration, virtual host, route and weighted cluster levels (the level
// is not kept: each applies to the call alike), then the path and host rewrites. Sorted; "" for none.
func requestEditsOf(rc *route.RouteConfiguration, vh *route.VirtualHost, r *route.Route) string {
	var parts []string
	edits := func(prefix string, add []*corev3.HeaderValueOption, remove []string) {
		for _, h := range add {
			action := h.GetAppendAction().String()
			// The deprecated append field, when set, decides instead (Envoy's rule).
			if a := h.GetAppend(); a != nil {
				action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD.String()
				if a.GetValue() {
					action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD.String()
				}
			}
			value := h.GetHeader().GetValue()
			if value == "" && len(h.GetHeader().GetRawValue()) > 0 {
				value = string(h.GetHeader().GetRawValue())
			}
			parts = append(parts, fmt.Sprintf("%sadd %s=%s %s", prefix, strings.ToLower(h.GetHeader().GetKey()), value, action))
		}
		for _, name := range remove {
			parts = append(parts, prefix+"remove "+strings.ToLower(name))
		}
	}
	edits("", rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove())
	edits("", vh.GetRequestHeadersToAdd(), vh.GetRequestHeadersToRemove())
	edits("", r.GetRequestHeadersToAdd(), r.GetRequestHeadersToRemove())
	if action := r.GetRoute(); action != nil {
		for _, c := range action.GetWeightedClusters().GetClusters() {
			edits("to "+c.GetName()+": ", c.GetRequestHeadersToAdd(), c.GetRequestHeadersToRemove())
			if host := c.GetHostRewriteLiteral(); host != "" {
				parts = append(parts, "to "+c.GetName()+": host="+host)
			}
		}
		if prefix := action.GetPrefixRewrite(); prefix != "" {
			parts = append(parts, "prefix="+prefix)
		}
		if regex := action.GetRegexRewrite(); regex != nil {
			parts = append(parts, "regex="+regex.GetPattern().GetRegex()+"->"+regex.GetSubstitution())
		}
		if host := action.GetHostRewriteLiteral(); host != "" {
			parts = append(parts, "host="+host)
		}
		if action.GetAutoHostRewrite().GetValue() {
			parts = append(parts, "host=auto")
		}
		if header := action.GetHostRewriteHeader(); header != "" {
			parts = append(parts, "host=from header "+header)
		}
		if policy := action.GetPathRewritePolicy(); policy != nil {
			parts = append(parts, "path policy "+policy.GetName())
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
