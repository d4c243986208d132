package oracle

import (
	"fmt"
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
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xdstest"
)

// runCall simulates one call with Istio's simulator (listener, filter chain,
// virtual host), then matches the route with headers and method as Envoy does
// (the simulator matches paths only), reads weighted clusters, and evaluates the
// RBAC filters of the chain taken.
func runCall(t *testing.T, sim *simulation.Simulation, spec CallSpec) Outcome {
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
	}
	for name, value := range spec.Headers {
		call.Headers[name] = []string{value}
	}
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
	if result.Error != nil && result.Error != simulation.ErrNoRoute {
		out.Error = result.Error.Error()
		return out
	}
	l := xdstest.ExtractListener(result.ListenerMatched, sim.Listeners)
	chain := chainOf(l, result.FilterChainMatched)
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
			} else {
				out.Error = simulation.ErrNoRoute.Error()
			}
		}
		out.Authz, out.AuthzPolicy = evaluateChainRBAC(chain, request, hcm)
		out.AccessLog, out.Tracing = telemetryOf(hcm)
	} else if chain != nil {
		if result.Error != nil {
			out.Error = result.Error.Error()
		}
		out.Authz, out.AuthzPolicy = evaluateChainRBAC(chain, request, nil)
	}
	return out
}

// chainOf finds the filter chain the simulator picked: by name, or the default chain.
func chainOf(l *listener.Listener, name string) *listener.FilterChain {
	if l == nil {
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
		return nil, "redirect"
	}
	return nil, "none"
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

// upstreamTLSOf summarises each chosen cluster's transport: plaintext, TLS with its
// SNI and whether it presents Istio's workload certificate, or the transport socket
// matches of auto mTLS (each match's metadata and what it selects).
func upstreamTLSOf(chosen map[string]float64, clusters []*clusterv3.Cluster) map[string]string {
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
					parts = append(parts, "{"+strings.Join(keys, ",")+"} "+socketSummary(m.GetTransportSocket()))
				}
				out[name] = "auto: " + strings.Join(parts, "; ")
			} else {
				out[name] = socketSummary(c.GetTransportSocket())
			}
		}
	}
	return out
}

func socketSummary(socket *corev3.TransportSocket) string {
	upstream := &tlsv3.UpstreamTlsContext{}
	if socket == nil || !unpack(socket.GetTypedConfig(), upstream) {
		return "plaintext"
	}
	summary := "tls sni=" + upstream.GetSni()
	for _, sds := range upstream.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs() {
		summary += " cert=" + sds.GetName()
	}
	if len(upstream.GetCommonTlsContext().GetTlsCertificates()) > 0 {
		summary += " cert=file"
	}
	return summary
}
