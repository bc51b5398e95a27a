package proxy_test

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// msgIDPattern matches the simulator's random message IDs; everything else
// in a reply follows from the request.
var msgIDPattern = regexp.MustCompile(`msg_sim_[0-9A-Za-z]+`)

func maskIDs(b []byte) []byte { return msgIDPattern.ReplaceAll(b, []byte("msg_sim_MASKED")) }

// direct sends body straight to the simulator with the platform's key.
func (h *harness) direct(body []byte) (*http.Response, []byte) {
	h.t.Helper()
	return h.do(http.MethodPost, h.simURL+"/v1/messages", body, map[string]string{
		"Content-Type": "application/json", "Anthropic-Version": "2023-06-01", "X-Api-Key": testUpstreamKey})
}

// TestPassThroughBytes: the client receives exactly the bytes the upstream
// sent (streams split into odd-sized chunks, padded JSON, non-streaming
// bodies), with the upstream's content-type and cache-control, compared with
// the same request sent to the simulator directly.
func TestPassThroughBytes(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	f := func(text string, stream bool) {
		t.Helper()
		body := messagesBody(text, 200, stream)
		resp, got := h.post("/v1/messages", a.Key, body, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("unexpected status for %q; got %d; want 200; body %s", text, resp.StatusCode, got)
		}
		// The same request, as the upstream received it, sent directly.
		dresp, want := h.direct(h.lastUpstreamBody())
		if dresp.StatusCode != http.StatusOK {
			t.Fatalf("unexpected direct status for %q; got %d; body %s", text, dresp.StatusCode, want)
		}
		if !bytes.Equal(maskIDs(got), maskIDs(want)) {
			t.Fatalf("unexpected bytes for %q (stream %v);\ngot  %q\nwant %q", text, stream, got, want)
		}
		if bytes.Count(got, []byte("msg_sim_")) != 1 {
			t.Fatalf("unexpected message ids in %q", got)
		}
		for _, hd := range []string{"Content-Type", "Cache-Control"} {
			if g, w := resp.Header.Get(hd), dresp.Header.Get(hd); g != w {
				t.Fatalf("unexpected %s for %q; got %q; want %q", hd, text, g, w)
			}
		}
	}
	f("Split into odd pieces [[sim:split=odd,thinking=5,tool_use,words=30]]", true)
	f("Split into pieces of seven [[sim:split=7,words=12,chunk=2]]", true)
	f("Split and padded [[sim:split=odd,padded,web_search=1,tool_use]]", true)
	f("Padded fixture shape [[sim:padded,thinking=2,tool_use,redacted_thinking]]", true)
	f("Split into single bytes [[sim:split=1,words=3]]", true)
	f("Plain stream with cache [[sim:cache=1h,cache_write=10,cache_read=20]]", true)
	f("Padded JSON body [[sim:padded,thinking=2,tool_use]]", false)
	f("Plain JSON body", false)
}

// TestPassThroughUnbuffered: each event reaches the client when the
// upstream sends it, not at the end of the stream.
func TestPassThroughUnbuffered(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	// message_start, content_block_start, ping, 8 deltas, content_block_stop,
	// message_delta, message_stop: 14 events, 80 ms apart, about 1.04 s.
	body := messagesBody("one two three four five six seven eight [[sim:delay=80ms]]", 100, true)
	start := time.Now()
	conn, r, resp := h.rawStream(a.Key, body)
	defer conn.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("unexpected status; got %d; want 200", resp.StatusCode)
	}
	first := readEvents(t, r, 1)
	firstAt := time.Since(start)
	if first[0].Name != "message_start" {
		t.Fatalf("unexpected first event; got %q; want message_start", first[0].Name)
	}
	rest := readEvents(t, r, 13)
	total := time.Since(start)
	if rest[len(rest)-1].Name != "message_stop" {
		t.Fatalf("unexpected last event; got %v; want message_stop last", eventNames(rest))
	}
	if total < 900*time.Millisecond || firstAt > total/2 {
		t.Fatalf("unexpected timing: the first event after %s, the stream ended after %s; want the first event well before the end", firstAt, total)
	}
	h.waitCall(resp.Header.Get("request-id"))
}

// TestForwardedHeaders: the request reaches the upstream unchanged but for
// the model and the credentials; only the contract's response headers come
// back, with Tollgate's request-id.
func TestForwardedHeaders(t *testing.T) {
	var got struct {
		header http.Header
		query  string
		path   string
	}
	h := newHarness(t)
	a := h.newAccount("10")
	body := []byte(`{"model":"claude-haiku-4-5","max_tokens":50,"metadata":{"user_id":"u-1"},"temperature":0.5,"messages":[{"role":"user","content":"Hello there"}],"stream":true}`)
	req, err := http.NewRequest(http.MethodPost, h.clientURL+"/v1/messages?beta=true", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("cannot build the request: %s", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2099-01-01")
	req.Header.Add("Anthropic-Beta", "beta-one")
	req.Header.Add("Anthropic-Beta", "beta-two,beta-three")
	req.Header.Set("X-Stainless-Lang", "go")
	req.Header.Set("User-Agent", "tollgate-test/1")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Custom-Secret", "do-not-forward")
	req.Header.Set("Authorization", "Bearer "+a.Key)
	req.Header.Set("X-Api-Key", a.Key)

	// Capture what the simulator sees through a second simulator hook: the
	// harness records only bodies, so read the headers from a direct hook.
	seen := make(chan struct{}, 1)
	hook := func(hd http.Header, path, query string) {
		got.header, got.path, got.query = hd, path, query
		seen <- struct{}{}
	}
	h.onRequest(hook)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("request failed: %s", err)
	}
	respBody := readAll(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("unexpected status; got %d; want 200; body %s", resp.StatusCode, respBody)
	}
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatalf("the simulator saw no request")
	}
	up := h.lastUpstreamBody()
	wantBody := bytes.Replace(body, []byte(`"claude-haiku-4-5"`), []byte(`"`+testModelDated+`"`), 1)
	if !bytes.Equal(up, wantBody) {
		t.Fatalf("unexpected upstream body;\ngot  %s\nwant %s", up, wantBody)
	}
	hd := got.header
	for k, want := range map[string]string{
		"Anthropic-Version": "2099-01-01",
		"Anthropic-Beta":    "beta-one, beta-two,beta-three",
		"X-Stainless-Lang":  "go",
		"User-Agent":        "tollgate-test/1",
		"Accept":            "text/event-stream",
		"Content-Type":      "application/json",
		"X-Api-Key":         testUpstreamKey,
	} {
		if v := strings.Join(hd.Values(k), "\n"); v != want {
			t.Fatalf("unexpected upstream header %s; got %q; want %q", k, v, want)
		}
	}
	for _, k := range []string{"Authorization", "X-Custom-Secret"} {
		if v := hd.Get(k); v != "" {
			t.Fatalf("unexpected upstream header %s: %q; want it removed", k, v)
		}
	}
	if got.path != "/v1/messages" || got.query != "beta=true" {
		t.Fatalf("unexpected upstream path; got %q?%q; want /v1/messages?beta=true", got.path, got.query)
	}
	// Response headers: the upstream's organization, rate limits and request
	// ID stay behind.
	for k, simValue := range map[string]string{
		"Anthropic-Organization-Id":              "00000000-0000-4000-8000-00000000051a",
		"Anthropic-Ratelimit-Requests-Limit":     "4000",
		"Anthropic-Ratelimit-Requests-Remaining": "3999",
		"Anthropic-Ratelimit-Tokens-Limit":       "2000000",
	} {
		if v := resp.Header.Get(k); v == simValue {
			t.Fatalf("unexpected upstream header passed to the client: %s: %s", k, v)
		}
	}
	id := resp.Header.Get("request-id")
	if !requestIDPattern.MatchString(id) {
		t.Fatalf("unexpected request-id; got %q; want Tollgate's", id)
	}
	c := h.waitCall(id)
	if !strings.HasPrefix(c.UpstreamRequestID, "req_sim_") {
		t.Fatalf("unexpected upstream_request_id; got %q; want the simulator's", c.UpstreamRequestID)
	}
}
