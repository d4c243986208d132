// istio-ca-client asks a CA for a workload certificate with Istio's own agent code:
// the CSR comes from Istio's pkiutil.GenCSR and the request from the citadel client
// that pilot-agent uses. Weft's tests run it against Weft's CA to prove the wire
// protocol matches what Istio's sidecar agent sends and expects. Test tool only.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"istio.io/istio/pkg/security"
	"istio.io/istio/security/pkg/credentialfetcher"
	"istio.io/istio/security/pkg/nodeagent/caclient/providers/citadel"
	pkiutil "istio.io/istio/security/pkg/pki/util"
)

func main() {
	address := flag.String("ca-address", "", "host:port of the CA (TLS)")
	serverName := flag.String("ca-san", "", "DNS name the CA's certificate must carry")
	rootCert := flag.String("root-cert", "", "PEM file of the roots to trust")
	tokenPath := flag.String("token", "", "file holding the ServiceAccount token")
	identity := flag.String("identity", "", "SPIFFE ID to put in the CSR, as the agent does")
	ecc := flag.Bool("ecc", false, "ECDSA P-256 key instead of RSA 2048")
	ttl := flag.Int64("ttl", 86400, "requested lifetime in seconds")
	flag.Parse()

	fetcher, err := credentialfetcher.NewCredFetcher(security.JWT, "cluster.local", *tokenPath, "")
	if err != nil {
		fail("credential fetcher: %v", err)
	}
	options := &security.Options{CAEndpoint: *address, CAEndpointSAN: *serverName, ClusterID: "Kubernetes", CredFetcher: fetcher, CertSigner: ""}
	certOptions := pkiutil.CertOptions{Host: *identity, RSAKeySize: 2048}
	if *ecc {
		certOptions.ECSigAlg = pkiutil.EcdsaSigAlg
		certOptions.ECCCurve = pkiutil.P256Curve
	}
	csr, _, err := pkiutil.GenCSR(certOptions)
	if err != nil {
		fail("generate CSR: %v", err)
	}
	client, err := citadel.NewCitadelClient(options, &citadel.TLSOptions{RootCert: *rootCert})
	if err != nil {
		fail("connect: %v", err)
	}
	defer client.Close()
	chain, err := client.CSRSign(csr, *ttl)
	if err != nil {
		fail("%v", err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(chain); err != nil {
		fail("write: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "istio-ca-client: "+format+"\n", args...)
	os.Exit(1)
}
