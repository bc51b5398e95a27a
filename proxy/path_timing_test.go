package proxy

import (
	"fmt"
	"io"
	"log"
	"net"
	"testing"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/admin"
	"github.com/tollgate/tollgate/proxy/upstream"
	"github.com/tollgate/tollgate/wal"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// pathFixture is a gateway between a fasthttp client and a fixed-reply
// upstream, all in memory (fasthttputil listeners), for the allocation test
// and the request-path benchmark. The upstream answers every call with the
// same 20-delta stream, and the client reads it whole.
type pathFixture struct {
	g        *Gateway
	gwLn     *fasthttputil.InmemoryListener
	upLn     *fasthttputil.InmemoryListener
	up       *fasthttp.Server
	client   *fasthttp.HostClient
	direct   *fasthttp.HostClient
	key      string
	body     []byte
	closeAll func()
}

// streamFixture is a realistic 20-delta reply.
func streamFixture(deltas int) []byte {
	var b []byte
	b = append(b, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-haiku-4-5-20251001\",\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":27,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n"...)
	b = append(b, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n"...)
	for range deltas {
		b = append(b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hello world \"}}\n\n"...)
	}
	b = append(b, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"...)
	b = append(b, fmt.Sprintf("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":%d}}\n\n", deltas*2)...)
	b = append(b, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
	return b
}

func newPathFixture(tb testing.TB, durable bool) *pathFixture {
	tb.Helper()
	reply := streamFixture(20)
	f := &pathFixture{gwLn: fasthttputil.NewInmemoryListener(), upLn: fasthttputil.NewInmemoryListener()}
	f.up = &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/event-stream; charset=utf-8")
		ctx.SetBody(reply)
	}}
	go f.up.Serve(f.upLn)

	var l *ledger.Ledger
	var wlog *wal.Log
	var err error
	if durable {
		if wlog, err = wal.Open(tb.TempDir(), wal.Config{}); err != nil {
			tb.Fatal(err)
		}
		l, err = ledger.Open(wlog, ledger.Config{})
	} else {
		l, err = ledger.NewMemory(ledger.Config{})
	}
	if err != nil {
		tb.Fatal(err)
	}
	cat, err := meter.LoadCatalogue("../configs/models.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	g, err := New(Config{
		// The upstream connections go to the in-memory upstream.
		Upstreams: []upstream.Config{{Name: "anthropic", BaseURL: "http://upstream.invalid", APIKey: "sk-test",
			Dial: func(string) (net.Conn, error) { return f.upLn.Dial() }}},
		IPDigestKey: []byte("0123456789abcdef0123456789abcdef"),
	}, l, cat, log.New(io.Discard, "", 0))
	if err != nil {
		tb.Fatal(err)
	}
	f.g = g
	go g.ServeClient(f.gwLn)

	if _, err := l.CreateAccount(ledger.AccountSpec{ID: "bench", Limits: ledger.DefaultLimits}); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := l.TopUp(ledger.TopUpRequest{Account: "bench", Amount: 1 << 60, OrderID: "o", Credit: ledger.CreditPaid}); err != nil {
		tb.Fatal(err)
	}
	secret, _, err := admin.MintKey(l, ledger.Key{AccountID: "bench", Limits: ledger.DefaultLimits})
	if err != nil {
		tb.Fatal(err)
	}
	f.key = secret
	f.body = []byte(`{"model":"claude-haiku-4-5","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Say hello"}]}`)
	f.client = &fasthttp.HostClient{Addr: "gateway", Dial: func(string) (net.Conn, error) { return f.gwLn.Dial() }, MaxConns: 1024}
	f.direct = &fasthttp.HostClient{Addr: "upstream", Dial: func(string) (net.Conn, error) { return f.upLn.Dial() }, MaxConns: 1024}
	f.closeAll = func() {
		g.Shutdown(time.Second)
		f.up.Shutdown()
		if wlog != nil {
			wlog.Close()
		}
	}
	tb.Cleanup(f.closeAll)
	return f
}

// call makes one streaming call through hc and checks it completed.
func (f *pathFixture) call(tb testing.TB, hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) {
	req.Header.SetMethod("POST")
	req.SetRequestURI("http://gateway/v1/messages")
	req.Header.Set("x-api-key", f.key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(f.body)
	if err := hc.Do(req, resp); err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode() != 200 || len(resp.Body()) < 1000 {
		tb.Fatalf("unexpected reply: %d %q", resp.StatusCode(), resp.Body())
	}
}

// BenchmarkRequestPath measures whole streamed calls (20 deltas) through the
// gateway with an in-memory ledger and with the sync-mode WAL, next to the
// same client calling the upstream directly.
func BenchmarkRequestPath(b *testing.B) {
	for _, mode := range []string{"direct", "gateway-memory", "gateway-wal-sync"} {
		b.Run(mode, func(b *testing.B) {
			f := newPathFixture(b, mode == "gateway-wal-sync")
			hc := f.client
			if mode == "direct" {
				hc = f.direct
			}
			b.ReportAllocs()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var req fasthttp.Request
				var resp fasthttp.Response
				for pb.Next() {
					f.call(b, hc, &req, &resp)
					req.Reset()
					resp.Reset()
				}
			})
		})
	}
}
