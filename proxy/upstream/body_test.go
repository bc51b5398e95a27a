package upstream

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// pipeBody is a chunked Body reading from one end of a pipe; the test
// writes the upstream's bytes into the other.
func pipeBody(t *testing.T) (*Body, net.Conn) {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	var h fasthttp.ResponseHeader
	h.SetStatusCode(200)
	h.SetContentLength(-1) // chunked
	var b Body
	b.start(nil, &upConn{Conn: client, br: bufio.NewReaderSize(client, upReadBufferBytes)}, &h)
	return &b, server
}

// deliver writes s to the pipe from another goroutine (a pipe write waits for
// the reader).
func deliver(c net.Conn, s string) {
	go c.Write([]byte(s))
}

// readOnce is one Read of b, failing the test if it takes more than 5s.
func readOnce(t *testing.T, b *Body, size int) (string, error) {
	t.Helper()
	type result struct {
		s   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		p := make([]byte, size)
		n, err := b.Read(p)
		done <- result{string(p[:n]), err}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-time.After(5 * time.Second):
		t.Fatalf("a Read waited more than 5s")
		return "", nil
	}
}

// TestBodyCoalescesBufferedChunks: one Read returns every chunk that has
// arrived, up to the buffer's size, and the rest of a chunk still arriving;
// it does not wait for the next chunk once it has bytes.
func TestBodyCoalescesBufferedChunks(t *testing.T) {
	b, up := pipeBody(t)
	deliver(up, "5\r\nhello\r\n5\r\nworld\r\n3\r\nfoo\r\n")
	if got, err := readOnce(t, b, 4096); got != "helloworldfoo" || err != nil {
		t.Fatalf("unexpected first Read %q %v; want the three chunks at once", got, err)
	}
	deliver(up, "4\r\nbar!\r\n6\r\nba")
	if got, err := readOnce(t, b, 4096); got != "bar!ba" || err != nil {
		t.Fatalf("unexpected Read %q %v; want a chunk and the start of the next", got, err)
	}
	deliver(up, "z!!!\r\n")
	if got, err := readOnce(t, b, 3); got != "z!!" || err != nil {
		t.Fatalf("unexpected short Read %q %v; want the buffer's size", got, err)
	}
	if got, err := readOnce(t, b, 3); got != "!" || err != nil {
		t.Fatalf("unexpected Read %q %v; want the rest of the chunk", got, err)
	}
	deliver(up, "0\r\n\r\n")
	if got, err := readOnce(t, b, 4096); got != "" || err != io.EOF {
		t.Fatalf("unexpected end %q %v; want io.EOF", got, err)
	}
}

// TestBodyEndsWithBufferedLastChunk: the last chunk arriving with data ends
// the body in the same Read (io.EOF on the next), and a last chunk whose
// trailer has not arrived is left for the next Read.
func TestBodyEndsWithBufferedLastChunk(t *testing.T) {
	b, up := pipeBody(t)
	deliver(up, "3\r\nend\r\n0\r\n\r\n")
	if got, err := readOnce(t, b, 4096); got != "end" || err != nil {
		t.Fatalf("unexpected Read %q %v", got, err)
	}
	if _, err := readOnce(t, b, 4096); err != io.EOF {
		t.Fatalf("unexpected Read after the last chunk: %v; want io.EOF", err)
	}
	b, up = pipeBody(t)
	deliver(up, "3\r\nend\r\n0\r\n")
	if got, err := readOnce(t, b, 4096); got != "end" || err != nil {
		t.Fatalf("unexpected Read %q %v", got, err)
	}
	deliver(up, "\r\n")
	if _, err := readOnce(t, b, 4096); err != io.EOF {
		t.Fatalf("unexpected Read once the trailer arrived: %v; want io.EOF", err)
	}
}

// TestBodyDeadlines: a silent upstream ends a Read in a timeout, by the
// between-reads limit and by the whole-call limit, although the deadline
// is refreshed only now and then.
func TestBodyDeadlines(t *testing.T) {
	for _, c := range []struct {
		name  string
		idle  time.Duration
		total time.Duration
	}{{"between reads", 300 * time.Millisecond, time.Hour}, {"whole call", time.Hour, 300 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			b, up := pipeBody(t)
			b.SetDeadlines(c.idle, time.Now().Add(c.total))
			deliver(up, "2\r\nhi\r\n")
			if got, err := readOnce(t, b, 64); got != "hi" || err != nil {
				t.Fatalf("unexpected Read %q %v", got, err)
			}
			_, err := readOnce(t, b, 64)
			if !IsTimeout(err) {
				t.Fatalf("unexpected Read from a silent upstream: %v; want a timeout", err)
			}
		})
	}
}

// FuzzChunkedBody: any body, cut into any chunks, arriving in any pieces,
// read with any buffer size, reads back exactly.
func FuzzChunkedBody(f *testing.F) {
	f.Add([]byte("hello world"), uint8(3), uint8(5), uint8(4))
	f.Add([]byte("event: message_stop\ndata: {}\n\n"), uint8(1), uint8(1), uint8(1))
	f.Add(bytes.Repeat([]byte("x"), 1000), uint8(200), uint8(7), uint8(64))
	f.Fuzz(func(t *testing.T, data []byte, chunk, piece, buf uint8) {
		var wire bytes.Buffer
		for rest := data; len(rest) > 0; {
			n := min(len(rest), int(chunk)+1)
			fmt.Fprintf(&wire, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		wire.WriteString("0\r\n\r\n")
		var h fasthttp.ResponseHeader
		h.SetStatusCode(200)
		h.SetContentLength(-1)
		var b Body
		src := &pieces{b: wire.Bytes(), n: int(piece) + 1}
		b.start(nil, &upConn{br: bufio.NewReaderSize(src, 16), Conn: nopConn{}}, &h)
		var got []byte
		p := make([]byte, int(buf)+1)
		for range 100_000 {
			n, err := b.Read(p)
			got = append(got, p[:n]...)
			if err == io.EOF {
				if !bytes.Equal(got, data) {
					t.Fatalf("read %q; want %q", got, data)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error after %q: %s", got, err)
			}
		}
		t.Fatalf("no end after 100,000 reads")
	})
}

// pieces returns b at most n bytes per Read, as a network delivers segments.
type pieces struct {
	b []byte
	n int
}

func (r *pieces) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[k:]
	return k, nil
}
