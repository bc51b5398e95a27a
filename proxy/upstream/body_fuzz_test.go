package upstream

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/valyala/fasthttp"
)

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
		var b Body
		b.start(nil, &upConn{br: br, Conn: nopConn{}}, &h)
		b.c.br = br
		out, _ := io.ReadAll(io.LimitReader(&b, int64(len(raw))+1))
		if len(out) > len(raw) {
			t.Fatalf("read %d bytes from %d", len(out), len(raw))
		}
	})
}
