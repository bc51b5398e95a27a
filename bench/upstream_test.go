package bench

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/meter"
)

// TestReplyEventsMeter checks that the built-in upstream's reply is one
// the gateway's meter folds to the intended usage: a benchmark whose calls
// were metered wrongly would measure a different code path.
func TestReplyEventsMeter(t *testing.T) {
	f := func(deltas, deltaBytes int) {
		t.Helper()
		events := ReplyEvents(deltas, deltaBytes)
		if len(events) != deltas+6 {
			t.Fatalf("unexpected events; got %d; want %d", len(events), deltas+6)
		}
		var o meter.Observer
		o.Reset(1 << 20)
		for _, ev := range events {
			o.Write(ev)
		}
		r := o.Result()
		if r.End != meter.EndCompleted || r.Usage.OutputTokens != int64(deltas) || r.Usage.InputTokens != upstreamInputTokens || r.MalformedEvents != 0 {
			t.Fatalf("unexpected meter result for %d deltas: end %s, usage %+v, malformed %d", deltas, r.End, r.Usage, r.MalformedEvents)
		}
		if r.ContentBytes[meter.ContentText] != int64(deltas*deltaBytes) {
			t.Fatalf("unexpected text bytes; got %d; want %d", r.ContentBytes[meter.ContentText], deltas*deltaBytes)
		}
		if string(r.Model) != upstreamModel {
			t.Fatalf("unexpected model %q", r.Model)
		}
	}
	f(1, 1)
	f(20, 16)
	f(500, 100)
}

func TestUpstreamServes(t *testing.T) {
	up := startTestUpstream(t, UpstreamConfig{Deltas: 3, DeltaBytes: 4})
	resp, err := http.Post(up.URL()+"/v1/messages", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("unexpected reply: %d %v %v", resp.StatusCode, resp.Header, resp.TransferEncoding)
	}
	if want := bytes.Join(ReplyEvents(3, 4), nil); !bytes.Equal(body, want) || len(body) != up.ReplyBytes() {
		t.Fatalf("unexpected body;\ngot  %q\nwant %q", body, want)
	}
	resp, err = http.Get(up.URL() + "/v1/messages")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unexpected status for GET; got %d; want 404", resp.StatusCode)
	}
	if up.Calls() != 1 {
		t.Fatalf("unexpected calls; got %d; want 1", up.Calls())
	}
}

func TestUpstreamConfigLimits(t *testing.T) {
	f := func(c UpstreamConfig) {
		t.Helper()
		if up, err := StartUpstream(c); err == nil {
			up.Close()
			t.Fatalf("config %+v was accepted", c)
		}
	}
	f(UpstreamConfig{Deltas: MaxDeltas + 1})
	f(UpstreamConfig{Deltas: -1})
	f(UpstreamConfig{DeltaBytes: MaxDeltaBytes + 1})
	f(UpstreamConfig{EventDelay: 2 * time.Second})
	f(UpstreamConfig{EventJitter: -time.Millisecond})
	f(UpstreamConfig{EventJitter: 2 * time.Second})
	f(UpstreamConfig{Addr: "0.0.0.0:0"})
	f(UpstreamConfig{Addr: "192.0.2.1:0"})
}

// TestReplyStreamPause checks the jitter's bounds: every pause within
// [EventDelay, EventDelay+EventJitter], both ends reached, the mean in the
// middle, and the same draws for the same reply number.
func TestReplyStreamPause(t *testing.T) {
	const delay, jitter = 20 * time.Millisecond, 30 * time.Millisecond
	u := &Upstream{cfg: UpstreamConfig{EventDelay: delay, EventJitter: jitter}}
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	var sum time.Duration
	const replies, events = 200, 100
	for n := range uint64(replies) {
		var a, b replyStream
		a.u, b.u = u, u
		a.start(n + 1)
		b.start(n + 1)
		for range events {
			d := a.pause()
			if d < delay || d > delay+jitter {
				t.Fatalf("unexpected pause %s; want within [%s, %s]", d, delay, delay+jitter)
			}
			if e := b.pause(); e != d {
				t.Fatalf("reply %d: two streams with one seed drew %s and %s", n+1, d, e)
			}
			lo, hi, sum = min(lo, d), max(hi, d), sum+d
		}
	}
	if lo > delay+jitter/100 || hi < delay+jitter*99/100 {
		t.Fatalf("pauses do not span the range: %s..%s", lo, hi)
	}
	if mean := sum / (replies * events); mean < 34*time.Millisecond || mean > 36*time.Millisecond {
		t.Fatalf("unexpected mean pause %s; want about 35ms", mean)
	}
	// Without jitter, the pause is the delay itself.
	rs := replyStream{u: &Upstream{cfg: UpstreamConfig{EventDelay: delay}}}
	rs.start(1)
	if d := rs.pause(); d != delay {
		t.Fatalf("unexpected pause without jitter; got %s; want %s", d, delay)
	}
}

// TestUpstreamJitterPacing times one real reply: its events come no
// sooner than the delay allows, and (loosely, on a shared machine) not
// much later than delay plus jitter.
func TestUpstreamJitterPacing(t *testing.T) {
	up := startTestUpstream(t, UpstreamConfig{Deltas: 4, EventDelay: 2 * time.Millisecond, EventJitter: 3 * time.Millisecond})
	start := time.Now()
	resp, err := http.Post(up.URL()+"/v1/messages", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || !bytes.Equal(body, bytes.Join(ReplyEvents(4, DefaultDeltaBytes), nil)) {
		t.Fatalf("unexpected reply: %v\n%q", err, body)
	}
	// 10 events, each after 2 to 5 ms.
	if took < 20*time.Millisecond || took > 2*time.Second {
		t.Fatalf("a reply of 10 events 2–5 ms apart took %s", took)
	}
}
