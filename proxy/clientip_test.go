package proxy

import (
	"net"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestClientIP: behind a trusted proxy the client is the rightmost
// untrusted X-Forwarded-For address, every line counted (a proxy that adds
// its own line must not leave the client's own line in charge); an
// untrusted peer is the client whatever it says; a malformed list falls
// back to the peer.
func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	at := func(peer string, lines ...string) netip.Addr {
		var req fasthttp.Request
		for _, l := range lines {
			req.Header.Add("X-Forwarded-For", l)
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(peer), Port: 1}, nil)
		return clientIP(&ctx, trusted)
	}
	for _, c := range []struct {
		peer  string
		lines []string
		want  string
	}{
		{"10.0.0.1", []string{"6.6.6.6, 203.0.113.7"}, "203.0.113.7"},
		{"10.0.0.1", []string{"6.6.6.6", "203.0.113.7"}, "203.0.113.7"},
		{"10.0.0.1", []string{"203.0.113.7, 10.0.0.2"}, "203.0.113.7"},
		{"10.0.0.1", []string{"203.0.113.7", "10.0.0.2"}, "203.0.113.7"},
		{"10.0.0.1", []string{"not an address"}, "10.0.0.1"},
		{"10.0.0.1", nil, "10.0.0.1"},
		{"198.51.100.9", []string{"10.0.0.5"}, "198.51.100.9"},
	} {
		if got := at(c.peer, c.lines...); got != netip.MustParseAddr(c.want) {
			t.Errorf("peer %s, X-Forwarded-For %q: got %s; want %s", c.peer, c.lines, got, c.want)
		}
	}
}
