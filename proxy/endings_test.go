package proxy_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/proxy"
	"github.com/tollgate/tollgate/proxy/simulator"
)

// Every way a call can end (the outcomes of a call record), each with what the
// client receives, the outcome, the charge and the balance afterwards.

// checkNoUpstreamHeaders fails when the upstream's own headers reached the
// client.
func checkNoUpstreamHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	if v := resp.Header.Get("anthropic-organization-id"); v != "" {
		t.Fatalf("unexpected anthropic-organization-id %q passed to the client", v)
	}
	if v := resp.Header.Get("anthropic-ratelimit-requests-limit"); v == "4000" {
		t.Fatalf("unexpected upstream anthropic-ratelimit-requests-limit %q passed to the client", v)
	}
}

// TestEndingUpstreamErrorStatus: an upstream error status before any byte is
// passed through (a 429 with its retry-after), the hold voided, nothing
// charged, outcome upstream_error.
func TestEndingUpstreamErrorStatus(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	f := func(directive string, stream bool, status int, typ, retryAfter string) {
		t.Helper()
		before := h.balance(a)
		resp, body := h.post("/v1/messages", a.Key, messagesBody("hello [[sim:"+directive+"]]", 100, stream), nil)
		if resp.StatusCode != status {
			t.Fatalf("unexpected status for %s; got %d; want %d; body %s", directive, resp.StatusCode, status, body)
		}
		id := resp.Header.Get("request-id")
		c := h.adminCall(id)
		if c == nil {
			t.Fatalf("no call record for %s (%s)", id, directive)
		}
		h.checkVoided(a, c, "upstream_error", status)
		if len(c.Attempts) != 1 || c.Attempts[0].Status != status || c.Attempts[0].ErrorType != typ {
			t.Fatalf("unexpected attempts for %s; got %+v; want one with status %d and error type %s", directive, c.Attempts, status, typ)
		}
		if after := h.balance(a); after != before {
			t.Fatalf("unexpected balance after %s; got %+v; want %+v", directive, after, before)
		}
		if got := resp.Header.Get("retry-after"); got != retryAfter {
			t.Fatalf("unexpected retry-after for %s; got %q; want %q", directive, got, retryAfter)
		}
		checkNoUpstreamHeaders(t, resp)
		// Last, as it is the check most likely to fail: the body is the
		// upstream's error in the contract's shape, and its request_id is
		// the response's request-id header (Tollgate's, never the
		// upstream's).
		checkError(t, resp, body, status, typ)
	}
	f("status=529", true, 529, "overloaded_error", "")
	f("status=529", false, 529, "overloaded_error", "")
	f("status=500", true, 500, "api_error", "")
	f("status=429,retry_after=7", true, 429, "rate_limit_error", "7")
	f("status=429,retry_after=3", false, 429, "rate_limit_error", "3")
	f("status=400,message=messages: roles must alternate", true, 400, "invalid_request_error", "")
	f("status=404", false, 404, "not_found_error", "")
}

// TestEndingPlatformAccountErrors: upstream errors about the platform's own
// upstream account become exactly 503 overloaded_error "upstream
// unavailable", nothing charged.
func TestEndingPlatformAccountErrors(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	f := func(directive string, stream bool) {
		t.Helper()
		before := h.balance(a)
		resp, body := h.post("/v1/messages", a.Key, messagesBody("hello [[sim:"+directive+"]]", 100, stream), nil)
		msg := checkError(t, resp, body, http.StatusServiceUnavailable, "overloaded_error")
		if msg != "upstream unavailable" {
			t.Fatalf("unexpected message for %s; got %q; want %q", directive, msg, "upstream unavailable")
		}
		if resp.Header.Get("retry-after") != "" {
			t.Fatalf("unexpected retry-after %q for %s", resp.Header.Get("retry-after"), directive)
		}
		if strings.Contains(string(body), "credit") || strings.Contains(string(body), "x-api-key") || strings.Contains(string(body), "req_sim_") {
			t.Fatalf("the upstream's error leaked to the client for %s: %s", directive, body)
		}
		c := h.adminCall(resp.Header.Get("request-id"))
		if c == nil {
			t.Fatalf("no call record for %s", directive)
		}
		h.checkVoided(a, c, "upstream_error", http.StatusServiceUnavailable)
		if after := h.balance(a); after != before {
			t.Fatalf("unexpected balance after %s; got %+v; want %+v", directive, after, before)
		}
	}
	f("status=401", true)
	f("status=401", false)
	f("status=403", true)
	f("status=402", false)
	f("status=400,message=Your credit balance is too low to access the Anthropic API.", true)
	f("status=400,error_type=invalid_request_error,message=Your credit balance is too low to access the Anthropic API.", false)
	f("status=429,retry_after=30,message=You have reached your specified API usage limits (billing).", true)
}

// TestEndingConnectionRefused: an unreachable upstream is 502 api_error,
// nothing charged.
func TestEndingConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen: %s", err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	h := newHarness(t, withUpstreamURL(closed))
	a := h.newAccount("10")
	for _, stream := range []bool{true, false} {
		resp, body := h.post("/v1/messages", a.Key, messagesBody("hello", 100, stream), nil)
		checkError(t, resp, body, http.StatusBadGateway, "api_error")
		c := h.adminCall(resp.Header.Get("request-id"))
		if c == nil {
			t.Fatalf("no call record")
		}
		h.checkVoided(a, c, "upstream_error", http.StatusBadGateway)
	}
	if b := h.balance(a); b.Available != a.TopUps || b.Held != 0 {
		t.Fatalf("unexpected balance; got %+v; want %d available, 0 held", b, a.TopUps)
	}
}

// TestEndingFirstByteTimeout: an upstream that sends no header within the
// first-byte timeout is 504 timeout_error, nothing charged, outcome timeout.
func TestEndingFirstByteTimeout(t *testing.T) {
	h := newHarness(t, withShortTimeouts())
	a := h.newAccount("10")
	for _, stream := range []bool{true, false} {
		start := time.Now()
		resp, body := h.post("/v1/messages", a.Key, messagesBody("hello [[sim:hang=headers]]", 100, stream), nil)
		elapsed := time.Since(start)
		checkError(t, resp, body, http.StatusGatewayTimeout, "timeout_error")
		if elapsed < 900*time.Millisecond || elapsed > 8*time.Second {
			t.Fatalf("unexpected time to the 504; got %s; want about the 1s first-byte timeout", elapsed)
		}
		c := h.adminCall(resp.Header.Get("request-id"))
		if c == nil {
			t.Fatalf("no call record")
		}
		// An upstream silent past a timeout before any byte is a 504,
		// outcome timeout, and charges nothing.
		h.checkVoided(a, c, "timeout", http.StatusGatewayTimeout)
	}
	if b := h.balance(a); b.Available != a.TopUps || b.Held != 0 {
		t.Fatalf("unexpected balance; got %+v; want %d available, 0 held", b, a.TopUps)
	}
}

// streamCall sends a streaming call and returns the response, its events
// and its call record.
func (h *harness) streamCall(a *account, body []byte) (*http.Response, []sseEvent, *callRecord) {
	h.t.Helper()
	resp, got := h.post("/v1/messages", a.Key, body, nil)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("unexpected status; got %d; want 200; body %s", resp.StatusCode, got)
	}
	evs := parseSSE(h.t, got)
	return resp, evs, h.waitCall(resp.Header.Get("request-id"))
}

// countEvents counts the events named name.
func countEvents(evs []sseEvent, name string) int {
	n := 0
	for _, e := range evs {
		if e.Name == name {
			n++
		}
	}
	return n
}

// checkAppendedError checks that a stream ends with Tollgate's own error
// event of type typ, carrying the response's request ID.
func checkAppendedError(t *testing.T, resp *http.Response, evs []sseEvent, typ string) {
	t.Helper()
	if len(evs) == 0 || evs[len(evs)-1].Name != "error" {
		t.Fatalf("unexpected events; got %v; want an error event last", eventNames(evs))
	}
	var e apiError
	if err := json.Unmarshal([]byte(evs[len(evs)-1].Data), &e); err != nil {
		t.Fatalf("cannot decode the error event %q: %s", evs[len(evs)-1].Data, err)
	}
	if e.Type != "error" || e.Error.Type != typ || e.Error.Message == "" {
		t.Fatalf("unexpected error event; got %s; want type %s", evs[len(evs)-1].Data, typ)
	}
	if id := resp.Header.Get("request-id"); e.RequestID == nil || *e.RequestID != id {
		t.Fatalf("unexpected request_id in the appended error; got %v; want %q", e.RequestID, id)
	}
	if countEvents(evs, "message_stop") != 0 {
		t.Fatalf("unexpected message_stop in a stream that failed: %v", eventNames(evs))
	}
}

// TestEndingStreamError: the upstream's event: error mid-stream reaches the
// client after the events before it; the call is charged the usage the
// upstream reported (message_start's, with its output placeholder).
func TestEndingStreamError(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	body := messagesBody("one two three four five [[sim:error_after=2]]", 100, true)
	before := h.balance(a)
	resp, evs, c := h.streamCall(a, body)
	want := []string{"message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "error"}
	if strings.Join(eventNames(evs), ",") != strings.Join(want, ",") {
		t.Fatalf("unexpected events; got %v; want %v", eventNames(evs), want)
	}
	if !strings.Contains(evs[len(evs)-1].Data, `"overloaded_error"`) {
		t.Fatalf("unexpected error event %q; want the upstream's overloaded_error", evs[len(evs)-1].Data)
	}
	u := expectedStartUsage(t, body)
	checkRecordUsage(t, c, u)
	price := haikuPrice(u)
	h.checkSettled(a, c, "stream_error", price)
	if c.Status != 200 || c.UsageEstimated {
		t.Fatalf("unexpected record status %d, usage_estimated %v; want 200, false", c.Status, c.UsageEstimated)
	}
	if after := h.balance(a); before.Available-after.Available != price || after.Held != 0 {
		t.Fatalf("unexpected balance change; got %d (held %d); want %d", before.Available-after.Available, after.Held, price)
	}
	checkNoUpstreamHeaders(t, resp)
}

// TestEndingIdleTimeout: an upstream silent past the idle timeout gets the
// stream ended with an appended timeout_error, outcome timeout, charged what
// it reported plus an estimate of what it streamed since (usage_estimated).
func TestEndingIdleTimeout(t *testing.T) {
	h := newHarness(t, withShortTimeouts())
	a := h.newAccount("10")
	body := messagesBody("one two three four five [[sim:hang_after=2]]", 100, true)
	before := h.balance(a)
	start := time.Now()
	resp, evs, c := h.streamCall(a, body)
	if d := time.Since(start); d < 900*time.Millisecond || d > 8*time.Second {
		t.Fatalf("unexpected stream duration %s; want about the 1s idle timeout", d)
	}
	if n := countEvents(evs, "content_block_delta"); n != 2 || evs[0].Name != "message_start" {
		t.Fatalf("unexpected events before the timeout; got %v; want message_start ... 2 deltas", eventNames(evs))
	}
	checkAppendedError(t, resp, evs, "timeout_error")
	u := timeoutUsage(t, body, evs, 100)
	checkRecordUsage(t, c, u)
	price := haikuPrice(u)
	h.checkSettled(a, c, "timeout", price)
	if !c.UsageEstimated || u.OutputTokens <= 1 {
		t.Fatalf("unexpected timeout charge: output %d, usage_estimated %v; want more than the placeholder, estimated", u.OutputTokens, c.UsageEstimated)
	}
	if after := h.balance(a); before.Available-after.Available != price || after.Held != 0 {
		t.Fatalf("unexpected balance change; got %d (held %d); want %d", before.Available-after.Available, after.Held, price)
	}
}

// TestEndingTruncated: an upstream connection cut mid-stream ends the
// client's stream with an appended api_error; outcome stream_error.
func TestEndingTruncated(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	body := messagesBody("one two three four five [[sim:truncate_after=2]]", 100, true)
	before := h.balance(a)
	resp, evs, c := h.streamCall(a, body)
	if n := countEvents(evs, "content_block_delta"); n != 2 {
		t.Fatalf("unexpected events before the cut; got %v; want 2 deltas", eventNames(evs))
	}
	checkAppendedError(t, resp, evs, "api_error")
	if c.Outcome != "stream_error" || c.Status != 200 {
		t.Fatalf("unexpected outcome/status; got %q/%d; want stream_error/200", c.Outcome, c.Status)
	}
	// The input is what message_start reported; the output is at least the
	// placeholder reported, and the charge is the price of the recorded
	// usage (the gateway may estimate the output from the bytes seen).
	start := expectedStartUsage(t, body)
	if c.InputTokens != start.InputTokens || c.OutputTokens < start.OutputTokens {
		t.Fatalf("unexpected recorded usage; got input %d output %d; want input %d, output >= %d", c.InputTokens, c.OutputTokens, start.InputTokens, start.OutputTokens)
	}
	u := start
	u.OutputTokens = c.OutputTokens
	price := haikuPrice(u)
	h.checkSettled(a, c, "stream_error", price)
	if after := h.balance(a); before.Available-after.Available != price || after.Held != 0 {
		t.Fatalf("unexpected balance change; got %d (held %d); want %d", before.Available-after.Available, after.Held, price)
	}
	t.Logf("truncated after 2 of 5 words: charged output %d tokens (estimated %v); the full reply would have been %d",
		c.OutputTokens, c.UsageEstimated, expectedUsage(t, body).OutputTokens)

	// Whatever the estimate, no call produces more output than its
	// max_tokens: charging more bills tokens that cannot exist (and can
	// exceed the hold).
	body = messagesBody("one two three four five [[sim:truncate_after=1]]", 4, true)
	_, _, c = h.streamCall(a, body)
	if c.Outcome != "stream_error" || c.OutputTokens > 4 {
		t.Fatalf("unexpected truncated call with max_tokens 4; got outcome %q, output_tokens %d (estimated %v); want stream_error, at most 4",
			c.Outcome, c.OutputTokens, c.UsageEstimated)
	}
}

// TestEndingGarbage: undecodable upstream bytes. A stream ends with an
// appended api_error and charges nothing (no usage was reported); a JSON
// reply that is not a message charges nothing either.
func TestEndingGarbage(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	resp, evsRaw := h.post("/v1/messages", a.Key, messagesBody("hello [[sim:garbage]]", 100, true), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("unexpected status; got %d; want 200 (the stream had started)", resp.StatusCode)
	}
	// The garbage itself is passed on as it came; what Tollgate appends
	// must be a well-formed error event at the very end.
	tail := "\n\nevent: error\ndata: "
	i := strings.LastIndex(string(evsRaw), tail)
	if i < 0 || !strings.HasSuffix(string(evsRaw), "}\n\n") {
		t.Fatalf("unexpected body; got %q; want it to end with an appended error event", evsRaw)
	}
	checkAppendedError(t, resp, parseSSE(t, evsRaw[i+2:]), "api_error")
	c := h.waitCall(resp.Header.Get("request-id"))
	if c.Outcome != "stream_error" || mustAmount(t, c.Charged) != 0 {
		t.Fatalf("unexpected outcome/charge; got %q/%s; want stream_error/0", c.Outcome, c.Charged)
	}

	// garbage_after: events, then garbage, then Tollgate's error; charged
	// what was reported before.
	body := messagesBody("one two three four [[sim:garbage_after=2]]", 100, true)
	resp, raw := h.post("/v1/messages", a.Key, body, nil)
	i = strings.LastIndex(string(raw), tail)
	if resp.StatusCode != http.StatusOK || i < 0 {
		t.Fatalf("unexpected reply; got %d %q; want 200 ending with an error event", resp.StatusCode, raw)
	}
	checkAppendedError(t, resp, parseSSE(t, raw[i+2:]), "api_error")
	c = h.waitCall(resp.Header.Get("request-id"))
	start := expectedStartUsage(t, body)
	if c.Outcome != "stream_error" || c.InputTokens != start.InputTokens {
		t.Fatalf("unexpected record; got outcome %q input %d; want stream_error, %d", c.Outcome, c.InputTokens, start.InputTokens)
	}

	// Non-streaming garbage: nothing to charge.
	before := h.balance(a)
	resp, _ = h.post("/v1/messages", a.Key, messagesBody("hello [[sim:garbage]]", 100, false), nil)
	c = h.waitCall(resp.Header.Get("request-id"))
	if c.Outcome == "ok" || mustAmount(t, c.Charged) != 0 {
		t.Fatalf("unexpected record for a garbage JSON reply; got outcome %q charged %s; want not ok, 0", c.Outcome, c.Charged)
	}
	if after := h.balance(a); after != before {
		t.Fatalf("unexpected balance; got %+v; want %+v", after, before)
	}
}

// TestEndingJSONError200: a 200 whose body is an error charges nothing,
// outcome upstream_error.
func TestEndingJSONError200(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	for _, stream := range []bool{false, true} {
		before := h.balance(a)
		resp, body := h.post("/v1/messages", a.Key, messagesBody("hello [[sim:json_error_200]]", 100, stream), nil)
		if !strings.Contains(string(body), `"overloaded_error"`) {
			t.Fatalf("unexpected body; got %s; want the upstream's overloaded_error", body)
		}
		c := h.waitCall(resp.Header.Get("request-id"))
		h.checkVoided(a, c, "upstream_error", resp.StatusCode)
		if after := h.balance(a); after != before {
			t.Fatalf("unexpected balance; got %+v; want %+v", after, before)
		}
		if resp.StatusCode != http.StatusOK {
			checkError(t, resp, body, resp.StatusCode, "overloaded_error")
		}
	}
}

// disconnectBody streams 30 words 40 ms apart (about 1.4 s).
var disconnectBody = messagesBody("alpha beta gamma delta epsilon zeta eta theta [[sim:delay=40ms,words=30]]", 100, true)

// disconnect reads a few events of a slow stream and closes the connection;
// it returns the request ID.
func (h *harness) disconnect(a *account) string {
	h.t.Helper()
	conn, r, resp := h.rawStream(a.Key, disconnectBody)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("unexpected status; got %d; want 200", resp.StatusCode)
	}
	evs := readEvents(h.t, r, 5)
	if evs[0].Name != "message_start" || evs[4].Name != "content_block_delta" {
		h.t.Fatalf("unexpected first events %v", eventNames(evs))
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // reset, so the gateway's next write fails at once
	}
	conn.Close()
	return resp.Header.Get("request-id")
}

// TestEndingClientDisconnectDrain: a client that leaves mid-stream is
// charged exactly the full usage, read by draining the upstream.
func TestEndingClientDisconnectDrain(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	completed := h.sim.Stats().Completed
	id := h.disconnect(a)
	c := h.waitCall(id)
	u := expectedUsage(t, disconnectBody)
	checkRecordUsage(t, c, u)
	price := haikuPrice(u)
	h.checkSettled(a, c, "client_disconnected", price)
	if c.UsageEstimated {
		t.Fatalf("unexpected usage_estimated true for a drained call")
	}
	if got := h.sim.Stats().Completed - completed; got != 1 {
		t.Fatalf("unexpected upstream streams completed; got %d; want 1 (drained to the end)", got)
	}
	if b := h.balance(a); b.Available != a.TopUps-price || b.Held != 0 {
		t.Fatalf("unexpected balance; got %+v; want %d available, 0 held", b, a.TopUps-price)
	}
}

// TestEndingClientDisconnectAbort: with the abort policy the upstream is cut
// off and the output estimated from the bytes seen.
func TestEndingClientDisconnectAbort(t *testing.T) {
	h := newHarness(t, withConfig(func(c *proxy.Config) { c.DisconnectPolicy = proxy.PolicyAbort }))
	a := h.newAccount("10")
	id := h.disconnect(a)
	c := h.waitCall(id)
	if c.Outcome != "client_disconnected" || !c.UsageEstimated {
		t.Fatalf("unexpected outcome/usage_estimated; got %q/%v; want client_disconnected/true", c.Outcome, c.UsageEstimated)
	}
	full := expectedUsage(t, disconnectBody)
	start := expectedStartUsage(t, disconnectBody)
	if c.InputTokens != start.InputTokens || c.OutputTokens <= start.OutputTokens {
		t.Fatalf("unexpected usage; got input %d output %d; want input %d and an estimated output above %d",
			c.InputTokens, c.OutputTokens, start.InputTokens, start.OutputTokens)
	}
	u := start
	u.OutputTokens = c.OutputTokens
	h.checkSettled(a, c, "client_disconnected", haikuPrice(u))
	t.Logf("aborted after 2 of %d words: estimated output %d", full.OutputTokens, c.OutputTokens)
	// The upstream was really cut off: it sees its client go.
	deadline := time.Now().Add(5 * time.Second)
	for h.sim.Stats().ClientGone == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the upstream stream was not aborted: %+v", h.sim.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEndingTotalTimeout: a stream that runs past the total timeout is cut
// off with an appended timeout_error, outcome timeout, charged what the
// upstream reported plus the output streamed since (once charged only the
// placeholder: a call running past the total timeout got its output free).
func TestEndingTotalTimeout(t *testing.T) {
	h := newHarness(t, withConfig(func(c *proxy.Config) { c.TotalTimeout = time.Second }))
	a := h.newAccount("10")
	body := messagesBody("one two three four five [[sim:delay=100ms,words=40]]", 100, true)
	start := time.Now()
	resp, evs, c := h.streamCall(a, body)
	if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
		t.Fatalf("unexpected stream duration %s; want about the 1s total timeout", d)
	}
	checkAppendedError(t, resp, evs, "timeout_error")
	u := timeoutUsage(t, body, evs, 100)
	checkRecordUsage(t, c, u)
	h.checkSettled(a, c, "timeout", haikuPrice(u))
	if n := countEvents(evs, "content_block_delta"); !c.UsageEstimated || u.OutputTokens < int64(n) {
		t.Fatalf("unexpected timeout charge: output %d for %d deltas, usage_estimated %v", u.OutputTokens, n, c.UsageEstimated)
	}
}

// TestEndingDrainPoolFull: when every drain worker is busy, a client that
// leaves gets its upstream aborted and its output estimated.
func TestEndingDrainPoolFull(t *testing.T) {
	h := newHarness(t, withConfig(func(c *proxy.Config) { c.DrainWorkers = 1 }))
	a := h.newAccount("10")
	first := h.disconnect(a)
	// The first drain runs for about another second.
	time.Sleep(200 * time.Millisecond)
	second := h.disconnect(a)
	c2 := h.waitCall(second)
	if c2.Outcome != "client_disconnected" || !c2.UsageEstimated {
		t.Fatalf("unexpected record with the drain pool full; got %q, usage_estimated %v; want client_disconnected, true", c2.Outcome, c2.UsageEstimated)
	}
	c1 := h.waitCall(first)
	u := expectedUsage(t, disconnectBody)
	checkRecordUsage(t, c1, u)
	if c1.Outcome != "client_disconnected" || c1.UsageEstimated {
		t.Fatalf("unexpected drained record; got %q, usage_estimated %v; want client_disconnected, false", c1.Outcome, c1.UsageEstimated)
	}
	h.checkSettled(a, c1, "client_disconnected", haikuPrice(u))
}

// TestCallRecordTimes: ttfb_ms is the time to the first byte of the reply,
// duration_ms the whole call's, so ttfb_ms <= duration_ms.
func TestCallRecordTimes(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	// 300 ms before the headers, then 13 pauses of 50 ms.
	_, _, c := h.streamCall(a, messagesBody("one two three [[sim:ttfb=300ms,delay=50ms,words=10]]", 50, true))
	if c.TTFBMs < 300 || c.DurationMs < c.TTFBMs+600 {
		t.Fatalf("unexpected times of a slow stream; got ttfb_ms %d, duration_ms %d; want >= 300 and >= ttfb + 650", c.TTFBMs, c.DurationMs)
	}
	// Fast calls: a call that takes less than a millisecond must not show
	// a time to first byte above its duration.
	for i := range 10 {
		for _, stream := range []bool{true, false} {
			resp, _ := h.post("/v1/messages", a.Key, messagesBody("hello", 10, stream), nil)
			c := h.waitCall(resp.Header.Get("request-id"))
			if c.TTFBMs <= 0 || c.TTFBMs > c.DurationMs {
				t.Fatalf("unexpected times of fast call %d (stream %v); got ttfb_ms %d, duration_ms %d; want 0 < ttfb_ms <= duration_ms", i, stream, c.TTFBMs, c.DurationMs)
			}
		}
	}
}

// sendAndLeave sends a Messages request over a raw connection and closes it
// after wait, before any reply; it returns nothing the client could have
// read, so the call is found by its account's records.
func (h *harness) sendAndLeave(a *account, body []byte, wait time.Duration) {
	h.t.Helper()
	conn, err := net.DialTimeout("tcp", h.clientAddr, 5*time.Second)
	if err != nil {
		h.t.Fatalf("cannot dial: %s", err)
	}
	req := "POST /v1/messages HTTP/1.1\r\nHost: " + h.clientAddr + "\r\nContent-Type: application/json\r\nX-Api-Key: " + a.Key +
		"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
	if _, err := conn.Write([]byte(req)); err != nil {
		h.t.Fatalf("cannot send: %s", err)
	}
	time.Sleep(wait)
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

// waitAccountCall waits for the account's only call record.
func (h *harness) waitAccountCall(a *account) *callRecord {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cs := h.accountCalls(a.ID); len(cs) > 0 {
			if len(cs) != 1 {
				h.t.Fatalf("unexpected calls %+v; want one", cs)
			}
			return &cs[0]
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no call record within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEndingClientGoneBeforeHeaders: a streaming client that leaves while
// the upstream has not answered yet is still settled (the hold never stays
// open), at what the upstream did.
func TestEndingClientGoneBeforeHeaders(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	body := messagesBody("one two three four [[sim:ttfb=600ms]]", 100, true)
	h.sendAndLeave(a, body, 100*time.Millisecond)
	c := h.waitAccountCall(a)
	if open := h.led.OpenHolds(); len(open) != 0 {
		t.Fatalf("unexpected open holds: %+v", open)
	}
	u := expectedUsage(t, body)
	if c.Outcome != "client_disconnected" {
		t.Fatalf("unexpected outcome; got %q; want client_disconnected", c.Outcome)
	}
	checkRecordUsage(t, c, u)
	h.checkSettled(a, c, "client_disconnected", haikuPrice(u))
}

// TestEndingClientGoneNonStreaming: a non-streaming client that leaves
// before the reply is charged what the upstream did, outcome
// client_disconnected.
func TestEndingClientGoneNonStreaming(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	// 14 events' worth of 60 ms: the reply comes after about 0.8 s.
	body := messagesBody("one two three four five six seven eight [[sim:delay=60ms]]", 100, false)
	h.sendAndLeave(a, body, 150*time.Millisecond)
	c := h.waitAccountCall(a)
	if open := h.led.OpenHolds(); len(open) != 0 {
		t.Fatalf("unexpected open holds: %+v", open)
	}
	u := expectedUsage(t, body)
	checkRecordUsage(t, c, u)
	h.checkSettled(a, c, "client_disconnected", haikuPrice(u))
}

// TestEndingNonStreamingCutMidBody: a non-streaming reply the upstream cuts
// off mid-body, by closing the connection or by going silent, is outcome
// timeout, charged the request's input estimate plus one output token per
// three bytes received, usage_estimated; the client gets 502 or 504.
func TestEndingNonStreamingCutMidBody(t *testing.T) {
	const received = 300
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 5*received)
	partial := `{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"` + strings.Repeat("x", received-len(`{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"`))
	for _, c := range []struct {
		name   string
		silent bool
		status int
	}{{"closed", false, http.StatusBadGateway}, {"silent", true, http.StatusGatewayTimeout}} {
		t.Run(c.name, func(t *testing.T) {
			url := rawUpstream(t, func(conn net.Conn) {
				conn.Write([]byte(head + partial))
				if c.silent {
					time.Sleep(3 * time.Second)
				}
			})
			h := newHarness(t, withUpstreamURL(url), withShortTimeouts())
			a := h.newAccount("10")
			resp, body := h.post("/v1/messages", a.Key, messagesBody("hello", 1000, false), nil)
			if resp.StatusCode != c.status {
				t.Fatalf("unexpected status; got %d; want %d; body %.300s", resp.StatusCode, c.status, body)
			}
			rec := h.waitCall(resp.Header.Get("request-id"))
			if rec.OutputTokens != received/3 || rec.InputTokens <= 0 || !rec.UsageEstimated {
				t.Fatalf("unexpected estimate: input %d, output %d (want %d), estimated %v", rec.InputTokens, rec.OutputTokens, received/3, rec.UsageEstimated)
			}
			h.checkSettled(a, rec, "timeout", haikuPrice(simulator.Usage{InputTokens: rec.InputTokens, OutputTokens: rec.OutputTokens}))
		})
	}
}
