package proxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/proxy"
	"github.com/tollgate/tollgate/proxy/simulator"
	"github.com/tollgate/tollgate/proxy/upstream"
)

// failingUpstream is an upstream that answers every request with status and
// an Anthropic error body of type typ, counting the requests.
type failingUpstream struct {
	url  string
	hits atomic.Int64
}

func startFailingUpstream(t *testing.T, status int, typ string) *failingUpstream {
	t.Helper()
	f := &failingUpstream{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen: %s", err)
	}
	f.url = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("content-type", "application/json")
		w.Header().Set("request-id", "req_failing")
		w.WriteHeader(status)
		io.WriteString(w, `{"type":"error","error":{"type":"`+typ+`","message":"failing on purpose"},"request_id":"req_failing"}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return f
}

// closedURL is an address where nothing listens (connection refused).
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen: %s", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// withFirstUpstream puts up in front of the harness's simulator, which
// becomes the fallback (priority 1).
func withFirstUpstream(up upstream.Config) harnessOption {
	return func(c *proxy.Config) {
		c.Upstreams[0].Priority = 1
		c.Upstreams = append([]upstream.Config{up}, c.Upstreams...)
	}
}

// TestFailover: a call whose first upstream fails before doing work
// (connection refused, 429, 5xx, 529, the platform's account) moves to the
// next, is charged once by the one that served, and lists both attempts.
func TestFailover(t *testing.T) {
	b := startBedrockSim(t, "")
	wrongCreds := bedrockUpstream("first", b.url)
	wrongCreds.BearerToken = "not-a-key"
	cases := []struct {
		name       string
		first      func(t *testing.T) upstream.Config
		status     int
		errorType  string
		bedrockHit bool
	}{
		{"connection refused", func(t *testing.T) upstream.Config {
			return upstream.Config{Name: "first", BaseURL: closedURL(t), APIKey: "k"}
		}, 0, "api_error", false},
		{"429", func(t *testing.T) upstream.Config {
			return upstream.Config{Name: "first", BaseURL: startFailingUpstream(t, 429, "rate_limit_error").url, APIKey: "k"}
		}, 429, "rate_limit_error", false},
		{"500", func(t *testing.T) upstream.Config {
			return upstream.Config{Name: "first", BaseURL: startFailingUpstream(t, 500, "api_error").url, APIKey: "k"}
		}, 500, "api_error", false},
		{"529", func(t *testing.T) upstream.Config {
			return upstream.Config{Name: "first", BaseURL: startFailingUpstream(t, 529, "overloaded_error").url, APIKey: "k"}
		}, 529, "overloaded_error", false},
		{"platform account", func(t *testing.T) upstream.Config {
			return upstream.Config{Name: "first", BaseURL: startFailingUpstream(t, 401, "authentication_error").url, APIKey: "k"}
		}, 401, "authentication_error", false},
		{"bedrock credentials", func(t *testing.T) upstream.Config { return wrongCreds }, 403, "UnrecognizedClientException", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, withFirstUpstream(tc.first(t)))
			a := h.newAccount("10")
			for _, stream := range []bool{true, false} {
				body := messagesBody("Fail over please [[sim:words=7]]", 100, stream)
				before := h.balance(a)
				resp, got := h.post("/v1/messages", a.Key, body, nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("unexpected status %d: %s", resp.StatusCode, got)
				}
				if stream && countEvents(parseSSE(t, got), "message_stop") != 1 {
					t.Fatalf("unexpected stream %s", got)
				}
				c := h.waitCall(resp.Header.Get("request-id"))
				price := haikuPrice(expectedUsage(t, body))
				h.checkSettled(a, c, "ok", price)
				if after := h.balance(a); before.Available-after.Available != price {
					t.Fatalf("unexpected balance change %d; want %d (charged once)", before.Available-after.Available, price)
				}
				if c.Upstream != "anthropic" || len(c.Attempts) != 2 ||
					c.Attempts[0].Upstream != "first" || c.Attempts[0].Status != tc.status || c.Attempts[0].ErrorType != tc.errorType ||
					c.Attempts[1].Upstream != "anthropic" || c.Attempts[1].Status != 200 {
					t.Fatalf("unexpected upstream %q and attempts %+v", c.Upstream, c.Attempts)
				}
				if c.UpstreamRequestID == "req_failing" {
					t.Fatalf("the failed attempt's request ID was recorded")
				}
			}
		})
	}
}

// TestFailoverOnlyForUpstreamFailures: a client error (400) and a timeout
// are answered by the upstream that gave them: the next one is not tried.
func TestFailoverOnlyForUpstreamFailures(t *testing.T) {
	first := startFailingUpstream(t, 400, "invalid_request_error")
	h := newHarness(t, withFirstUpstream(upstream.Config{Name: "first", BaseURL: first.url, APIKey: "k"}))
	a := h.newAccount("10")
	resp, body := h.post("/v1/messages", a.Key, messagesBody("hello", 100, true), nil)
	checkError(t, resp, body, http.StatusBadRequest, "invalid_request_error")
	c := h.waitCall(resp.Header.Get("request-id"))
	h.checkVoided(a, c, "upstream_error", http.StatusBadRequest)
	if len(c.Attempts) != 1 || h.sim.Stats().Messages != 0 {
		t.Fatalf("unexpected attempts %+v (simulator saw %d calls)", c.Attempts, h.sim.Stats().Messages)
	}

	// A first byte that does not come in time: the upstream may be working.
	b2 := startBedrockSim(t, "")
	hang2 := newHarness(t, withShortTimeouts(), withUpstreams(
		upstream.Config{Name: "slow", BaseURL: h.simURL, APIKey: testUpstreamKey},
		func() upstream.Config { u := bedrockUpstream("bedrock", b2.url); u.Priority = 1; return u }(),
	))
	a2 := hang2.newAccount("10")
	resp, body = hang2.post("/v1/messages", a2.Key, messagesBody("hello [[sim:hang=headers]]", 100, true), nil)
	checkError(t, resp, body, http.StatusGatewayTimeout, "timeout_error")
	c = hang2.waitCall(resp.Header.Get("request-id"))
	if len(c.Attempts) != 1 || c.Attempts[0].Upstream != "slow" || b2.sim.Stats().Messages != 0 {
		t.Fatalf("unexpected attempts after a timeout %+v", c.Attempts)
	}
}

// TestFailoverAllFail: when every upstream fails, the client gets the last
// one's error and nothing is charged.
func TestFailoverAllFail(t *testing.T) {
	first := startFailingUpstream(t, 529, "overloaded_error")
	h := newHarness(t, withFirstUpstream(upstream.Config{Name: "first", BaseURL: first.url, APIKey: "k"}))
	a := h.newAccount("10")
	resp, body := h.post("/v1/messages", a.Key, messagesBody("hello [[sim:status=429,retry_after=7]]", 100, true), nil)
	checkError(t, resp, body, http.StatusTooManyRequests, "rate_limit_error")
	if resp.Header.Get("retry-after") != "7" {
		t.Fatalf("unexpected retry-after %q; want the last upstream's", resp.Header.Get("retry-after"))
	}
	c := h.waitCall(resp.Header.Get("request-id"))
	h.checkVoided(a, c, "upstream_error", http.StatusTooManyRequests)
	if len(c.Attempts) != 2 || c.Attempts[0].Status != 529 || c.Attempts[1].Status != 429 || c.Upstream != "anthropic" {
		t.Fatalf("unexpected attempts %+v", c.Attempts)
	}
}

// TestFailoverHealth: consecutive failures take an upstream out for the
// backoff period (calls go straight to the next one, and a metric says so);
// then it is tried again.
func TestFailoverHealth(t *testing.T) {
	first := startFailingUpstream(t, 500, "api_error")
	h := newHarness(t, withFirstUpstream(upstream.Config{Name: "flaky", BaseURL: first.url, APIKey: "k"}),
		withConfig(func(c *proxy.Config) { c.UpstreamMaxFailures, c.UpstreamBackoff = 2, 500*time.Millisecond }))
	a := h.newAccount("10")
	attempts := func() int {
		t.Helper()
		_, _, c := h.streamCall(a, messagesBody("hello", 100, true))
		if c.Outcome != "ok" || c.Upstream != "anthropic" {
			t.Fatalf("unexpected call %+v", c)
		}
		return len(c.Attempts)
	}
	if n := attempts(); n != 2 {
		t.Fatalf("unexpected attempts of the first call: %d", n)
	}
	if n := attempts(); n != 2 {
		t.Fatalf("unexpected attempts of the second call: %d", n)
	}
	// Two failures in a row: out of service.
	for range 3 {
		if n := attempts(); n != 1 {
			t.Fatalf("unexpected attempts while the upstream is out: %d", n)
		}
	}
	if hits := first.hits.Load(); hits != 2 {
		t.Fatalf("unexpected requests to the upstream taken out: %d", hits)
	}
	_, metrics := h.do(http.MethodGet, h.adminURL+"/metrics", nil, map[string]string{"Authorization": "Bearer " + testAdminToken})
	for _, want := range []string{`tollgate_upstream_ejections_total{upstream="flaky"}`, `tollgate_upstream_up{upstream="flaky"} 0`,
		`tollgate_upstream_attempts_total{upstream="flaky",result="failed"}`, `tollgate_upstream_failovers_total`} {
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("no %s in the metrics", want)
		}
	}
	time.Sleep(600 * time.Millisecond)
	if n := attempts(); n != 2 {
		t.Fatalf("unexpected attempts after the backoff: %d", n)
	}
	// Still failing: out again at once.
	if n := attempts(); n != 1 {
		t.Fatalf("unexpected attempts right after a failure past the backoff: %d", n)
	}
}

// TestFailoverSDK: through the official SDK (its retries off), a call whose
// Anthropic upstream is overloaded is served by Bedrock; the SDK sees one
// clean stream, the account is charged once.
func TestFailoverSDK(t *testing.T) {
	first := startFailingUpstream(t, 529, "overloaded_error")
	b := startBedrockSim(t, "")
	second := bedrockUpstream("bedrock", b.url)
	second.Priority = 1
	h := newHarness(t, withUpstreams(upstream.Config{Name: "anthropic", BaseURL: first.url, APIKey: "k"}, second))
	a := h.newAccount("10")
	params := anthropic.MessageNewParams{Model: testModel, MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello from the other side [[sim:chunk=2]]"))}}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var resp *http.Response
	client := h.sdkClient(a.Key)
	stream := client.Messages.NewStreaming(ctx, params, option.WithResponseInto(&resp))
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatalf("cannot accumulate: %s", err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("unexpected stream error: %s", err)
	}
	stream.Close()
	if acc.StopReason != "end_turn" || len(acc.Content) != 1 || acc.Content[0].Text != "Hello from the other side" {
		t.Fatalf("unexpected message %s", acc.RawJSON())
	}
	c := h.waitCall(resp.Header.Get("request-id"))
	price := haikuPrice(simulatorUsage(acc.Usage))
	h.checkSettled(a, c, "ok", price)
	if c.Upstream != "bedrock" || len(c.Attempts) != 2 || c.Attempts[0].Status != 529 || c.Attempts[1].Upstream != "bedrock" {
		t.Fatalf("unexpected upstream %q, attempts %+v", c.Upstream, c.Attempts)
	}
}

// simulatorUsage is the SDK's usage in the simulator's terms, for haikuPrice.
func simulatorUsage(u anthropic.Usage) simulator.Usage {
	return simulator.Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
		CacheCreationInputTokens: u.CacheCreationInputTokens, CacheReadInputTokens: u.CacheReadInputTokens}
}

// TestModelAccessRefusalKeepsUpstreamInService: an upstream that answers 403
// (the platform's account may not use a limited-access model) moves the
// call on but does not count against its health: it once took the upstream
// out for every model after three such calls.
func TestModelAccessRefusalKeepsUpstreamInService(t *testing.T) {
	first := startFailingUpstream(t, 403, "permission_error")
	h := newHarness(t, withFirstUpstream(upstream.Config{Name: "noaccess", BaseURL: first.url, APIKey: "k"}),
		withConfig(func(c *proxy.Config) { c.UpstreamMaxFailures, c.UpstreamBackoff = 2, time.Hour }))
	a := h.newAccount("10")
	for i := range 5 {
		_, _, c := h.streamCall(a, messagesBody("hello", 100, true))
		if c.Outcome != "ok" || c.Upstream != "anthropic" || len(c.Attempts) != 2 {
			t.Fatalf("call %d: unexpected call %+v; want served by the second upstream after trying the first", i, c)
		}
	}
	if hits := first.hits.Load(); hits != 5 {
		t.Fatalf("unexpected requests to the upstream that refused the model: %d; want 5 (it stays in service)", hits)
	}
}

// TestPoolFullIsTheGatewaysOwn: a call that finds every connection of the
// gateway's upstream pool busy for its wait bound gets 503 overloaded_error
// with retry-after, is recorded as rejected and charged nothing, and the
// upstream is not counted as failing: its health is untouched.
func TestPoolFullIsTheGatewaysOwn(t *testing.T) {
	h := newHarness(t, withConfig(func(c *proxy.Config) {
		c.Upstreams[0].MaxConns = 1
		c.ConnectTimeout = 300 * time.Millisecond
		c.UpstreamMaxFailures = 1
	}))
	a := h.newAccount("10")
	slow := make(chan *callRecord, 1)
	go func() {
		_, _, c := h.streamCall(a, messagesBody("one two [[sim:ttfb=1500ms]]", 50, true))
		slow <- c
	}()
	time.Sleep(200 * time.Millisecond) // the slow call holds the one connection
	poolFullBefore := metricValue(t, h.scrapeMetrics(), "tollgate_upstream_pool_full_total")
	resp, b := h.post("/v1/messages", a.Key, messagesBody("hello", 50, false), nil)
	checkError(t, resp, b, 503, "overloaded_error")
	if resp.Header.Get("retry-after") == "" {
		t.Fatalf("a full pool answered without retry-after")
	}
	c := h.adminCall(resp.Header.Get("request-id"))
	if c == nil || c.Outcome != "rejected" || mustAmount(t, c.Charged) != 0 {
		t.Fatalf("unexpected record of a call refused by a full pool: %+v", c)
	}
	slowCall := <-slow
	if after := h.balance(a); after.Held != 0 || after.Available != 10*money.NanosPerCredit-mustAmount(t, slowCall.Charged) {
		t.Fatalf("unexpected balance after the refused call: %+v; the slow call was charged %s", after, slowCall.Charged)
	}
	// One failure would take the upstream out (max_failures 1): the next
	// call goes through, so the full pool was not counted.
	if _, _, c := h.streamCall(a, messagesBody("hello", 50, true)); c.Outcome != "ok" {
		t.Fatalf("unexpected call after a full pool: %+v", c)
	}
	metrics := h.scrapeMetrics()
	if metricValue(t, metrics, "tollgate_upstream_pool_full_total") != poolFullBefore+1 || metricValue(t, metrics, `tollgate_upstream_up{upstream="anthropic"}`) != 1 {
		t.Fatalf("unexpected upstream metrics after a full pool: want one more pool_full and the upstream up")
	}
}
