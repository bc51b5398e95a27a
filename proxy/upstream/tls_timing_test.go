package upstream

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/testcert"
)

// BenchmarkTLSHandshake measures what a new upstream connection costs the
// gateway in TLS: the client side of a TLS 1.3 handshake over loopback
// against an ECDSA P-256 certificate (what api.anthropic.com and Bedrock
// present), full and resumed. The server's work runs in the same process,
// so ns/op is the CPU of both sides (two cores); wall-ns/handshake is the latency.
// Every concurrent stream holds its own connection on HTTP/1.1, so this is
// paid once per connection the pool opens, not per call.
func BenchmarkTLSHandshake(b *testing.B) {
	cert, pool, err := testcert.New("upstream.test")
	if err != nil {
		b.Fatal(err)
	}
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
