package oracle

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/grpcgen"
	"istio.io/istio/pilot/pkg/xds/endpoints"
	"istio.io/istio/pilot/test/xds"
)

// runGrpcCase compares a proxyless gRPC client's config: Istio's grpcgen output for
// the listeners the calls ask for (and the routes, clusters and endpoints they lead
// to) against Weft's, call by call, as grpc-go and grpc-js resolve an xds:/// target.
func runGrpcCase(t *testing.T, s *xds.FakeDiscoveryServer, proxy *model.Proxy, c Case, weft *decoded, result *CaseOutput) {
	push := s.PushContext()
	gen := &grpcgen.GrpcConfigGenerator{}
	targets := []string{}
	for _, call := range c.Calls {
		targets = append(targets, call.Target)
	}
	istio := &decoded{}
	for _, r := range gen.BuildListeners(proxy, push, targets) {
		l := &listener.Listener{}
		if r.Resource.UnmarshalTo(l) == nil {
			istio.listeners = append(istio.listeners, l)
		}
	}
	routeNames := []string{}
	for _, l := range istio.listeners {
		if h := apiListenerHcm(l); h != nil && h.GetRds() != nil {
			routeNames = append(routeNames, h.GetRds().GetRouteConfigName())
		}
	}
	for _, r := range gen.BuildHTTPRoutes(proxy, push, routeNames) {
		rc := &route.RouteConfiguration{}
		if r.Resource.UnmarshalTo(rc) == nil {
			istio.routes = append(istio.routes, rc)
		}
	}
	clusterNames := []string{}
	for _, rc := range istio.routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				if c := r.GetRoute().GetCluster(); c != "" {
					clusterNames = append(clusterNames, c)
				}
				for _, w := range r.GetRoute().GetWeightedClusters().GetClusters() {
					clusterNames = append(clusterNames, w.GetName())
				}
			}
		}
	}
	for _, r := range gen.BuildClusters(proxy, push, clusterNames) {
		cl := &clusterv3.Cluster{}
		if r.Resource.UnmarshalTo(cl) == nil {
			istio.clusters = append(istio.clusters, cl)
		}
	}
	for _, cl := range istio.clusters {
		if cl.GetType() == clusterv3.Cluster_EDS {
			name := cl.GetEdsClusterConfig().GetServiceName()
			if name == "" {
				name = cl.Name
			}
			builder := endpoints.NewEndpointBuilder(name, proxy, push)
			istio.endpoints = append(istio.endpoints, builder.BuildClusterLoadAssignment(s.Discovery.Env.EndpointIndex))
		}
	}
	result.Invalid = validateAll(weft, istio)
	for _, call := range c.Calls {
		result.Calls = append(result.Calls, CallOutcome{
			Name:  call.Name,
			Istio: runGrpcCall(istio, call),
			Weft:  runGrpcCall(weft, call),
		})
	}
}

func apiListenerHcm(l *listener.Listener) *hcmv3.HttpConnectionManager {
	h := &hcmv3.HttpConnectionManager{}
	if unpack(l.GetApiListener().GetApiListener(), h) {
		return h
	}
	return nil
}

// runGrpcCall follows one call the way a gRPC client does: the API listener named
// by the target, its route configuration, the virtual host for the target's
// authority, the first matching route, then the clusters and their endpoints.
func runGrpcCall(d *decoded, spec CallSpec) Outcome {
	var l *listener.Listener
	for _, candidate := range d.listeners {
		if candidate.Name == spec.Target {
			l = candidate
		}
	}
	if l == nil {
		return Outcome{Error: "no listener " + spec.Target}
	}
	out := Outcome{Listener: l.Name}
	h := apiListenerHcm(l)
	if h == nil {
		out.Error = "the listener is not an API listener"
		return out
	}
	rc := h.GetRouteConfig()
	if rc == nil {
		out.RouteConfig = h.GetRds().GetRouteConfigName()
		for _, candidate := range d.routes {
			if candidate.Name == out.RouteConfig {
				rc = candidate
			}
		}
	}
	if rc == nil {
		out.Error = "no route configuration " + out.RouteConfig
		return out
	}
	vh := grpcVirtualHost(rc, spec.Target)
	if vh == nil {
		out.Error = "no virtual host"
		return out
	}
	out.VirtualHost = vh.Name
	r := matchRoute(vh.Routes, requestOf(CallSpec{Protocol: "http2", Path: spec.Path, Headers: spec.Headers, Host: spec.Target}))
	if r == nil {
		out.Error = "no route matched"
		return out
	}
	out.Route = r.Name
	out.Clusters, out.Response = destinationOf(r)
	out.Retry, out.Timeout = grpcRetryOf(r, vh)
	out.Endpoints = endpointsOf(out.Clusters, d.clusters, d.endpoints)
	out.UpstreamTLS = upstreamTLSOf(out.Clusters, d.clusters, "")
	return out
}

// grpcVirtualHost picks the virtual host for an authority as gRPC's xDS resolver does
// (exact, then suffix and prefix wildcards by length, then "*"), with the port kept.
func grpcVirtualHost(rc *route.RouteConfiguration, authority string) *route.VirtualHost {
	best, bestScore := (*route.VirtualHost)(nil), -1
	for _, vh := range rc.GetVirtualHosts() {
		for _, domain := range vh.GetDomains() {
			score := -1
			switch {
			case domain == authority:
				score = 1 << 20
			case domain == "*":
				score = 0
			case strings.HasPrefix(domain, "*") && strings.HasSuffix(authority, domain[1:]):
				score = 2*len(domain) + 1
			case strings.HasSuffix(domain, "*") && strings.HasPrefix(authority, domain[:len(domain)-1]):
				score = 2 * len(domain)
			}
			if score > bestScore {
				best, bestScore = vh, score
			}
		}
	}
	return best
}

// grpcRetryOf: gRPC reads retry_policy and max_stream_duration (not the route timeout).
func grpcRetryOf(r *route.Route, vh *route.VirtualHost) (string, string) {
	retry, _ := retryOf(r, vh)
	timeout := "none"
	if d := r.GetRoute().GetMaxStreamDuration(); d != nil {
		if m := d.GetMaxStreamDuration(); m != nil {
			timeout = m.AsDuration().String()
		}
		if g := d.GetGrpcTimeoutHeaderMax(); g != nil {
			timeout += " grpc-timeout max " + g.AsDuration().String()
		}
	}
	return retry, timeout
}
