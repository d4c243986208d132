// One simulated proxy: an ADS stream (SotW or Delta) that subscribes as Envoy or
// a proxyless gRPC client does, ACKs every response, and keeps per resource only
// what the benchmark asks about (a digest and when it was ACKed).
package main

import (
	"context"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	v3 "istio.io/istio/pilot/pkg/xds/v3"
)

// ProxyDesc is what the bench says about one proxy.
type ProxyDesc struct {
	ID       string         `json:"id"`
	Cluster  string         `json:"cluster"`
	Metadata map[string]any `json:"metadata"`
	// "sidecar" (Envoy: CDS and LDS wildcard) or "grpc" (proxyless: LDS by name).
	Kind  string `json:"kind"`
	Delta bool   `json:"delta"`
	// For proxyless gRPC: the listener names (host:port) it dials.
	Listeners []string `json:"listeners"`
}

type name = unique.Handle[string]

// resState is what a proxy holds of one resource: a digest of what matters and the ACK time.
type resState struct {
	digest  uint64
	ackedAt int64 // unix microseconds
}

type proxy struct {
	index int
	desc  ProxyDesc
	node  *core.Node

	mu sync.Mutex
	// Types that got at least one response.
	answered map[string]bool
	// Subscriptions by name (EDS, RDS, and for gRPC also LDS and CDS).
	edsNames map[name]struct{}
	rdsNames map[name]struct{}
	cdsNames map[name]struct{}
	// The same, sorted, as SotW requests carry them; refreshed when a subscription changes.
	sorted map[string][]string
	// What the wildcard types said, per resource (Delta updates them one by one).
	clusterEds     map[name]name                  // cluster -> EDS name ("" for none), interned: thousands of proxies hold the same names
	listenerRoutes map[string]map[string]struct{} // listener -> route names
	routeClusters  map[string]map[string]struct{} // route -> clusters (gRPC)
	eds            map[name]resState
	rds            map[name]resState
	synced         bool
	syncedAt       int64
	stream         grpc.ClientStream
	pending        []*rawMsg // requests to send after the current response is handled
}

var seed = maphash.MakeSeed()

// rawMsg carries wire bytes through gRPC untouched: responses are read field by field.
type rawMsg struct{ b []byte }

type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*rawMsg).b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*rawMsg).b = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

const (
	sotwMethod  = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
	deltaMethod = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
)

func newProxy(index int, desc ProxyDesc) (*proxy, error) {
	metadata, err := structpb.NewStruct(desc.Metadata)
	if err != nil {
		return nil, err
	}
	node := &core.Node{Id: desc.ID, Cluster: desc.Cluster, Metadata: metadata}
	if desc.Kind == "grpc" {
		node.UserAgentName = "grpc-go"
		node.UserAgentVersionType = &core.Node_UserAgentVersion{UserAgentVersion: "1.82.0"}
		node.ClientFeatures = []string{"envoy.lb.does_not_support_overprovisioning", "xds.config.resource-in-sotw"}
	} else {
		node.UserAgentName = "envoy"
		node.UserAgentVersionType = &core.Node_UserAgentVersion{UserAgentVersion: "1.37.0"}
		node.ClientFeatures = []string{"envoy.lb.does_not_support_overprovisioning", "envoy.lrs.supports_send_all_clusters"}
	}
	return &proxy{index: index, desc: desc, node: node}, nil
}

func (p *proxy) reset() {
	p.answered = map[string]bool{}
	p.edsNames = map[name]struct{}{}
	p.rdsNames = map[name]struct{}{}
	p.cdsNames = map[name]struct{}{}
	p.sorted = map[string][]string{}
	p.clusterEds = map[name]name{}
	p.listenerRoutes = map[string]map[string]struct{}{}
	p.routeClusters = map[string]map[string]struct{}{}
	p.eds = map[name]resState{}
	p.rds = map[name]resState{}
	p.synced = false
}

// run keeps the proxy connected until ctx ends, reconnecting (with fresh state, as
// Envoy does after a restart of the control plane) when the stream fails.
func (p *proxy) run(ctx context.Context, conn *grpc.ClientConn, l *load) {
	attempt := 0
	for ctx.Err() == nil {
		received, err := p.session(ctx, conn, l)
		if ctx.Err() != nil {
			return
		}
		l.streamErrors.Add(1)
		l.lastError.Store(err.Error())
		if received {
			attempt = 0
		}
		// Envoy's ADS retry: full jitter over an exponential backoff from 500 ms up to 30 s.
		ceiling := min(500*time.Millisecond<<attempt, 30*time.Second)
		attempt = min(attempt+1, 10)
		select {
		case <-ctx.Done():
			return
		case <-time.After(rand.N(ceiling) + time.Millisecond):
		}
	}
}

// session runs one stream; it returns whether any response came, and why it ended.
func (p *proxy) session(ctx context.Context, conn *grpc.ClientConn, l *load) (bool, error) {
	method := sotwMethod
	if p.desc.Delta {
		method = deltaMethod
	}
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method,
		grpc.ForceCodecV2(rawCodec{}), grpc.MaxCallRecvMsgSize(1<<30))
	if err != nil {
		return false, err
	}
	p.mu.Lock()
	p.reset()
	p.stream = stream
	first := true
	// Envoy asks for clusters and listeners first; proxyless gRPC for its listeners by name.
	if p.desc.Kind == "grpc" {
		p.subscribe(v3.ListenerType, nil, p.desc.Listeners, &first)
	} else {
		p.subscribe(v3.ClusterType, nil, nil, &first)
		p.subscribe(v3.ListenerType, nil, nil, &first)
	}
	p.mu.Unlock()
	if err := p.flush(); err != nil {
		return false, err
	}
	for received := false; ; received = true {
		response := &rawMsg{}
		if err := stream.RecvMsg(response); err != nil {
			return received, err
		}
		l.bytes.Add(int64(len(response.b)))
		l.responses.Add(1)
		p.mu.Lock()
		if p.desc.Delta {
			p.onDelta(response.b, l)
		} else {
			p.onSotw(response.b, l)
		}
		p.mu.Unlock()
		if err := p.flush(); err != nil {
			return true, err
		}
		// The ACK is on its way: what this response carried now counts as ACKed.
		p.mu.Lock()
		p.afterAck(l)
		p.mu.Unlock()
	}
}

func (p *proxy) flush() error {
	p.mu.Lock()
	pending := p.pending
	p.pending = nil
	stream := p.stream
	p.mu.Unlock()
	for _, m := range pending {
		if err := stream.SendMsg(m); err != nil {
			return err
		}
	}
	return nil
}

func (p *proxy) queue(m proto.Message) {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	p.pending = append(p.pending, &rawMsg{b: b})
}

// subscribe asks for a type: the names for SotW (the whole subscription), or the
// added and removed names for Delta. nil names with first=true is a wildcard.
func (p *proxy) subscribe(typeURL string, removed []string, names []string, first *bool) {
	var node *core.Node
	if *first {
		node = p.node
		*first = false
	}
	if p.desc.Delta {
		p.queue(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNamesSubscribe: names, ResourceNamesUnsubscribe: removed})
	} else {
		p.queue(&discovery.DiscoveryRequest{Node: node, TypeUrl: typeURL, ResourceNames: names})
	}
}

func handles(set map[name]struct{}) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n.Value())
	}
	slices.Sort(out)
	return out
}

// sotwNames is what a SotW request must carry to keep the subscription of a type.
func (p *proxy) sotwNames(typeURL string) []string {
	if p.desc.Kind == "grpc" && typeURL == v3.ListenerType {
		return p.desc.Listeners
	}
	// Wildcard types (sidecars' CDS and LDS) carry no names.
	return p.sorted[typeURL]
}

type resource struct {
	name  string
	bytes []byte
}

func (p *proxy) onSotw(msg []byte, l *load) {
	var version, typeURL, nonce string
	var resources []resource
	eachField(msg, func(n protowire.Number, typ protowire.Type, b []byte, _ uint64) {
		if typ != protowire.BytesType {
			return
		}
		switch n {
		case 1:
			version = string(b)
		case 2:
			_, value := anyValue(b)
			resources = append(resources, resource{name: resourceName(value), bytes: value})
		case 4:
			typeURL = string(b)
		case 5:
			nonce = string(b)
		}
	})
	// Wildcard types carry the whole state in every SotW response.
	full := typeURL == v3.ClusterType || typeURL == v3.ListenerType
	p.apply(typeURL, resources, nil, full, l)
	p.queue(&discovery.DiscoveryRequest{TypeUrl: typeURL, VersionInfo: version, ResponseNonce: nonce, ResourceNames: p.sotwNames(typeURL)})
	p.followDependencies(typeURL)
}

func (p *proxy) onDelta(msg []byte, l *load) {
	var typeURL, nonce string
	var resources []resource
	var removed []string
	eachField(msg, func(n protowire.Number, typ protowire.Type, b []byte, _ uint64) {
		if typ != protowire.BytesType {
			return
		}
		switch n {
		case 2:
			r := resource{name: firstString(b, 3)}
			for _, a := range collect(b, []protowire.Number{2}, nil) {
				_, r.bytes = anyValue(a)
			}
			if r.name == "" {
				r.name = resourceName(r.bytes)
			}
			resources = append(resources, r)
		case 4:
			typeURL = string(b)
		case 5:
			nonce = string(b)
		case 6:
			removed = append(removed, string(b))
		}
	})
	p.apply(typeURL, resources, removed, false, l)
	p.queue(&discovery.DeltaDiscoveryRequest{TypeUrl: typeURL, ResponseNonce: nonce})
	p.followDependencies(typeURL)
}

// apply records a response's resources; `full` replaces the type's whole state (SotW wildcard types).
func (p *proxy) apply(typeURL string, resources []resource, removed []string, full bool, l *load) {
	p.answered[typeURL] = true
	now := time.Now().UnixMicro()
	switch typeURL {
	case v3.ClusterType:
		if full {
			clear(p.clusterEds)
		}
		for _, r := range resources {
			p.clusterEds[unique.Make(r.name)] = unique.Make(edsServiceName(r.bytes))
		}
		for _, n := range removed {
			delete(p.clusterEds, unique.Make(n))
		}
	case v3.ListenerType:
		if full {
			clear(p.listenerRoutes)
		}
		for _, r := range resources {
			routes := map[string]struct{}{}
			listenerRoutes(r.bytes, routes, nil)
			p.listenerRoutes[r.name] = routes
		}
		for _, n := range removed {
			delete(p.listenerRoutes, n)
		}
	case v3.RouteType:
		for _, r := range resources {
			h := maphash.Bytes(seed, r.bytes)
			l.routes.keep(h, r.bytes)
			p.rds[unique.Make(r.name)] = resState{digest: h, ackedAt: now}
			if p.desc.Kind == "grpc" {
				clusters := map[string]struct{}{}
				routeClusters(r.bytes, clusters)
				p.routeClusters[r.name] = clusters
			}
		}
		for _, n := range removed {
			delete(p.rds, unique.Make(n))
			delete(p.routeClusters, n)
		}
	case v3.EndpointType:
		for _, r := range resources {
			p.eds[unique.Make(r.name)] = resState{digest: l.addressDigest(r.bytes), ackedAt: now}
		}
		for _, n := range removed {
			delete(p.eds, unique.Make(n))
		}
	}
}

// followDependencies updates the EDS, RDS (and for gRPC, CDS) subscriptions from
// what the proxy now holds, as Envoy and gRPC do when clusters or listeners change.
// Only the type that just changed can move a subscription: EDS and RDS responses
// (most pushes) cost nothing here.
func (p *proxy) followDependencies(changed string) {
	first := false
	update := func(typeURL string, current map[name]struct{}, wanted map[string]struct{}) {
		var added, removed []string
		for n := range wanted {
			if _, ok := current[unique.Make(n)]; !ok {
				added = append(added, n)
			}
		}
		for n := range current {
			if _, ok := wanted[n.Value()]; !ok {
				removed = append(removed, n.Value())
			}
		}
		if len(added) == 0 && len(removed) == 0 {
			return
		}
		for _, n := range added {
			current[unique.Make(n)] = struct{}{}
		}
		for _, n := range removed {
			delete(current, unique.Make(n))
			if typeURL == v3.EndpointType {
				delete(p.eds, unique.Make(n))
			} else if typeURL == v3.RouteType {
				delete(p.rds, unique.Make(n))
			}
		}
		slices.Sort(added)
		slices.Sort(removed)
		p.sorted[typeURL] = handles(current)
		if p.desc.Delta {
			p.subscribe(typeURL, removed, added, &first)
		} else {
			p.subscribe(typeURL, nil, p.sorted[typeURL], &first)
		}
	}
	if changed == v3.ListenerType {
		routes := map[string]struct{}{}
		for _, names := range p.listenerRoutes {
			for n := range names {
				routes[n] = struct{}{}
			}
		}
		update(v3.RouteType, p.rdsNames, routes)
	}
	if p.desc.Kind == "grpc" && changed == v3.RouteType {
		inlineClusters := map[string]struct{}{}
		for _, clusters := range p.routeClusters {
			for c := range clusters {
				inlineClusters[c] = struct{}{}
			}
		}
		update(v3.ClusterType, p.cdsNames, inlineClusters)
	}
	if changed == v3.ClusterType {
		eds := map[string]struct{}{}
		for _, n := range p.clusterEds {
			if n.Value() != "" {
				eds[n.Value()] = struct{}{}
			}
		}
		update(v3.EndpointType, p.edsNames, eds)
	}
}

// afterAck marks the proxy synced once every type answered and every name it
// subscribed to arrived, and lets the active watch look at it.
func (p *proxy) afterAck(l *load) {
	if !p.synced && p.answered[v3.ListenerType] && p.answered[v3.ClusterType] && p.hasAll(p.edsNames, p.eds) && p.hasAll(p.rdsNames, p.rds) {
		p.synced = true
		p.syncedAt = time.Now().UnixMicro()
		l.synced.Add(1)
	}
	if w := l.watch.Load(); w != nil {
		w.check(p)
	}
}

func (p *proxy) hasAll(names map[name]struct{}, held map[name]resState) bool {
	for n := range names {
		if _, ok := held[n]; !ok {
			return false
		}
	}
	return true
}

// routeStore keeps the bytes of each distinct RouteConfiguration in use, so a
// watch can find which routes carry a host without every proxy keeping a copy.
type routeStore struct {
	mu    sync.Mutex
	bytes map[uint64][]byte
}

func (s *routeStore) keep(h uint64, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.bytes[h]; !ok {
		s.bytes[h] = b
	}
}

func (s *routeStore) get(h uint64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes[h]
}

// prune drops the bytes no proxy holds any more.
func (s *routeStore) prune(inUse map[uint64]struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h := range s.bytes {
		if _, ok := inUse[h]; !ok {
			delete(s.bytes, h)
		}
	}
}

// digestOfAddresses is the order-independent identity of an endpoint set.
func digestOfAddresses(addresses []string) uint64 {
	sorted := slices.Clone(addresses)
	slices.Sort(sorted)
	return maphash.String(seed, strings.Join(sorted, ","))
}

// watch waits for every proxy holding a resource to ACK the expected new content.
type watch struct {
	kind     string // "endpoints" or "route"
	name     name   // endpoints: the EDS name
	expected uint64 // endpoints: the digest of the expected addresses
	host     string // route: the host whose routes must change
	mu       sync.Mutex
	// Per proxy still waited on; for routes, the digests of the routes carrying the host when armed.
	waiting    map[int]map[name]uint64
	subscribed int
	lastAck    atomic.Int64
	done       chan struct{}
	armed      bool
	closed     bool
}

func (w *watch) arm(proxies []*proxy, l *load) {
	w.waiting = map[int]map[name]uint64{}
	w.done = make(chan struct{})
	inUse := map[uint64]struct{}{}
	for _, p := range proxies {
		p.mu.Lock()
		switch w.kind {
		case "endpoints":
			if _, ok := p.edsNames[w.name]; ok {
				w.subscribed++
				w.waiting[p.index] = nil
			}
		case "route":
			carried := map[name]uint64{}
			for n, s := range p.rds {
				inUse[s.digest] = struct{}{}
				if routeCarriesHost(l.routes.get(s.digest), w.host) {
					carried[n] = s.digest
				}
			}
			if len(carried) > 0 {
				w.subscribed++
				w.waiting[p.index] = carried
			}
		}
		p.mu.Unlock()
	}
	if w.kind == "route" {
		l.routes.prune(inUse)
	}
	w.mu.Lock()
	w.armed = true
	w.mu.Unlock()
	// Proxies that already hold the expected endpoints count at their ACK time.
	for _, p := range proxies {
		p.mu.Lock()
		w.check(p)
		p.mu.Unlock()
	}
	w.finishIfDone()
}

// check is called with p.mu held, after p's state changed (or when armed).
func (w *watch) check(p *proxy) {
	w.mu.Lock()
	defer w.mu.Unlock()
	carried, ok := w.waiting[p.index]
	if !ok {
		return
	}
	var ackedAt int64
	switch w.kind {
	case "endpoints":
		s, held := p.eds[w.name]
		if !held || s.digest != w.expected {
			return
		}
		ackedAt = s.ackedAt
	case "route":
		for n, before := range carried {
			s, held := p.rds[n]
			if held && s.digest == before {
				return
			}
			if held && s.ackedAt > ackedAt {
				ackedAt = s.ackedAt
			}
		}
	}
	delete(w.waiting, p.index)
	for {
		last := w.lastAck.Load()
		if ackedAt <= last || w.lastAck.CompareAndSwap(last, ackedAt) {
			break
		}
	}
	if w.armed && len(w.waiting) == 0 && !w.closed {
		w.closed = true
		close(w.done)
	}
}

func (w *watch) finishIfDone() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.waiting) == 0 && !w.closed {
		w.closed = true
		close(w.done)
	}
}

func (w *watch) pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiting)
}
