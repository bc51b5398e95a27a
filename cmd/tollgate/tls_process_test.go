package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCertificate is a self-signed ECDSA certificate for 127.0.0.1.
type testCertificate struct {
	der          []byte
	certPEM, key []byte
}

func newTestCertificate(t *testing.T, name string) testCertificate {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return testCertificate{
		der:     der,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
}

// write writes the certificate and key files.
func (c testCertificate) write(t *testing.T, certFile, keyFile string) {
	t.Helper()
	if err := os.WriteFile(certFile, c.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.key, 0o600); err != nil {
		t.Fatal(err)
	}
}

// client is an HTTPS client that trusts only c, on fresh connections.
func (c testCertificate) client(t *testing.T) *http.Client {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
}

// servedCertificate is the certificate a new TLS connection to addr sees.
func servedCertificate(t *testing.T, addr string) []byte {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("cannot connect with TLS to %s: %s", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}

// TestServeTLSReloadsOnSIGHUP: with tls.client and tls.admin set, the
// client and admin APIs answer over HTTPS with the configured (self-signed)
// certificates and refuse plain HTTP; after the files are replaced and
// SIGHUP sent, new TLS connections see the new certificates, which clients
// trusting only them accept.
func TestServeTLSReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	files := map[string][2]string{}
	for _, l := range []string{"client", "admin"} {
		files[l] = [2]string{filepath.Join(dir, l+".crt"), filepath.Join(dir, l+".key")}
	}
	cfg := gatewayConfig(t,
		"tls.client.cert_file", files["client"][0], "tls.client.key_file", files["client"][1],
		"tls.admin.cert_file", files["admin"][0], "tls.admin.key_file", files["admin"][1])
	certs := map[string]testCertificate{}
	for _, l := range []string{"client", "admin"} {
		certs[l] = newTestCertificate(t, "tollgate "+l)
		certs[l].write(t, files[l][0], files[l][1])
	}
	p := launchGateway(t, t.TempDir(), []string{"TOLLGATE_ADMIN_TOKEN=test-admin-token"}, "--config", cfg)

	adminDo := func(c *http.Client, method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "https://"+p.admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+p.token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("admin API over HTTPS: %s", err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	call := func(c *http.Client, key string) (int, []byte) {
		t.Helper()
		body := `{"model":"claude-haiku-4-5","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"Hello over TLS"}]}`
		req, _ := http.NewRequest("POST", "https://"+p.client+"/v1/messages", strings.NewReader(body))
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
		req.Header.Set("content-type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("client API over HTTPS: %s", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	admin, client := certs["admin"].client(t), certs["client"].client(t)
	if st, out := adminDo(admin, "POST", "/admin/v1/accounts", `{"id":"acme"}`); st != 201 {
		t.Fatalf("cannot create an account over HTTPS: %d %v", st, out)
	}
	if st, out := adminDo(admin, "POST", "/admin/v1/accounts/acme/topups", `{"amount":"10","order_id":"o-1","kind":"paid"}`); st != 201 {
		t.Fatalf("cannot top up over HTTPS: %d %v", st, out)
	}
	st, out := adminDo(admin, "POST", "/admin/v1/accounts/acme/keys", `{"name":"tls"}`)
	if st != 201 {
		t.Fatalf("cannot create a key over HTTPS: %d %v", st, out)
	}
	key := out["key"].(string)
	if st, b := call(client, key); st != 200 || !bytes.Contains(b, []byte("event: message_stop")) {
		t.Fatalf("unexpected call over HTTPS: %d\n%s", st, b)
	}
	if resp, err := http.Get("http://" + p.client + "/v1/models"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("the TLS client listener answered plain HTTP")
		}
	}

	renewed := map[string]testCertificate{}
	for _, l := range []string{"client", "admin"} {
		renewed[l] = newTestCertificate(t, "tollgate "+l+" renewed")
		renewed[l].write(t, files[l][0], files[l][1])
	}
	if !bytes.Equal(servedCertificate(t, p.client), certs["client"].der) {
		t.Fatalf("the certificate changed before SIGHUP")
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	for l, addr := range map[string]string{"client": p.client, "admin": p.admin} {
		waitFor(t, 5*time.Second, "the "+l+" listener's new certificate", func() bool {
			return bytes.Equal(servedCertificate(t, addr), renewed[l].der)
		})
	}
	if st, out := adminDo(renewed["admin"].client(t), "GET", "/admin/v1/accounts/acme", ""); st != 200 {
		t.Fatalf("admin API with the renewed certificate: %d %v", st, out)
	}
	if st, b := call(renewed["client"].client(t), key); st != 200 || !bytes.Contains(b, []byte("event: message_stop")) {
		t.Fatalf("unexpected call with the renewed certificate: %d\n%s", st, b)
	}
	if strings.Contains(p.stderr.String(), "keeping the old certificate") {
		t.Fatalf("the reload was refused:\n%s", p.stderr.String())
	}
}
