package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func startTestUpstream(t *testing.T, cfg UpstreamConfig) *Upstream {
	t.Helper()
	up, err := StartUpstream(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := up.Close(); err != nil {
			t.Errorf("cannot close the upstream: %s", err)
		}
	})
	return up
}

// checkConsistent checks the invariants of any finished result.
func checkConsistent(t *testing.T, r *LoadResult) {
	t.Helper()
	var errs int64
	for _, v := range r.Errors {
		errs += v
	}
	if errs != r.ErrorCount {
		t.Fatalf("error count %d is not the sum of %v", r.ErrorCount, r.Errors)
	}
	if r.OK+r.Disconnected+r.ErrorCount-r.Errors[ErrKindNotStarted] != r.Calls {
		t.Fatalf("ok %d + disconnected %d + errors %d (not started %d) != calls %d", r.OK, r.Disconnected, r.ErrorCount, r.Errors[ErrKindNotStarted], r.Calls)
	}
	if r.Calls > 0 && math.Abs(r.DisconnectedShare-float64(r.Disconnected)/float64(r.Calls)) > 1e-12 {
		t.Fatalf("disconnected share %v is not %d/%d", r.DisconnectedShare, r.Disconnected, r.Calls)
	}
	for _, p := range []Percentiles{r.TTFB, r.Total} {
		if !(p.P50Ms <= p.P90Ms && p.P90Ms <= p.P99Ms && p.P99Ms <= p.P999Ms && p.P999Ms <= p.MaxMs) {
			t.Fatalf("percentiles out of order: %+v", p)
		}
	}
	if r.OK > 0 && (r.TTFB.P50Ms <= 0 || r.TTFB.P50Ms > r.Total.P50Ms*1.001 || r.TTFB.MaxMs > r.Total.MaxMs*1.001) {
		t.Fatalf("time to first byte beyond total time: ttfb %+v total %+v", r.TTFB, r.Total)
	}
	if want := float64(r.OK) / r.ElapsedSec; r.ElapsedSec <= 0 || r.RequestsPerSec < want*0.999 || r.RequestsPerSec > want*1.001 {
		t.Fatalf("requests/s %v is not ok/elapsed = %v", r.RequestsPerSec, want)
	}
}

func TestRunLoadClosedLoop(t *testing.T) {
	up := startTestUpstream(t, UpstreamConfig{Deltas: 5, DeltaBytes: 8})
	r, err := RunLoad(context.Background(), LoadConfig{URL: up.URL(), Concurrency: 8, Requests: 300, Duration: 30 * time.Second, Warmup: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, r)
	if r.Mode != "closed" || r.Calls != 300 || r.OK != 300 || r.ErrorCount != 0 {
		t.Fatalf("unexpected result: mode %s calls %d ok %d errors %v", r.Mode, r.Calls, r.OK, r.Errors)
	}
	if r.BytesPerCall != float64(up.ReplyBytes()) {
		t.Fatalf("unexpected bytes per call; got %v; want %d", r.BytesPerCall, up.ReplyBytes())
	}
	if up.Calls() < 300 {
		t.Fatalf("the upstream saw %d calls; want at least 300", up.Calls())
	}
}

func TestRunLoadDurationBound(t *testing.T) {
	up := startTestUpstream(t, UpstreamConfig{Deltas: 2, EventDelay: 5 * time.Millisecond})
	start := time.Now()
	r, err := RunLoad(context.Background(), LoadConfig{URL: up.URL(), Concurrency: 4, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, r)
	// A reply takes 8 events × 5 ms = 40 ms; the last calls may end up to
	// one reply after the duration.
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a 300 ms load took %s", took)
	}
	if r.OK == 0 || r.Total.P50Ms < 40 {
		t.Fatalf("unexpected result: ok %d total p50 %v ms (want >= 40 ms from the event delay)", r.OK, r.Total.P50Ms)
	}
	// The first byte comes after one event delay, the last after all of them.
	if r.TTFB.P50Ms < 5 || r.TTFB.P50Ms > r.Total.P50Ms/2 {
		t.Fatalf("unexpected time to first byte %v ms against total %v ms", r.TTFB.P50Ms, r.Total.P50Ms)
	}
}

// TestRunLoadOpenLoopRate checks that open-loop mode starts the planned
// number of calls at the given rate.
func TestRunLoadOpenLoopRate(t *testing.T) {
	up := startTestUpstream(t, UpstreamConfig{Deltas: 2})
	r, err := RunLoad(context.Background(), LoadConfig{URL: up.URL(), Rate: 200, Concurrency: 16, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, r)
	if r.Mode != "open" || r.Calls+r.Errors[ErrKindNotStarted] != 200 {
		t.Fatalf("unexpected result: mode %s calls %d not started %d; want 200 planned", r.Mode, r.Calls, r.Errors[ErrKindNotStarted])
	}
	// The calls were spread over the second, not sent in a burst.
	if r.ElapsedSec < 0.99 {
		t.Fatalf("200 calls at 200/s took %vs", r.ElapsedSec)
	}
}

// TestRunLoadOpenLoopNoCoordinatedOmission: with one slot and replies
// slower than the arrival interval, calls queue up, and the latency
// counted from the intended start grows with the queue, where a closed
// loop would report only the service time.
func TestRunLoadOpenLoopNoCoordinatedOmission(t *testing.T) {
	up := startTestUpstream(t, UpstreamConfig{Deltas: 1, EventDelay: 5 * time.Millisecond}) // 7 events: 35 ms a reply
	r, err := RunLoad(context.Background(), LoadConfig{URL: up.URL(), Rate: 100, Concurrency: 1, Requests: 20, Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, r)
	if r.OK != 20 {
		t.Fatalf("unexpected ok calls; got %d; want 20 (errors %v)", r.OK, r.Errors)
	}
	// Call k is intended at 10k ms and ends near 35(k+1) ms: the last one
	// waited about 20×35 − 190 = 510 ms; service time alone is 35 ms.
	if r.Total.MaxMs < 300 {
		t.Fatalf("latency hides the queue: max %v ms, want > 300 ms", r.Total.MaxMs)
	}
}

func TestRunLoadErrorKinds(t *testing.T) {
	f := func(handler http.HandlerFunc, timeout time.Duration, wantKind string) {
		t.Helper()
		srv := httptest.NewServer(handler)
		defer srv.Close()
		r, err := RunLoad(context.Background(), LoadConfig{URL: srv.URL, Concurrency: 2, Requests: 4, Timeout: timeout})
		if err != nil {
			t.Fatal(err)
		}
		checkConsistent(t, r)
		if r.OK != 0 || r.Errors[wantKind] != 4 {
			t.Fatalf("unexpected result; got ok %d errors %v; want 4 %s", r.OK, r.Errors, wantKind)
		}
	}
	sse := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, body)
		}
	}
	f(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "{}", http.StatusPaymentRequired) }, 0, "status_402")
	f(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "{}", 529) }, 0, "status_529")
	f(sse("event: message_start\ndata: {}\n\nevent: error\ndata: {\"type\":\"error\"}\n\n"), 0, ErrKindStreamError)
	f(sse("event: message_start\ndata: {}\n\n"), 0, ErrKindTruncated)
	f(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		fmt.Fprint(w, "event: message_start\n")
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}, 0, ErrKindConnection)
	f(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "event: message_start\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}, 100*time.Millisecond, ErrKindTimeout)

	// Nothing listening.
	ln := httptest.NewServer(http.NotFoundHandler())
	url := ln.URL
	ln.Close()
	r, err := RunLoad(context.Background(), LoadConfig{URL: url, Concurrency: 1, Requests: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors[ErrKindConnect] != 2 {
		t.Fatalf("unexpected errors against a closed port; got %v; want connect 2", r.Errors)
	}
}

func TestRunLoadSendsKeysInTurn(t *testing.T) {
	var a, b, other atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("x-api-key") {
		case "key-a":
			a.Add(1)
		case "key-b":
			b.Add(1)
		default:
			other.Add(1)
		}
		if r.Header.Get("anthropic-version") == "" || r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
			other.Add(1)
		}
		fmt.Fprint(w, "event: message_stop\ndata: {}\n\n")
	}))
	defer srv.Close()
	r, err := RunLoad(context.Background(), LoadConfig{URL: srv.URL, Keys: []string{"key-a", "key-b"}, Concurrency: 3, Requests: 100})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK != 100 || a.Load() != 50 || b.Load() != 50 || other.Load() != 0 {
		t.Fatalf("unexpected key use; got ok %d, a %d, b %d, other %d; want 100, 50, 50, 0", r.OK, a.Load(), b.Load(), other.Load())
	}
}

func TestRunLoadRefusesNonLoopback(t *testing.T) {
	for _, url := range []string{"http://192.0.2.1:8080", "http://example.com", "https://127.0.0.1:8080", "http://10.0.0.1"} {
		_, err := RunLoad(context.Background(), LoadConfig{URL: url, Requests: 1})
		if err == nil {
			t.Fatalf("a load against %s was not refused", url)
		}
	}
	_, err := RunLoad(context.Background(), LoadConfig{URL: "http://8.8.8.8:80", Requests: 1})
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("unexpected error; got %v; want ErrNotLoopback", err)
	}
}

func TestCheckLoopbackURL(t *testing.T) {
	f := func(url, wantAddr string, wantErr bool) {
		t.Helper()
		addr, err := CheckLoopbackURL(url)
		if (err != nil) != wantErr || addr != wantAddr {
			t.Fatalf("unexpected result for %q; got %q, %v; want %q, error %v", url, addr, err, wantAddr, wantErr)
		}
	}
	f("http://127.0.0.1:8080", "127.0.0.1:8080", false)
	f("http://127.0.0.1:8080/prefix", "127.0.0.1:8080", false)
	f("http://127.9.9.9:1", "127.9.9.9:1", false)
	f("http://[::1]:8080", "[::1]:8080", false)
	f("http://localhost:8080", "localhost:8080", false)
	f("http://LOCALHOST", "LOCALHOST:80", false)
	f("http://[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.1]:80", false)
	f("http://0.0.0.0:8080", "", true)
	f("http://192.168.1.1:8080", "", true)
	f("http://localhost.example.com:8080", "", true)
	f("https://127.0.0.1:8443", "", true)
	f("http://user:pw@127.0.0.1:80", "", true)
	f("127.0.0.1:8080", "", true)
	f("", "", true)
}

func TestLoadConfigLimits(t *testing.T) {
	f := func(c LoadConfig) {
		t.Helper()
		c.URL = "http://127.0.0.1:1"
		if _, err := RunLoad(context.Background(), c); err == nil {
			t.Fatalf("config %+v was accepted", c)
		}
	}
	f(LoadConfig{Concurrency: MaxConcurrency + 1})
	f(LoadConfig{Concurrency: -1})
	f(LoadConfig{Rate: MaxRate + 1})
	f(LoadConfig{Rate: -1})
	f(LoadConfig{Duration: MaxDuration + 1})
	f(LoadConfig{Requests: -1})
	f(LoadConfig{Timeout: MaxTimeout + 1})
	f(LoadConfig{Warmup: -1})
	f(LoadConfig{DisconnectShare: -0.1})
	f(LoadConfig{DisconnectShare: 1.1})
	f(LoadConfig{DisconnectShare: math.NaN()})
}

func TestDisconnects(t *testing.T) {
	f := func(share float64, n int64, want int64) {
		t.Helper()
		var got int64
		for seq := range n {
			if disconnects(seq, share) {
				got++
			}
		}
		if got != want {
			t.Fatalf("unexpected calls leaving of %d at share %g; got %d; want %d", n, share, got, want)
		}
	}
	f(0, 1000, 0)
	f(1, 1000, 1000)
	f(0.2, 1000, 200)
	f(0.2, 9, 1)
	f(0.25, 100, 25)
	f(1.0/3, 300, 100)
	f(0.001, 999, 0)
	// Evenly spread: at 0.2, every fifth call.
	for seq := range int64(50) {
		if disconnects(seq, 0.2) != (seq%5 == 4) {
			t.Fatalf("unexpected choice for call %d at 0.2", seq)
		}
	}
}

// TestRunLoadDisconnect: a share of the clients leave after the first
// delta; they are counted apart, exactly that share, out of the latencies,
// and the upstream sees its streams cut (its WriteTo fails).
func TestRunLoadDisconnect(t *testing.T) {
	up := startTestUpstream(t, UpstreamConfig{Deltas: 20, EventDelay: time.Millisecond})
	r, err := RunLoad(context.Background(), LoadConfig{URL: up.URL(), Concurrency: 4, Requests: 40, Duration: 30 * time.Second, DisconnectShare: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, r)
	if r.Calls != 40 || r.Disconnected != 10 || r.OK != 30 || r.ErrorCount != 0 || r.DisconnectedShare != 0.25 {
		t.Fatalf("unexpected result; got calls %d disconnected %d ok %d errors %v; want 40, 10, 30, none", r.Calls, r.Disconnected, r.OK, r.Errors)
	}
	// The percentiles hold the complete calls only.
	if r.ttfb.count() != 30 || r.total.count() != 30 {
		t.Fatalf("unexpected latency samples; got %d and %d; want 30 (the complete calls)", r.ttfb.count(), r.total.count())
	}
	if r.BytesPerCall != float64(up.ReplyBytes()) {
		t.Fatalf("unexpected bytes per complete call; got %v; want %d", r.BytesPerCall, up.ReplyBytes())
	}
}

func TestRunLoadProgress(t *testing.T) {
	up := startTestUpstream(t, UpstreamConfig{Deltas: 2, EventDelay: time.Millisecond})
	var snaps []ProgressSnapshot
	r, err := RunLoad(context.Background(), LoadConfig{
		URL: up.URL(), Concurrency: 4, Duration: 200 * time.Millisecond, Label: "direct",
		ProgressInterval: 20 * time.Millisecond,
		// Called from one goroutine at a time; the final call happens after
		// the ticker goroutine has stopped.
		Progress: func(s ProgressSnapshot) { snaps = append(snaps, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) < 3 {
		t.Fatalf("unexpected number of progress snapshots; got %d; want several", len(snaps))
	}
	last := snaps[len(snaps)-1]
	if !last.Final || last.Done != r.Calls || last.Label != "direct" {
		t.Fatalf("unexpected final snapshot %+v for %d calls", last, r.Calls)
	}
	for i := 1; i < len(snaps); i++ {
		if snaps[i].Done < snaps[i-1].Done || snaps[i-1].Final {
			t.Fatalf("snapshots out of order: %+v then %+v", snaps[i-1], snaps[i])
		}
	}
}

func TestRunLoadCancel(t *testing.T) {
	up := startTestUpstream(t, UpstreamConfig{Deltas: 2, EventDelay: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := RunLoad(ctx, LoadConfig{URL: up.URL(), Concurrency: 4, Rate: 100, Duration: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unexpected error; got %v; want the context's", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("a cancelled load took %s to stop", took)
	}
}

// TestDisconnectClosesConnection: a client that leaves closes its
// connection at once, so the server sees it gone mid-stream (the gateway
// then drains), instead of the client lingering until the reply's end.
func TestDisconnectClosesConnection(t *testing.T) {
	gone := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: message_start\ndata: {}\n\nevent: content_block_delta\ndata: {}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			gone <- struct{}{}
		case <-time.After(5 * time.Second):
			fmt.Fprint(w, "event: message_stop\ndata: {}\n\n")
		}
	}))
	defer srv.Close()
	start := time.Now()
	r, err := RunLoad(context.Background(), LoadConfig{URL: srv.URL, Concurrency: 1, Requests: 1, DisconnectShare: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Disconnected != 1 || time.Since(start) > 3*time.Second {
		t.Fatalf("unexpected result; got disconnected %d after %s; want 1 at once", r.Disconnected, time.Since(start))
	}
	select {
	case <-gone:
	case <-time.After(3 * time.Second):
		t.Fatalf("the server did not see the client leave")
	}
}
