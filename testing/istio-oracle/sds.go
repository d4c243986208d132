package oracle

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"istio.io/istio/pilot/pkg/model"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/util/sets"
)

// istioSDS answers SDS names as istiod does for proxy (pilot/pkg/xds/sds.go, SecretGen): from
// the case's Kubernetes Secrets through Istio's credentials controller, only those the proxy's
// verified identity may read. nil when nothing is served under the name.
func istioSDS(s *xds.FakeDiscoveryServer, proxy *model.Proxy) func(name string) *tlsv3.Secret {
	generator := s.Discovery.Generators[v3.SecretType]
	served := map[string]*tlsv3.Secret{}
	return func(name string) *tlsv3.Secret {
		if secret, ok := served[name]; ok {
			return secret
		}
		var found *tlsv3.Secret
		resources, _, err := generator.Generate(proxy,
			&model.WatchedResource{TypeUrl: v3.SecretType, ResourceNames: sets.New(name)},
			&model.PushRequest{Forced: true, Push: s.PushContext()})
		if err == nil {
			for _, r := range resources {
				secret := &tlsv3.Secret{}
				if r.GetResource().UnmarshalTo(secret) == nil && secret.GetName() == name {
					found = secret
				}
			}
		}
		served[name] = found
		return found
	}
}

// sdsNamesOf lists the SDS names a chain's DownstreamTlsContext uses: its certificates' and
// its validation context's.
func sdsNamesOf(chain *listener.FilterChain) []string {
	ctx := &tlsv3.DownstreamTlsContext{}
	if chain.GetTransportSocket() == nil || !unpack(chain.GetTransportSocket().GetTypedConfig(), ctx) {
		return nil
	}
	common := ctx.GetCommonTlsContext()
	names := []string{}
	for _, sds := range common.GetTlsCertificateSdsSecretConfigs() {
		names = append(names, sds.GetName())
	}
	if sds := common.GetValidationContextSdsSecretConfig(); sds != nil {
		names = append(names, sds.GetName())
	}
	if sds := common.GetCombinedValidationContext().GetValidationContextSdsSecretConfig(); sds != nil {
		names = append(names, sds.GetName())
	}
	return names
}

// secretsOf summarises what SDS serves under each name (see Outcome.Secrets).
func secretsOf(names []string, serve func(string) *tlsv3.Secret) map[string]string {
	if len(names) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, name := range names {
		switch {
		case name == "default" || name == "ROOTCA":
			// The proxy's own workload certificate and the mesh's root: istio-agent's, not istiod's.
			out[name] = "istio-agent's " + name
		case strings.HasPrefix(name, "file-cert:") || strings.HasPrefix(name, "file-root:"):
			// serverCertificate, privateKey and caCertificates files: istio-agent reads them on the proxy.
			out[name] = "istio-agent's files"
		default:
			out[name] = secretSummary(serve(name))
		}
	}
	return out
}

// secretSummary says what a Secret gives Envoy, never its bytes: the key pair's certificate
// subjects and whether a private key is there, or the CA bundle's subjects.
func secretSummary(secret *tlsv3.Secret) string {
	switch {
	case secret == nil:
		return "not served"
	case secret.GetTlsCertificate() != nil:
		certificate := secret.GetTlsCertificate()
		summary := "key pair " + subjectsOf(certificate.GetCertificateChain().GetInlineBytes())
		if len(certificate.GetPrivateKey().GetInlineBytes()) == 0 {
			summary += " without its private key"
		}
		if len(certificate.GetOcspStaple().GetInlineBytes()) > 0 {
			summary += " with an OCSP staple"
		}
		return summary
	case secret.GetValidationContext() != nil:
		context := secret.GetValidationContext()
		summary := "CA " + subjectsOf(context.GetTrustedCa().GetInlineBytes())
		if len(context.GetCrl().GetInlineBytes()) > 0 {
			summary += " with a CRL"
		}
		return summary
	}
	return "a secret of another kind"
}

// subjectsOf reads a PEM bundle's certificates as "CN=a,b (2 certificates)".
func subjectsOf(bundle []byte) string {
	names := []string{}
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		certificate, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			names = append(names, "(unparsable)")
			continue
		}
		names = append(names, certificate.Subject.CommonName)
	}
	if len(names) == 0 {
		return fmt.Sprintf("(no PEM certificate in %d bytes)", len(bundle))
	}
	return fmt.Sprintf("CN=%s (%d certificates)", strings.Join(names, ","), len(names))
}
