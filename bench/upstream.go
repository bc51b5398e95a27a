package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// UpstreamConfig shapes the replies of the built-in upstream.
type UpstreamConfig struct {
	// Addr is the listen address. Empty means 127.0.0.1 on a free port.
	// Only loopback addresses are accepted.
	Addr string
	// Deltas is the number of text_delta events in each reply. Zero means
	// 20; at most MaxDeltas.
	Deltas int
	// DeltaBytes is the length in bytes of each delta's text. Zero means
	// 16; at most MaxDeltaBytes.
	DeltaBytes int
	// EventDelay is the pause before each event of a reply, the first
	// included, so a reply takes (Deltas+6)×EventDelay and its first byte
	// comes after one EventDelay. Zero sends the events back to back; at
	// most MaxEventDelay.
	EventDelay time.Duration
	// EventJitter, when positive, makes each pause uniform in
	// [EventDelay, EventDelay+EventJitter] instead, as a real model's
	// tokens arrive unevenly: EventDelay 20ms with EventJitter 30ms and
	// 100 deltas gives streams of about 3.7 s, events 20–50 ms apart. The
	// draws come from a generator per reply seeded by the reply's number,
	// so a run's pacing depends only on the order of its calls. Zero
	// means no jitter; at most MaxEventDelay.
	EventJitter time.Duration
}

// Limits of the built-in upstream: a reply stays far below the gateway's
// event and body limits, and a call never outlives a benchmark segment by
// more than a few seconds.
const (
	MaxDeltas     = 100_000
	MaxDeltaBytes = 64 << 10
	MaxEventDelay = time.Second
	// maxUpstreamRequestBytes bounds a request body the upstream reads.
	maxUpstreamRequestBytes = 1 << 20
)

// Defaults of UpstreamConfig.
const (
	DefaultDeltas     = 20
	DefaultDeltaBytes = 16
)

// upstreamModel is the model ID the replies name: the dated ID the gateway's
// catalogue maps claude-haiku-4-5 to, as the real API answers.
const upstreamModel = "claude-haiku-4-5-20251001"

// upstreamInputTokens is the input usage every reply reports.
const upstreamInputTokens = 12

func (c *UpstreamConfig) withDefaults() (UpstreamConfig, error) {
	out := *c
	if out.Addr == "" {
		out.Addr = "127.0.0.1:0"
	}
	if out.Deltas == 0 {
		out.Deltas = DefaultDeltas
	}
	if out.DeltaBytes == 0 {
		out.DeltaBytes = DefaultDeltaBytes
	}
	switch {
	case out.Deltas < 0 || out.Deltas > MaxDeltas:
		return out, fmt.Errorf("bench: deltas %d out of range 1..%d", out.Deltas, MaxDeltas)
	case out.DeltaBytes < 0 || out.DeltaBytes > MaxDeltaBytes:
		return out, fmt.Errorf("bench: delta bytes %d out of range 1..%d", out.DeltaBytes, MaxDeltaBytes)
	case out.EventDelay < 0 || out.EventDelay > MaxEventDelay:
		return out, fmt.Errorf("bench: event delay %s out of range 0..%s", out.EventDelay, MaxEventDelay)
	case out.EventJitter < 0 || out.EventJitter > MaxEventDelay:
		return out, fmt.Errorf("bench: event jitter %s out of range 0..%s", out.EventJitter, MaxEventDelay)
	}
	if err := checkLoopbackHostPort(out.Addr); err != nil {
		return out, err
	}
	return out, nil
}

// Upstream is a fast Anthropic Messages API stand-in on fasthttp: every
// POST /v1/messages gets the same streamed reply, framed once at start, one
// HTTP chunk per SSE event and flushed after each, as the real API sends.
// It does no parsing and no per-call framing, so a direct run measures the
// client and the loopback, and a gateway run the gateway.
//
// An Upstream is safe for concurrent use; Close stops it.
type Upstream struct {
	cfg    UpstreamConfig
	events [][]byte // the framed SSE events of a reply, shared read-only
	size   int      // total bytes of a reply's events
	ln     net.Listener
	srv    *fasthttp.Server
	calls  atomic.Int64
	done   chan error // the serve goroutine's result
	pool   sync.Pool  // *replyStream
}

// StartUpstream listens on cfg.Addr and serves until Close.
func StartUpstream(cfg UpstreamConfig) (*Upstream, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp4", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for the upstream on %s: %w", c.Addr, err)
	}
	u := &Upstream{cfg: c, events: ReplyEvents(c.Deltas, c.DeltaBytes), ln: ln, done: make(chan error, 1)}
	for _, ev := range u.events {
		u.size += len(ev)
	}
	u.pool.New = func() any { return &replyStream{u: u} }
	u.srv = &fasthttp.Server{
		Handler:               u.handle,
		Name:                  "tollbench-upstream",
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		MaxRequestBodySize:    maxUpstreamRequestBytes,
		ReadTimeout:           time.Minute,
		IdleTimeout:           time.Minute,
		// A reply may pause EventDelay between events; the write deadline
		// covers a whole reply.
		WriteTimeout: time.Minute,
		// Both sides of a comparison may hold MaxConcurrency connections.
		Concurrency: 2 * MaxConcurrency,
	}
	go func() { u.done <- u.srv.Serve(ln) }()
	return u, nil
}

// URL is the upstream's base URL, such as http://127.0.0.1:40123.
func (u *Upstream) URL() string { return "http://" + u.ln.Addr().String() }

// Calls is the number of replies started so far.
func (u *Upstream) Calls() int64 { return u.calls.Load() }

// ReplyBytes is the size of one reply's body, before chunked framing.
func (u *Upstream) ReplyBytes() int { return u.size }

// Config is the configuration the upstream runs with, defaults filled in.
func (u *Upstream) Config() UpstreamConfig { return u.cfg }

// Close stops accepting, waits up to a few seconds for running replies,
// and returns once the serve goroutine has ended.
func (u *Upstream) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := u.srv.ShutdownWithContext(ctx)
	// Shutdown closes only the listeners Serve has registered: right after
	// StartUpstream, Serve may not have run yet, and would then accept
	// forever. Closing the listener here ends it either way.
	u.ln.Close()
	if serr := <-u.done; serr != nil && !errors.Is(serr, net.ErrClosed) {
		return serr
	}
	return err
}

var (
	pathMessages     = []byte("/v1/messages")
	upstreamNotFound = []byte(`{"type":"error","error":{"type":"not_found_error","message":"tollbench upstream serves POST /v1/messages only"}}`)
)

func (u *Upstream) handle(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() || string(ctx.Path()) != string(pathMessages) {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentType("application/json")
		ctx.SetBody(upstreamNotFound)
		return
	}
	n := u.calls.Add(1)
	h := &ctx.Response.Header
	h.SetContentType("text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("request-id", "req_tollbench")
	rs := u.pool.Get().(*replyStream)
	rs.start(uint64(n))
	ctx.SetBodyStream(rs, -1)
}

// jitterSeed is the second half of every reply's generator seed (the
// first is the reply's number): any constant will do.
const jitterSeed = 0x746f6c6c62656e63 // "tollbenc"

// replyStream is one reply's body: the shared events, with a pause before
// each. fasthttp calls WriteTo (each Write one flushed chunk) and Close
// when the reply is done, which returns it to the pool.
type replyStream struct {
	u    *Upstream
	next int      // index of the next event
	rng  rand.PCG // this reply's jitter draws; a value, so no allocation
}

// start readies the stream for reply number n (1 for the first).
func (rs *replyStream) start(n uint64) {
	rs.next = 0
	rs.rng.Seed(n, jitterSeed)
}

// pause is the wait before the next event: EventDelay plus, with jitter, a
// uniform draw in [0, EventJitter] (the modulo's bias, below 2^-30 for
// any jitter up to MaxEventDelay, does not matter here).
func (rs *replyStream) pause() time.Duration {
	d := rs.u.cfg.EventDelay
	if j := rs.u.cfg.EventJitter; j > 0 {
		d += time.Duration(rs.rng.Uint64() % uint64(j+1))
	}
	return d
}

// SupportsBodyWriteTo lets fasthttp frame each event as its own chunk.
func (rs *replyStream) SupportsBodyWriteTo() bool { return true }

// WriteTo writes the remaining events, pausing before each.
func (rs *replyStream) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for rs.next < len(rs.u.events) {
		if d := rs.pause(); d > 0 {
			time.Sleep(d)
		}
		m, err := w.Write(rs.u.events[rs.next])
		n += int64(m)
		rs.next++
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Read is the io.Reader fallback: one event per call.
func (rs *replyStream) Read(p []byte) (int, error) {
	if rs.next >= len(rs.u.events) {
		return 0, io.EOF
	}
	if d := rs.pause(); d > 0 {
		time.Sleep(d)
	}
	ev := rs.u.events[rs.next]
	if len(p) < len(ev) {
		return 0, io.ErrShortBuffer
	}
	rs.next++
	return copy(p, ev), nil
}

// Close returns the stream to its pool.
func (rs *replyStream) Close() error {
	rs.u.pool.Put(rs)
	return nil
}

// ReplyEvents frames a streamed Messages reply with deltas text deltas of
// deltaBytes bytes each, one SSE event per element: message_start,
// content_block_start, ping, the deltas, content_block_stop, message_delta
// (output_tokens = deltas) and message_stop, in the API's compact layout.
func ReplyEvents(deltas, deltaBytes int) [][]byte {
	frame := func(name, data string) []byte {
		return []byte("event: " + name + "\ndata: " + data + "\n\n")
	}
	text := strings.Repeat("x", deltaBytes)
	out := make([][]byte, 0, deltas+6)
	out = append(out, frame("message_start", `{"type":"message_start","message":{"id":"msg_tollbench","type":"message","role":"assistant","model":"`+upstreamModel+
		`","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":`+strconv.Itoa(upstreamInputTokens)+
		`,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`))
	out = append(out, frame("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`))
	out = append(out, frame("ping", `{"type": "ping"}`))
	delta := frame("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`+text+`"}}`)
	for range deltas {
		out = append(out, delta)
	}
	out = append(out, frame("content_block_stop", `{"type":"content_block_stop","index":0}`))
	out = append(out, frame("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":`+strconv.Itoa(deltas)+`}}`))
	out = append(out, frame("message_stop", `{"type":"message_stop"}`))
	return out
}
