package oracle

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	gatewayconsts "sigs.k8s.io/gateway-api/pkg/consts"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/config/schema/gvr"
	kubelib "istio.io/istio/pkg/kube"
	"istio.io/istio/pkg/kube/kclient/clienttest"
	"istio.io/istio/pkg/spiffe"

	meshconfig "istio.io/api/mesh/v1alpha1"
)

// TestOracle reads $WEFT_ORACLE_INPUT, runs every case through Istio and through
// Weft's resources, and writes $WEFT_ORACLE_OUTPUT. A case that cannot run gets
// an error in the output; the test itself fails only when the files cannot be read or written.
func TestOracle(t *testing.T) {
	inPath, outPath := os.Getenv("WEFT_ORACLE_INPUT"), os.Getenv("WEFT_ORACLE_OUTPUT")
	if inPath == "" || outPath == "" {
		t.Fatal("set WEFT_ORACLE_INPUT (cases, JSON) and WEFT_ORACLE_OUTPUT (where the outcomes go)")
	}
	raw, err := os.ReadFile(inPath)
	if err != nil {
		t.Fatal(err)
	}
	var input Input
	if err := json.Unmarshal(raw, &input); err != nil {
		t.Fatalf("reading %s: %v", inPath, err)
	}
	output := Output{Cases: []CaseOutput{}}
	for _, c := range input.Cases {
		result := CaseOutput{Name: c.Name, Invalid: []string{}, Rejected: []string{}, Calls: []CallOutcome{}}
		t.Run(c.Name, func(t *testing.T) {
			// A Fatal inside Istio's test helpers ends this goroutine: the sentinel stays when it does.
			const stopped = "the simulation stopped (see the oracle's test log)"
			result.Error = stopped
			runCase(t, c, &result)
			if result.Error == stopped {
				result.Error = ""
			}
		})
		output.Cases = append(output.Cases, result)
	}
	encoded, err := json.MarshalIndent(output, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outPath, encoded, 0o644); err != nil {
		t.Fatal(err)
	}
}

func runCase(t *testing.T, c Case, result *CaseOutput) {
	weft, err := decodeResources(c.Weft)
	if err != nil {
		result.Error = "Weft's resources: " + err.Error()
		return
	}

	// Each object on its own, as the API server (with Istio's validating webhook) takes them: an
	// invalid one is refused and the rest still apply.
	var configs []config.Config
	for _, document := range strings.Split(c.Istio, "\n---\n") {
		if strings.TrimSpace(document) == "" {
			continue
		}
		parsed, _, err := crd.ParseInputs(document)
		if err != nil {
			result.Rejected = append(result.Rejected, objectName(document))
			continue
		}
		configs = append(configs, parsed...)
	}
	for i := range configs {
		// The API server's configs carry the cluster's domain, which short names (reviews) resolve against.
		configs[i].Domain = "cluster.local"
	}
	m := mesh.DefaultMeshConfig()
	if c.Mesh.Config != "" {
		applied, err := mesh.ApplyMeshConfig(c.Mesh.Config, m)
		if err != nil {
			result.Error = fmt.Sprintf("mesh config: %v", err)
			return
		}
		m = applied
	}
	if c.Mesh.RootNamespace != "" {
		m.RootNamespace = c.Mesh.RootNamespace
	}
	if c.Mesh.OutboundTrafficPolicy == "REGISTRY_ONLY" {
		m.OutboundTrafficPolicy = &meshconfig.MeshConfig_OutboundTrafficPolicy{Mode: meshconfig.MeshConfig_OutboundTrafficPolicy_REGISTRY_ONLY}
	}
	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		Configs:                configs,
		KubernetesObjectString: c.Kube,
		MeshConfig:             m,
		// A gateway's ServiceAccount may read its namespace's Secrets: the Role Istio's gateway
		// chart (and Weft's) grants it, which the fake's SubjectAccessReviews would otherwise refuse.
		DisableSecretAuthorization: true,
		KubeClientModifier: func(c kubelib.Client) {
			withGatewayAPIBundleVersion(c)
			// The fake installs the other Gateway API CRDs itself; without this one Istio never
			// watches BackendTLSPolicies.
			clienttest.MakeCRD(t, c, gvr.BackendTLSPolicy)
		},
	})
	if os.Getenv("WEFT_ORACLE_DEBUG") != "" {
		for _, k := range []config.GroupVersionKind{gvk.VirtualService, gvk.DestinationRule, gvk.ServiceEntry, gvk.AuthorizationPolicy} {
			t.Logf("%s: %d in Istio's store", k.Kind, len(s.Store().List(k, "")))
		}
		t.Logf("virtual services for the proxy: %d", len(s.PushContext().VirtualServicesForGateway(c.Proxy.Namespace, "mesh")))
	}
	labels := c.Proxy.Labels
	metadata := &model.NodeMetadata{Labels: labels, Namespace: c.Proxy.Namespace, IstioVersion: "1.28.0"}
	if c.Proxy.Kind == "grpc" {
		metadata.Generator = "grpc"
	}
	proxyType := model.SidecarProxy
	var identity *spiffe.Identity
	if c.Proxy.Kind == "router" {
		// A gateway: SetupProxy gives it the Gateways whose selector matches its labels, and
		// the Services whose endpoints are its IP map server ports to its listener ports. Its
		// identity (proved on 15012) and cluster decide which Secrets SDS serves it.
		proxyType = model.Router
		identity = &spiffe.Identity{TrustDomain: "cluster.local", Namespace: c.Proxy.Namespace, ServiceAccount: c.Proxy.ServiceAccount}
		metadata.ClusterID = constants.DefaultClusterName
	}
	proxy := s.SetupProxy(&model.Proxy{
		Type:             proxyType,
		ID:               c.Proxy.ID,
		ConfigNamespace:  c.Proxy.Namespace,
		IPAddresses:      []string{c.Proxy.IP},
		Labels:           labels,
		Metadata:         metadata,
		VerifiedIdentity: identity,
	})
	if c.Proxy.Kind == "grpc" {
		runGrpcCase(t, s, proxy, c, weft, result)
		return
	}
	istio := simulation.NewSimulation(t, s, proxy)
	if os.Getenv("WEFT_ORACLE_DEBUG") != "" {
		for _, r := range istio.Routes {
			t.Logf("Istio route %s", protojson.Format(r))
		}
	}
	result.Invalid = validateAll(weft, &decoded{listeners: istio.Listeners, clusters: istio.Clusters, routes: istio.Routes})
	weftSim := simulation.NewSimulation(t, s, proxy)
	weftSim.Listeners, weftSim.Clusters, weftSim.Routes = weft.listeners, weft.clusters, weft.routes

	istioEndpoints := s.Endpoints(proxy)
	istioSecret := istioSDS(s, proxy)
	weftSecrets := map[string]*tlsv3.Secret{}
	for _, secret := range weft.secrets {
		weftSecrets[secret.GetName()] = secret
	}
	for _, call := range c.Calls {
		istioOutcome, weftOutcome := runCall(t, istio, call, c.Proxy.Kind), runCall(t, weftSim, call, c.Proxy.Kind)
		istioOutcome.Endpoints = endpointsOf(istioOutcome.Clusters, istio.Clusters, istioEndpoints)
		weftOutcome.Endpoints = endpointsOf(weftOutcome.Clusters, weft.clusters, weft.endpoints)
		istioOutcome.UpstreamTLS = upstreamTLSOf(istioOutcome.Clusters, istio.Clusters, call.Host)
		weftOutcome.UpstreamTLS = upstreamTLSOf(weftOutcome.Clusters, weft.clusters, call.Host)
		if os.Getenv("WEFT_ORACLE_DEBUG") != "" {
			for _, cl := range istio.Clusters {
				if _, chosen := istioOutcome.Clusters[cl.Name]; chosen {
					t.Logf("Istio cluster %s", protojson.Format(cl))
				}
			}
		}
		istioOutcome.Secrets = secretsOf(istioOutcome.sdsNames, istioSecret)
		weftOutcome.Secrets = secretsOf(weftOutcome.sdsNames, func(name string) *tlsv3.Secret { return weftSecrets[name] })
		result.Calls = append(result.Calls, CallOutcome{Name: call.Name, Istio: istioOutcome, Weft: weftOutcome})
	}
}

type decoded struct {
	listeners []*listener.Listener
	clusters  []*cluster.Cluster
	routes    []*route.RouteConfiguration
	endpoints []*endpoint.ClusterLoadAssignment
	secrets   []*tlsv3.Secret
}

func decodeResources(r Resources) (*decoded, error) {
	out := &decoded{}
	var err error
	if out.listeners, err = decodeAll[*listener.Listener](r.Listeners, func() *listener.Listener { return &listener.Listener{} }); err != nil {
		return nil, err
	}
	if out.clusters, err = decodeAll[*cluster.Cluster](r.Clusters, func() *cluster.Cluster { return &cluster.Cluster{} }); err != nil {
		return nil, err
	}
	if out.routes, err = decodeAll[*route.RouteConfiguration](r.Routes, func() *route.RouteConfiguration { return &route.RouteConfiguration{} }); err != nil {
		return nil, err
	}
	if out.endpoints, err = decodeAll[*endpoint.ClusterLoadAssignment](r.Endpoints, func() *endpoint.ClusterLoadAssignment { return &endpoint.ClusterLoadAssignment{} }); err != nil {
		return nil, err
	}
	if out.secrets, err = decodeAll[*tlsv3.Secret](r.Secrets, func() *tlsv3.Secret { return &tlsv3.Secret{} }); err != nil {
		return nil, err
	}
	return out, nil
}

func decodeAll[T proto.Message](encoded []string, newT func() T) ([]T, error) {
	out := make([]T, 0, len(encoded))
	for i, e := range encoded {
		bytes, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			return nil, fmt.Errorf("resource %d: %v", i, err)
		}
		m := newT()
		// Strict: an unknown field in Weft's output is a bug, as Envoy would ignore it silently.
		if err := (proto.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(bytes, m); err != nil {
			return nil, fmt.Errorf("resource %d (%T): %v", i, m, err)
		}
		if len(m.ProtoReflect().GetUnknown()) > 0 {
			return nil, fmt.Errorf("resource %d (%T) has fields Envoy does not know", i, m)
		}
		out = append(out, m)
	}
	return out, nil
}

// objectName reads "Kind/namespace/name" from an object's YAML, to name a refused one.
func objectName(document string) string {
	var meta struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal([]byte(document), &meta); err != nil {
		return "(unreadable object)"
	}
	return meta.Kind + "/" + meta.Metadata.Namespace + "/" + meta.Metadata.Name
}

// withGatewayAPIBundleVersion stamps the Gateway API CRDs the fake API server is given with the bundle
// version Istio is built against, as the released CRDs carry it (`gateway.networking.k8s.io/bundle-version`):
// Istio watches GRPCRoute, TCPRoute, TLSRoute and BackendTLSPolicy only when the CRD says it is recent
// enough (pkg/kube/kclient/crdwatcher.go), and the fake's own CRDs carry no annotation.
func withGatewayAPIBundleVersion(c kubelib.Client) {
	fake, ok := c.Metadata().(*metadatafake.FakeMetadataClient)
	if !ok {
		return
	}
	stamp := func(action k8stesting.Action) (bool, runtime.Object, error) {
		var object runtime.Object
		switch a := action.(type) {
		case k8stesting.CreateAction:
			object = a.GetObject()
		case k8stesting.UpdateAction:
			object = a.GetObject()
		}
		if meta, ok := object.(metav1.Object); ok && strings.HasSuffix(meta.GetName(), ".gateway.networking.k8s.io") {
			annotations := meta.GetAnnotations()
			if annotations == nil {
				annotations = map[string]string{}
			}
			annotations[gatewayconsts.BundleVersionAnnotation] = gatewayconsts.BundleVersion
			meta.SetAnnotations(annotations)
		}
		// Not handled: the tracker stores the stamped object.
		return false, nil, nil
	}
	fake.PrependReactor("create", "customresourcedefinitions", stamp)
	fake.PrependReactor("update", "customresourcedefinitions", stamp)
}
