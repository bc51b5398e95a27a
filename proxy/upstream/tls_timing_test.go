package upstream

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// BenchmarkTLSHandshake measures what a new upstream connection costs the
// gateway in TLS: the client side of a TLS 1.3 handshake over loopback
// against an ECDSA P-256 certificate (what api.anthropic.com and Bedrock
// present), full and resumed. The server's work runs in the same process,
// so ns/op is the CPU of both sides (two cores); wall-ns/handshake is the latency.
// Every concurrent stream holds its own connection on HTTP/1.1, so this is
// paid once per connection the pool opens, not per call.
func BenchmarkTLSHandshake(b *testing.B) {
	cert := selfSigned(b)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	for _, resumed := range []bool{false, true} {
		name := "full"
		cfg := &tls.Config{RootCAs: pool, ServerName: "upstream.test", MinVersion: tls.VersionTLS13}
		if resumed {
			name = "resumed"
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
		}
		b.Run(name, func(b *testing.B) {
			var client time.Duration
			for b.Loop() {
				raw, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				c := tls.Client(raw, cfg)
				start := time.Now()
				if err := c.Handshake(); err != nil {
					b.Fatal(err)
				}
				client += time.Since(start)
				c.Close()
			}
			b.ReportMetric(float64(client.Nanoseconds())/float64(b.N), "wall-ns/handshake")
		})
	}
}

func selfSigned(b *testing.B) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "upstream.test"}, DNSNames: []string{"upstream.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
