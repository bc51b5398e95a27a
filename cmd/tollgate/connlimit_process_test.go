package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// Two findings about the refusal of a connection over its address's bound
// (proxy/connlimit.go): both tests fail at b0d213c and pass once fixed.

// TestConnsPerAddressRefusalHasRequestID: the 429 answering a connection
// over the bound is a client-API response, so it carries request-id, and
// its error body the same request_id (every client-API response carries
// one, errors included). refuseResponse is a fixed response with
// neither.
func TestConnsPerAddressRefusalHasRequestID(t *testing.T) {
	p := startGateway(t, t.TempDir(), "--config", gatewayConfig(t, "limits.max_conns_per_ip", "1"))
	first, err := net.Dial("tcp", p.client)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	first.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(first, "GET /v1/nothing HTTP/1.1\r\nHost: tollgate\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(first), nil); err != nil || resp.StatusCode != 404 {
		t.Fatalf("the connection within the bound was not served: %v %v", err, resp)
	}
	second, err := net.Dial("tcp", p.client)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(second), nil)
	if err != nil || resp.StatusCode != 429 {
		t.Fatalf("unexpected answer over the bound: %v %v", err, resp)
	}
	var e struct {
		RequestID string `json:"request_id"`
	}
	b, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(b, &e); resp.Header.Get("request-id") == "" || e.RequestID != resp.Header.Get("request-id") {
		t.Fatalf("the 429 over the bound lacks its request ID; got header %q, body %s", resp.Header.Get("request-id"), b)
	}
}

// TestConnsPerAddressRefusalOverTLS: with TLS on the client listener, a
// connection over the bound is still answered 429 (configs/tollgate.yaml:
// "answered 429 and closed"). The bound is counted before the handshake and
// refuseConn writes the plaintext response into it, so HTTPS clients get
// "server gave HTTP response to HTTPS client" instead.
func TestConnsPerAddressRefusalOverTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	cert := newTestCertificate(t, "tollgate client")
	cert.write(t, certFile, keyFile)
	cfg := gatewayConfig(t, "limits.max_conns_per_ip", "1", "tls.client.cert_file", certFile, "tls.client.key_file", keyFile)
	p := launchGateway(t, t.TempDir(), []string{"TOLLGATE_ADMIN_TOKEN=test-admin-token"}, "--config", cfg)
	first, err := tls.Dial("tcp", p.client, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("the connection within the bound failed: %s", err)
	}
	defer first.Close()
	resp, err := cert.client(t).Get("https://" + p.client + "/v1/models")
	if err != nil {
		t.Fatalf("an HTTPS client over the bound got no answer: %s", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 {
		t.Fatalf("unexpected status over the bound; got %d; want 429", resp.StatusCode)
	}
}
