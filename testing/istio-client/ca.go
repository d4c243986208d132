// `istio-client ca`: asks a CA for a workload certificate with Istio's own agent
// code: the CSR comes from Istio's pkiutil.GenCSR and the request from the citadel
// client that pilot-agent uses.
package main

import (
	"encoding/json"
	"flag"
	"os"

	"istio.io/istio/pkg/security"
	"istio.io/istio/security/pkg/credentialfetcher"
	"istio.io/istio/security/pkg/nodeagent/caclient/providers/citadel"
	pkiutil "istio.io/istio/security/pkg/pki/util"
)

func runCA(args []string) {
	flags := flag.NewFlagSet("ca", flag.ExitOnError)
	address := flags.String("ca-address", "", "host:port of the CA (TLS)")
	serverName := flags.String("ca-san", "", "DNS name the CA's certificate must carry")
	rootCert := flags.String("root-cert", "", "PEM file of the roots to trust")
	tokenPath := flags.String("token", "", "file holding the ServiceAccount token")
	identity := flags.String("identity", "", "SPIFFE ID to put in the CSR, as the agent does")
	ecc := flags.Bool("ecc", false, "ECDSA P-256 key instead of RSA 2048")
	ttl := flags.Int64("ttl", 86400, "requested lifetime in seconds")
	_ = flags.Parse(args)

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
