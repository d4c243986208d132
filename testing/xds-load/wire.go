// Just enough protobuf decoding for a load generator: the few fields of xDS
// messages a proxy must read to follow its subscriptions (names, EDS service
// names, RDS route names, a route's clusters and domains, endpoint addresses),
// read straight from the wire without unmarshalling whole resources.
package main

import (
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// eachField calls visit for every top-level field of msg; visit gets the raw
// bytes of length-delimited fields and the value of varints. It stops quietly at
// malformed input: the server's bytes are the object of the benchmark, not trusted.
func eachField(msg []byte, visit func(num protowire.Number, typ protowire.Type, bytes []byte, varint uint64)) {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return
		}
		msg = msg[n:]
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return
			}
			visit(num, typ, v, 0)
			msg = msg[m:]
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(msg)
			if m < 0 {
				return
			}
			visit(num, typ, nil, v)
			msg = msg[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, msg)
			if m < 0 {
				return
			}
			msg = msg[m:]
		}
	}
}

// collect returns the bytes found at a path of nested length-delimited fields
// (every repetition at every level), e.g. CLA endpoints(2) > lb_endpoints(2) > ...
func collect(msg []byte, path []protowire.Number, out [][]byte) [][]byte {
	if len(path) == 0 {
		return append(out, msg)
	}
	eachField(msg, func(num protowire.Number, typ protowire.Type, b []byte, _ uint64) {
		if num == path[0] && typ == protowire.BytesType {
			out = collect(b, path[1:], out)
		}
	})
	return out
}

func firstString(msg []byte, num protowire.Number) string {
	var s string
	eachField(msg, func(n protowire.Number, typ protowire.Type, b []byte, _ uint64) {
		if n == num && typ == protowire.BytesType && s == "" {
			s = string(b)
		}
	})
	return s
}

// anyValue unwraps a google.protobuf.Any: its type URL and value.
func anyValue(msg []byte) (string, []byte) {
	var typeURL string
	var value []byte
	eachField(msg, func(n protowire.Number, typ protowire.Type, b []byte, _ uint64) {
		switch {
		case n == 1 && typ == protowire.BytesType:
			typeURL = string(b)
		case n == 2 && typ == protowire.BytesType:
			value = b
		}
	})
	return typeURL, value
}

// resourceName is field 1 of Cluster, Listener, RouteConfiguration and ClusterLoadAssignment alike.
func resourceName(resource []byte) string { return firstString(resource, 1) }

// edsServiceName is the EDS resource a Cluster needs, or "" when it is not an EDS cluster.
func edsServiceName(cluster []byte) string {
	var name, serviceName string
	var discoveryType uint64
	custom := false
	eachField(cluster, func(n protowire.Number, typ protowire.Type, b []byte, v uint64) {
		switch {
		case n == 1 && typ == protowire.BytesType:
			name = string(b)
		case n == 2 && typ == protowire.VarintType:
			discoveryType = v
		case n == 3 && typ == protowire.BytesType:
			serviceName = firstString(b, 2)
		case n == 38:
			custom = true
		}
	})
	// envoy.config.cluster.v3.Cluster.DiscoveryType EDS = 3.
	if custom || discoveryType != 3 {
		return ""
	}
	if serviceName != "" {
		return serviceName
	}
	return name
}

const hcmTypeURL = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

// hcmRoutes reads an HttpConnectionManager: its RDS route name, or the clusters of its inline route.
func hcmRoutes(hcm []byte, routeNames map[string]struct{}, clusters map[string]struct{}) {
	eachField(hcm, func(n protowire.Number, typ protowire.Type, b []byte, _ uint64) {
		switch {
		case n == 3 && typ == protowire.BytesType: // rds
			if name := firstString(b, 2); name != "" {
				routeNames[name] = struct{}{}
			}
		case n == 4 && typ == protowire.BytesType && clusters != nil: // inline route_config
			routeClusters(b, clusters)
		}
	})
}

// listenerRoutes collects the route names a Listener's connection managers reference
// (filter chains, the default chain, and gRPC's API listener), and, for proxyless
// gRPC, the clusters of inline routes.
func listenerRoutes(listener []byte, routeNames map[string]struct{}, clusters map[string]struct{}) {
	visitFilter := func(filter []byte) {
		for _, typed := range collect(filter, []protowire.Number{4}, nil) {
			if typeURL, value := anyValue(typed); typeURL == hcmTypeURL {
				hcmRoutes(value, routeNames, clusters)
			}
		}
	}
	for _, chain := range collect(listener, []protowire.Number{3}, nil) {
		for _, filter := range collect(chain, []protowire.Number{3}, nil) {
			visitFilter(filter)
		}
	}
	for _, chain := range collect(listener, []protowire.Number{25}, nil) {
		for _, filter := range collect(chain, []protowire.Number{3}, nil) {
			visitFilter(filter)
		}
	}
	for _, api := range collect(listener, []protowire.Number{19, 1}, nil) {
		if typeURL, value := anyValue(api); typeURL == hcmTypeURL {
			hcmRoutes(value, routeNames, clusters)
		}
	}
}

// routeClusters collects the clusters a RouteConfiguration's routes send to.
func routeClusters(route []byte, clusters map[string]struct{}) {
	for _, action := range collect(route, []protowire.Number{2, 3, 2}, nil) {
		if c := firstString(action, 1); c != "" {
			clusters[c] = struct{}{}
		}
		for _, weighted := range collect(action, []protowire.Number{3, 1}, nil) {
			if c := firstString(weighted, 1); c != "" {
				clusters[c] = struct{}{}
			}
		}
	}
}

// routeCarriesHost tells whether a RouteConfiguration has a virtual host serving host
// (a domain equal to it, or to it with a port).
func routeCarriesHost(route []byte, host string) bool {
	for _, vhost := range collect(route, []protowire.Number{2}, nil) {
		for _, domain := range collect(vhost, []protowire.Number{2}, nil) {
			d := string(domain)
			if d == host || strings.HasPrefix(d, host+":") {
				return true
			}
		}
	}
	return false
}

// endpointAddresses lists a ClusterLoadAssignment's socket addresses that take
// traffic: health status UNKNOWN (unset) or HEALTHY. A not-ready endpoint sent as
// UNHEALTHY or DRAINING does not count as having arrived.
func endpointAddresses(cla []byte) []string {
	var out []string
	for _, lb := range collect(cla, []protowire.Number{2, 2}, nil) {
		var health uint64
		eachField(lb, func(n protowire.Number, typ protowire.Type, _ []byte, v uint64) {
			if n == 2 && typ == protowire.VarintType {
				health = v
			}
		})
		if health > 1 {
			continue
		}
		for _, socket := range collect(lb, []protowire.Number{1, 1, 1}, nil) {
			if address := firstString(socket, 2); address != "" {
				out = append(out, address)
			}
		}
	}
	return out
}
