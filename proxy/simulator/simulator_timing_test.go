package simulator

import (
	"bufio"
	"io"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkReplyStream measures building a 64-word reply and framing it as
// SSE, without the network: the simulator's own cost per streamed call.
func BenchmarkReplyStream(b *testing.B) {
	body := messagesBody("The quick brown fox jumps over the lazy dog [[sim:words=64]]", 1000, true)
	w := bufio.NewWriter(io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		req, err := parseRequest(body, false)
		if err != nil {
			b.Fatal(err)
		}
		r := buildReply(req, req.model, "msg_bench")
		sw := &streamWriter{w: bodyWriter{w}, f: &sseFramer{}}
		r.events(func(name string, data []byte) bool {
			return sw.writeEvent(name, data) == nil
		})
	}
}

// BenchmarkServeStream measures whole streamed calls over 127.0.0.1 with a
// fasthttp client, the way a gateway benchmark would use the simulator.
func BenchmarkServeStream(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := New(Config{})
	go s.Serve(ln)     //nolint:errcheck
	defer s.Shutdown() //nolint:errcheck
	url := "http://" + ln.Addr().String() + "/v1/messages"
	body := messagesBody("The quick brown fox jumps over the lazy dog", 1000, true)
	c := &fasthttp.Client{}
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		for pb.Next() {
			req.SetRequestURI(url)
			req.Header.SetMethod("POST")
			req.SetBody(body)
			if err := c.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != 200 {
				b.Errorf("unexpected status %d", resp.StatusCode())
				return
			}
		}
	})
}
