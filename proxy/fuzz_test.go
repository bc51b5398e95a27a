package proxy

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/ledger"
	"github.com/valyala/fasthttp"
)

// FuzzAdminFields: an admin request body never panics the field readers, and
// a refused field is named in the message.
func FuzzAdminFields(f *testing.F) {
	for _, s := range []string{`{"amount":"25","order_id":"o","kind":"paid"}`, `{"amount":25}`, `{"amount":"1e3"}`,
		`{"rpm":-1,"models":["a"],"expires_at":"2030-01-01T00:00:00Z"}`, `[]`, `null`, `{"a":`, `{"amount":"99999999999999999999"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fs, err := parseFields(body, "amount", "order_id", "kind", "expires_at", "rpm", "tpm", "concurrency", "models", "multiplier")
		if err != nil {
			return
		}
		var s string
		var n int64
		var list []string
		var lim ledger.Limits
		for name, get := range map[string]func() error{
			"amount":     func() error { return fs.amount("amount", &n) },
			"order_id":   func() error { return fs.string("order_id", &s) },
			"expires_at": func() error { return fs.time("expires_at", &n) },
			"models":     func() error { return fs.strings("models", &list) },
			"multiplier": func() error { return fs.multiplier("multiplier", &n) },
			"rpm":        func() error { return fs.limits(&lim) },
		} {
			if err := get(); err != nil && !strings.Contains(err.Error(), name) && name != "rpm" {
				t.Fatalf("the error for %s does not name it: %v", name, err)
			}
		}
	})
}

// FuzzUpstreamBody: arbitrary bytes after an upstream's response header never
// panic or loop the body reader, and it never returns more than it was sent.
func FuzzUpstreamBody(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		br := bufio.NewReader(bytes.NewReader(raw))
		var h fasthttp.ResponseHeader
		if err := h.Read(br); err != nil {
			return
		}
		var b upstreamBody
		b.start(nil, &upConn{br: br, Conn: nopConn{}}, &h)
		b.c.br = br
		out, _ := io.ReadAll(io.LimitReader(&b, int64(len(raw))+1))
		if len(out) > len(raw) {
			t.Fatalf("read %d bytes from %d", len(out), len(raw))
		}
	})
}
