package proxy

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// clientIP is the client's address: the peer's, or, when the peer is a
// trusted proxy, the rightmost X-Forwarded-For address that is not one.
// Every X-Forwarded-For line counts, the last one's addresses the
// rightmost: a proxy that adds a line of its own (rather than appending to
// the client's) is read as one that appends.
func clientIP(ctx *fasthttp.RequestCtx, trusted []netip.Prefix) netip.Addr {
	peer, _ := netip.AddrFromSlice(ctx.RemoteIP())
	peer = peer.Unmap()
	if len(trusted) == 0 || !isTrusted(peer, trusted) {
		return peer
	}
	lines := ctx.Request.Header.PeekAll("X-Forwarded-For")
	for l := len(lines) - 1; l >= 0; l-- {
		a, found, ok := rightmostUntrusted(lines[l], trusted)
		switch {
		case !ok:
			return peer
		case found:
			return a
		}
	}
	return peer
}

// rightmostUntrusted reads one X-Forwarded-For line right to left: the
// first address not trusted (found), or none; ok is false on a part that
// is not an address.
func rightmostUntrusted(xff []byte, trusted []netip.Prefix) (a netip.Addr, found, ok bool) {
	for len(xff) > 0 {
		i := bytes.LastIndexByte(xff, ',')
		part := bytes.TrimSpace(xff[i+1:])
		xff = xff[:max(i, 0)]
		a, err := netip.ParseAddr(b2s(part))
		if err != nil {
			return a, false, false
		}
		if a = a.Unmap(); !isTrusted(a, trusted) {
			return a, true, true
		}
		if i < 0 {
			break
		}
	}
	return netip.Addr{}, false, true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
