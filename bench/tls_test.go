package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadprof/loadprof/load"
	"github.com/loadprof/loadprof/report"
	"github.com/loadprof/loadprof/sim"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, all made by the test.
type testPKI struct {
	dir                   string
	caFile, otherCAFile   string
	clientCert, clientKey string
	server                tls.Certificate
	pool                  *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), pool: x509.NewCertPool()}
	ca, caKey := makeCert(t, "loadprof test CA", nil, nil, true)
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, p.dir, "ca.pem", "CERTIFICATE", ca.Raw)
	other, _ := makeCert(t, "some other CA", nil, nil, true)
	p.otherCAFile = writePEM(t, p.dir, "other-ca.pem", "CERTIFICATE", other.Raw)
	srv, srvKey := makeCert(t, "127.0.0.1", ca, caKey, false)
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	p.server, _ = tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Raw}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	cli, cliKey := makeCert(t, "loadprof client", ca, caKey, false)
	cliKeyDER, _ := x509.MarshalECPrivateKey(cliKey)
	p.clientCert = writePEM(t, p.dir, "client.pem", "CERTIFICATE", cli.Raw)
	p.clientKey = writePEM(t, p.dir, "client-key.pem", "EC PRIVATE KEY", cliKeyDER)
	return p
}

func makeCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        isCA, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRESTOverHTTPS(t *testing.T) {
	pki := newTestPKI(t)
	srv := startSim(t, sim.Config{TLS: &tls.Config{Certificates: []tls.Certificate{pki.server}}})
	data := writeFile(t, "data.json", body)
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: data, TLS: TLSFiles{CA: pki.caFile},
		Plan: load.Plan{Concurrency: 2, Requests: 100}})
	if err != nil || res.Requests != 100 || len(res.Errors) != 0 || !strings.HasPrefix(res.Target, "https://") || res.Client.Engine != "goroutines" {
		t.Fatalf("https: %v %+v", err, res)
	}
	_, err = Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: data, TLS: TLSFiles{CA: pki.otherCAFile},
		Plan: load.Plan{Concurrency: 1, Requests: 1}})
	var te *TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("wrong CA: %v", err)
	}
}

func TestGRPCOverTLSAndMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	data := writeFile(t, "data.json", body)
	tlsOnly := startSim(t, sim.Config{TLS: &tls.Config{Certificates: []tls.Certificate{pki.server}}})
	mutual := startSim(t, sim.Config{TLS: &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool}})
	run := func(srv *sim.Server, files TLSFiles) (*report.Result, error) {
		return Run(context.Background(), Config{GRPC: GRPCTarget{Addr: srv.GRPCAddr(), Model: srv.Model()}, DataPath: data, TLS: files,
			Plan: load.Plan{Concurrency: 2, Requests: 100}, Timeout: 5 * time.Second})
	}
	if res, err := run(tlsOnly, TLSFiles{Enabled: true, CA: pki.caFile}); err != nil || len(res.Errors) != 0 {
		t.Fatalf("TLS: %v", err)
	}
	if res, err := run(mutual, TLSFiles{Enabled: true, CA: pki.caFile, Cert: pki.clientCert, Key: pki.clientKey}); err != nil || len(res.Errors) != 0 {
		t.Fatalf("mTLS: %v", err)
	}
	for name, c := range map[string]struct {
		srv   *sim.Server
		files TLSFiles
		want  string
	}{
		"wrong CA":           {tlsOnly, TLSFiles{Enabled: true, CA: pki.otherCAFile}, "TLS handshake failed"},
		"no client cert":     {mutual, TLSFiles{Enabled: true, CA: pki.caFile}, "does it require a client certificate"},
		"plaintext to a TLS": {tlsOnly, TLSFiles{}, "does it expect TLS (bench.Config.TLS.Enabled)?"},
	} {
		_, err := run(c.srv, c.files)
		var te *TargetError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	if _, err := run(tlsOnly, TLSFiles{Enabled: true, Cert: pki.clientCert}); err == nil || !strings.Contains(err.Error(), "bench.Config.TLS.Cert and bench.Config.TLS.Key go together") {
		t.Fatalf("cert without key: %v", err)
	}
}

// The server's https:// metrics page is trusted as its predict port is:
// the run's CA (and client certificate) apply to the scrapes too.
func TestHTTPSMetricsAreTrustedAsTheTargetIs(t *testing.T) {
	pki := newTestPKI(t)
	srv := startSim(t, sim.Config{TLS: &tls.Config{Certificates: []tls.Certificate{pki.server}}})
	res, err := Run(context.Background(), Config{URL: srv.PredictURL(), DataPath: writeFile(t, "data.json", body),
		TLS:     TLSFiles{CA: pki.caFile},
		Plan:    load.Plan{Concurrency: 2, Requests: 50},
		Timeout: 5 * time.Second, Metrics: &MetricsConfig{URLs: []string{srv.MetricsURL()}, Interval: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Server; s == nil || s.Requests == nil || len(s.Endpoints) != 1 || s.Endpoints[0].FailedScrapes != 0 {
		t.Fatalf("server block %+v", s)
	}
}
