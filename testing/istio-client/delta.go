// `istio-client delta-xds`: subscribes to every Cluster over Delta ADS with
// Istio's adsc client, follows each EDS cluster's endpoints, and prints one JSON
// line per event until stdin closes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"sync"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pkg/adsc"
)

var printMu sync.Mutex

func emit(event map[string]any) {
	printMu.Lock()
	defer printMu.Unlock()
	_ = json.NewEncoder(os.Stdout).Encode(event)
}

func eventName(e adsc.Event) string {
	if e == adsc.EventDelete {
		return "delete"
	}
	return "add"
}

func runDeltaXDS(args []string) {
	flags := flag.NewFlagSet("delta-xds", flag.ExitOnError)
	address := flags.String("xds-address", "", "host:port of the xDS server (plaintext)")
	namespace := flags.String("namespace", "default", "namespace of this client")
	ip := flags.String("ip", "10.244.0.250", "IP of this client")
	_ = flags.Parse(args)

	client := adsc.NewDelta(*address, &adsc.DeltaADSConfig{Config: adsc.Config{ClientName: "weft-test", Namespace: *namespace, Workload: "delta-client", IP: *ip}},
		adsc.Watch[*cluster.Cluster]("*"),
		adsc.Register(func(ctx adsc.HandlerContext, name string, _ string, c *cluster.Cluster, event adsc.Event) {
			if event == adsc.EventAdd && c != nil && c.GetType() == cluster.Cluster_EDS {
				ctx.RegisterDependency(v3.EndpointType, name)
			}
			emit(map[string]any{"type": "cluster", "event": eventName(event), "name": name})
		}),
		adsc.Register(func(_ adsc.HandlerContext, name string, _ string, e *endpoint.ClusterLoadAssignment, event adsc.Event) {
			addresses := []string{}
			for _, locality := range e.GetEndpoints() {
				for _, lb := range locality.GetLbEndpoints() {
					addresses = append(addresses, lb.GetEndpoint().GetAddress().GetSocketAddress().GetAddress())
				}
			}
			emit(map[string]any{"type": "endpoint", "event": eventName(event), "name": name, "addresses": addresses})
		}),
	)
	ctx, cancel := context.WithCancel(context.Background())
	go client.Run(ctx)
	go func() {
		<-client.Synced()
		emit(map[string]any{"type": "synced"})
	}()
	_, _ = io.Copy(io.Discard, os.Stdin)
	cancel()
	client.Close()
}
