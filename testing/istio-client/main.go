// istio-client runs Istio's own client code against Weft, so tests prove wire
// compatibility with what Istio's agent and tools really send. Test tool only.
//
//	istio-client ca ...         a workload certificate via the citadel client
//	istio-client delta-xds ...  a Delta xDS subscription via istio.io/istio/pkg/adsc
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: istio-client ca|delta-xds [flags]")
	}
	switch os.Args[1] {
	case "ca":
		runCA(os.Args[2:])
	case "delta-xds":
		runDeltaXDS(os.Args[2:])
	default:
		fail("unknown command %q (want ca or delta-xds)", os.Args[1])
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "istio-client: "+format+"\n", args...)
	os.Exit(1)
}
