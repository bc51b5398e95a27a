package proxy_test

// The end-to-end harness: the upstream simulator and a gateway on a real
// Pebble WAL, both on 127.0.0.1, driven through their real HTTP APIs (the
// client API, the admin API and the simulator's Messages API).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy"
	"github.com/tollgate/tollgate/proxy/admin"
	"github.com/tollgate/tollgate/proxy/simulator"
	"github.com/tollgate/tollgate/proxy/upstream"
	"github.com/tollgate/tollgate/wal"
)

const (
	testAdminToken  = "tga-test-admin-token"
	testUpstreamKey = "sk-upstream-test"
	testModel       = "claude-haiku-4-5"
	// testModelDated is what the simulator (like the API) answers testModel with.
	testModelDated = "claude-haiku-4-5-20251001"
	// requestTimeout bounds every HTTP exchange a test makes.
	requestTimeout = 20 * time.Second
)

var testIPDigestKey = []byte("0123456789abcdef0123456789abcdef")

// harness is one simulator and one gateway over a fresh data directory.
type harness struct {
	t        *testing.T
	sim      *simulator.Simulator
	simURL   string
	g        *proxy.Gateway
	adminAPI *admin.Server
	led      *ledger.Ledger
	wlog     *wal.Log
	cfg      proxy.Config

	clientURL, adminURL   string
	clientAddr, adminAddr string

	// client is the raw HTTP client of the tests; its idle connections are
	// closed before the gateway shuts down.
	client *http.Client

	logs lockedBuffer

	shutOnce sync.Once
	shutErr  error

	// orders numbers the top-ups' order IDs.
	orders atomic.Int64

	mu       sync.Mutex
	lastBody []byte // the last Messages body the simulator received
	hook     func(header http.Header, path, query string)
}

// harnessOption adjusts the gateway's configuration before it starts.
type harnessOption func(*proxy.Config)

func withConfig(f func(*proxy.Config)) harnessOption { return harnessOption(f) }

// withUpstreamURL points the gateway's only upstream at url instead of the
// simulator.
func withUpstreamURL(url string) harnessOption {
	return func(c *proxy.Config) { c.Upstreams[0].BaseURL = url }
}

// withShortTimeouts makes the upstream timeouts short enough for fault tests.
func withShortTimeouts() harnessOption {
	return func(c *proxy.Config) {
		c.FirstByteTimeout = time.Second
		c.FirstByteTimeoutNonStreaming = time.Second
		c.IdleTimeout = time.Second
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newHarness starts a simulator and a gateway on 127.0.0.1 and stops both,
// in order, at the end of the test.
func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t}

	// The upstream simulator.
	h.sim = simulator.New(simulator.Config{
		APIKey:  testUpstreamKey,
		MaxHang: 15 * time.Second,
		OnRequest: func(ri simulator.RequestInfo) {
			h.mu.Lock()
			if ri.Path == "/v1/messages" {
				h.lastBody = ri.Body
			}
			hook := h.hook
			h.mu.Unlock()
			if hook != nil {
				hook(ri.Header, ri.Path, ri.Query)
			}
		},
	})
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen for the simulator: %s", err)
	}
	h.simURL = "http://" + simLn.Addr().String()
	simErr := make(chan error, 1)
	go func() { simErr <- h.sim.Serve(simLn) }()

	// The WAL, the ledger and the catalogue.
	dir := t.TempDir()
	wlog, err := wal.Open(dir, wal.Config{})
	if err != nil {
		t.Fatalf("cannot open the wal: %s", err)
	}
	h.wlog = wlog
	h.led, err = ledger.Open(wlog, ledger.Config{Shards: 8})
	if err != nil {
		t.Fatalf("cannot open the ledger: %s", err)
	}
	cat, err := meter.LoadCatalogue("../configs/models.yaml")
	if err != nil {
		t.Fatalf("cannot load the catalogue: %s", err)
	}

	// The gateway.
	h.cfg = proxy.Config{
		Upstreams:   []upstream.Config{{Name: "anthropic", BaseURL: h.simURL, APIKey: testUpstreamKey}},
		IPDigestKey: testIPDigestKey,
	}
	for _, o := range opts {
		o(&h.cfg)
	}
	logger := log.New(&h.logs, "tollgate: ", log.Lmicroseconds)
	h.g, err = proxy.New(h.cfg, h.led, cat, logger)
	if err != nil {
		t.Fatalf("cannot create the gateway: %s", err)
	}
	clientLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen for the client API: %s", err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("cannot listen for the admin API: %s", err)
	}
	h.clientAddr, h.adminAddr = clientLn.Addr().String(), adminLn.Addr().String()
	h.clientURL, h.adminURL = "http://"+h.clientAddr, "http://"+h.adminAddr
	clientErr, adminErr := make(chan error, 1), make(chan error, 1)
	go func() { clientErr <- h.g.ServeClient(clientLn) }()
	h.adminAPI = newAdminServer(t, h.led, h.g, logger)
	go func() { adminErr <- h.adminAPI.Serve(adminLn) }()

	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	h.client = &http.Client{Transport: tr, Timeout: requestTimeout}

	t.Cleanup(func() {
		tr.CloseIdleConnections()
		if err := h.shutdown(5 * time.Second); err != nil {
			t.Errorf("unexpected gateway Shutdown error: %s", err)
		}
		for _, c := range []chan error{clientErr, adminErr} {
			select {
			case err := <-c:
				if err != nil {
					t.Errorf("unexpected Serve error: %s", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("a gateway server did not stop within 5s of Shutdown")
			}
		}
		if _, err := h.led.Check(); err != nil {
			t.Errorf("ledger invariants broken at the end of the test: %s", err)
		}
		if err := wlog.Close(); err != nil {
			t.Errorf("unexpected wal Close error: %s", err)
		}
		if err := h.sim.Shutdown(); err != nil {
			t.Errorf("unexpected simulator Shutdown error: %s", err)
		}
		if err := <-simErr; err != nil {
			t.Errorf("unexpected simulator Serve error: %s", err)
		}
		if logs := h.logs.String(); t.Failed() && logs != "" {
			t.Logf("gateway log:\n%s", logs)
		}
	})
	return h
}

// shutdown shuts the gateway down once (a test may do it before the
// cleanup does).
func (h *harness) shutdown(grace time.Duration) error {
	h.shutOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		h.shutErr = errors.Join(h.g.Shutdown(grace), h.adminAPI.Shutdown(ctx))
	})
	return h.shutErr
}

// use makes the harness's helpers report to t (a subtest) until the
// returned function restores the previous test.
func (h *harness) use(t *testing.T) func() {
	prev := h.t
	h.t = t
	return func() { h.t = prev }
}

// lastUpstreamBody returns the body of the last Messages request the
// simulator received.
func (h *harness) lastUpstreamBody() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastBody
}

// onRequest makes the simulator call hook with every request it receives.
func (h *harness) onRequest(hook func(header http.Header, path, query string)) {
	h.mu.Lock()
	h.hook = hook
	h.mu.Unlock()
}

// readAll reads and closes a response body.
func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("cannot read the response body: %s", err)
	}
	return b
}

// ---- HTTP helpers ----------------------------------------------------------

// do sends a request and returns the response with its whole body read.
func (h *harness) do(method, url string, body []byte, header map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		h.t.Fatalf("cannot build a request: %s", err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s failed: %s", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("cannot read the response to %s %s: %s", method, url, err)
	}
	return resp, b
}

// admin calls the admin API with the admin token and decodes a JSON answer
// into out (when not nil), failing the test unless the status is want.
func (h *harness) admin(method, path string, body any, want int, out any) {
	h.t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			h.t.Fatalf("cannot encode %v: %s", body, err)
		}
	}
	resp, rb := h.do(method, h.adminURL+path, b, map[string]string{
		"Authorization": "Bearer " + testAdminToken, "Content-Type": "application/json"})
	if resp.StatusCode != want {
		h.t.Fatalf("unexpected status of %s %s; got %d; want %d; body %s", method, path, resp.StatusCode, want, rb)
	}
	if out != nil {
		if err := json.Unmarshal(rb, out); err != nil {
			h.t.Fatalf("cannot decode the answer to %s %s: %s; body %s", method, path, err, rb)
		}
	}
}

// post sends body to the client API's path with the platform key (in
// x-api-key, when key is not empty) and the usual Anthropic headers.
func (h *harness) post(path, key string, body []byte, header map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	hd := map[string]string{"Content-Type": "application/json", "Anthropic-Version": "2023-06-01"}
	if key != "" {
		hd["X-Api-Key"] = key
	}
	for k, v := range header {
		hd[k] = v
	}
	return h.do(http.MethodPost, h.clientURL+path, body, hd)
}

// get calls a client API route with the key.
func (h *harness) get(path, key string) (*http.Response, []byte) {
	h.t.Helper()
	hd := map[string]string{}
	if key != "" {
		hd["X-Api-Key"] = key
	}
	return h.do(http.MethodGet, h.clientURL+path, nil, hd)
}

// ---- accounts, keys and balances -------------------------------------------

// account is a customer account with one platform key.
type account struct {
	ID     string
	KeyID  string
	Key    string
	TopUps int64 // nano-credits topped up through the harness
}

// newAccount creates an account through the admin API, tops it up with
// credits (a decimal string; "" for none) and mints a key.
func (h *harness) newAccount(credits string) *account {
	h.t.Helper()
	var a struct {
		ID        string `json:"id"`
		Available string `json:"available"`
	}
	h.admin(http.MethodPost, "/admin/v1/accounts", map[string]any{}, http.StatusCreated, &a)
	if a.ID == "" || a.Available != "0" {
		h.t.Fatalf("unexpected new account %+v", a)
	}
	acct := &account{ID: a.ID}
	if credits != "" {
		h.topUp(acct, credits)
	}
	acct.KeyID, acct.Key = h.mintKey(acct.ID)
	return acct
}

// topUp credits the account through the admin API.
func (h *harness) topUp(a *account, credits string) {
	h.t.Helper()
	var e struct {
		ID     string `json:"id"`
		Kind   string `json:"kind"`
		Amount string `json:"amount"`
	}
	order := fmt.Sprintf("order-%d", h.orders.Add(1))
	h.admin(http.MethodPost, "/admin/v1/accounts/"+a.ID+"/topups",
		map[string]any{"amount": credits, "order_id": order, "kind": "paid"}, http.StatusCreated, &e)
	want := mustAmount(h.t, credits)
	if e.Kind != "topup" || mustAmount(h.t, e.Amount) != want {
		h.t.Fatalf("unexpected top-up entry %+v; want kind topup, amount %s", e, credits)
	}
	a.TopUps += want
}

// mintKey creates a platform key for the account through the admin API,
// with the given fields (limits and the like) if any.
func (h *harness) mintKey(accountID string, fields ...map[string]any) (id, secret string) {
	h.t.Helper()
	var k struct {
		ID   string `json:"id"`
		Key  string `json:"key"`
		Hint string `json:"hint"`
	}
	req := map[string]any{"name": "test"}
	for _, f := range fields {
		for n, v := range f {
			req[n] = v
		}
	}
	h.admin(http.MethodPost, "/admin/v1/accounts/"+accountID+"/keys", req, http.StatusCreated, &k)
	if !regexp.MustCompile(`^tg-[0-9A-Za-z]{40,}$`).MatchString(k.Key) || k.ID == "" {
		h.t.Fatalf("unexpected new key %+v", k)
	}
	return k.ID, k.Key
}

// balance is GET /v1/balance in nano-credits.
type balance struct {
	Available, Held int64
}

func (h *harness) balance(a *account) balance {
	h.t.Helper()
	resp, b := h.get("/v1/balance", a.Key)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("unexpected status of GET /v1/balance; got %d; want 200; body %s", resp.StatusCode, b)
	}
	if id := resp.Header.Get("request-id"); !requestIDPattern.MatchString(id) {
		h.t.Fatalf("unexpected request-id of GET /v1/balance; got %q; want Tollgate's", id)
	}
	var v struct {
		AccountID string `json:"account_id"`
		Available string `json:"available"`
		Held      string `json:"held"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		h.t.Fatalf("cannot decode the balance %s: %s", b, err)
	}
	if v.AccountID != a.ID {
		h.t.Fatalf("unexpected balance account; got %q; want %q", v.AccountID, a.ID)
	}
	return balance{Available: mustAmount(h.t, v.Available), Held: mustAmount(h.t, v.Held)}
}

func mustAmount(t *testing.T, s string) int64 {
	t.Helper()
	v, err := money.Parse(s)
	if err != nil {
		t.Fatalf("cannot parse amount %q: %s", s, err)
	}
	return v
}

// callRecord is a call record as GET /admin/v1/calls shows it.
type callRecord struct {
	RequestID                  string `json:"request_id"`
	AccountID                  string `json:"account_id"`
	KeyID                      string `json:"key_id"`
	Time                       string `json:"time"`
	Model                      string `json:"model"`
	Status                     int    `json:"status"`
	Outcome                    string `json:"outcome"`
	InputTokens                int64  `json:"input_tokens"`
	OutputTokens               int64  `json:"output_tokens"`
	CacheCreationInputTokens   int64  `json:"cache_creation_input_tokens"`
	CacheCreation5mInputTokens int64  `json:"cache_creation_5m_input_tokens"`
	CacheCreation1hInputTokens int64  `json:"cache_creation_1h_input_tokens"`
	CacheReadInputTokens       int64  `json:"cache_read_input_tokens"`
	WebSearchRequests          int64  `json:"web_search_requests"`
	Held                       string `json:"held"`
	Charged                    string `json:"charged"`
	UsageEstimated             bool   `json:"usage_estimated"`
	SourceIPDigest             string `json:"source_ip_digest"`
	DurationMs                 int64  `json:"duration_ms"`
	TTFBMs                     int64  `json:"ttfb_ms"`
	Front                      string `json:"front"`
	// Admin-only.
	UpstreamCost      string `json:"upstream_cost"`
	Upstream          string `json:"upstream"`
	UpstreamRequestID string `json:"upstream_request_id"`
	Attempts          []struct {
		Upstream  string `json:"upstream"`
		Status    int    `json:"status"`
		ErrorType string `json:"error_type"`
	} `json:"attempts"`
}

type callList struct {
	Data       []callRecord `json:"data"`
	HasMore    bool         `json:"has_more"`
	NextCursor *string      `json:"next_cursor"`
}

// adminCall returns the call record of requestID, or nil when there is none.
func (h *harness) adminCall(requestID string) *callRecord {
	h.t.Helper()
	h.flushLog()
	var l callList
	h.admin(http.MethodGet, "/admin/v1/calls?request_id="+requestID, nil, http.StatusOK, &l)
	if len(l.Data) == 0 {
		return nil
	}
	if len(l.Data) > 1 || l.Data[0].RequestID != requestID {
		h.t.Fatalf("unexpected calls for request %s: %+v", requestID, l.Data)
	}
	return &l.Data[0]
}

// flushLog waits until every record appended so far is committed: the
// records of rejections are not waited for by the gateway.
func (h *harness) flushLog() {
	if err := h.wlog.WaitSynced(h.wlog.LastSeq()); err != nil {
		h.t.Fatalf("cannot flush the wal: %s", err)
	}
}

// waitCall polls for the call record of requestID (settlements after a
// client left happen after the client saw anything) for up to 10 s.
func (h *harness) waitCall(requestID string) *callRecord {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c := h.adminCall(requestID); c != nil {
			return c
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no call record for request %s within 10s", requestID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// accountCalls returns every call record of the account (admin view),
// newest first.
func (h *harness) accountCalls(accountID string) []callRecord {
	h.t.Helper()
	var out []callRecord
	cursor := ""
	for range 100 {
		var l callList
		path := "/admin/v1/calls?limit=1000&account=" + accountID
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		h.admin(http.MethodGet, path, nil, http.StatusOK, &l)
		out = append(out, l.Data...)
		if !l.HasMore {
			return out
		}
		if l.NextCursor == nil {
			h.t.Fatalf("has_more without next_cursor")
		}
		cursor = *l.NextCursor
	}
	h.t.Fatalf("too many pages of calls")
	return nil
}

// entry is a ledger entry as the admin API shows it.
type entry struct {
	ID             string  `json:"id"`
	Kind           string  `json:"kind"`
	Amount         string  `json:"amount"`
	AvailableAfter string  `json:"available_after"`
	RequestID      string  `json:"request_id"`
	Reason         string  `json:"reason"`
	Held           *string `json:"held"`
	Charged        *string `json:"charged"`
}

// entries returns every ledger entry of the account, newest first.
func (h *harness) entries(accountID string) []entry {
	h.t.Helper()
	var out []entry
	cursor := ""
	for range 100 {
		var l struct {
			Data       []entry `json:"data"`
			HasMore    bool    `json:"has_more"`
			NextCursor *string `json:"next_cursor"`
		}
		path := "/admin/v1/accounts/" + accountID + "/entries?limit=1000"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		h.admin(http.MethodGet, path, nil, http.StatusOK, &l)
		out = append(out, l.Data...)
		if !l.HasMore {
			return out
		}
		if l.NextCursor == nil {
			h.t.Fatalf("has_more without next_cursor")
		}
		cursor = *l.NextCursor
	}
	h.t.Fatalf("too many pages of entries")
	return nil
}

// requestEntries returns the hold and the settle or void entry of a call.
func (h *harness) requestEntries(accountID, requestID string) (hold *entry, end *entry, n int) {
	h.t.Helper()
	for _, e := range h.entries(accountID) {
		if e.RequestID != requestID {
			continue
		}
		n++
		switch e.Kind {
		case "hold":
			hold = &e
		case "settle", "void":
			end = &e
		}
	}
	return hold, end, n
}

// ---- bodies, prices and streams --------------------------------------------

// messagesBody is a Messages request with one user message.
func messagesBody(text string, maxTokens int, stream bool) []byte {
	b, err := json.Marshal(map[string]any{
		"model":      testModel,
		"max_tokens": maxTokens,
		"stream":     stream,
		"messages":   []any{map[string]any{"role": "user", "content": text}},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// Claude Haiku 4.5's list prices (configs/models.yaml), in
// nano-credits per million tokens, and web search per search.
const (
	haikuInputPerMTok   = 1_000_000_000 // $1
	haikuOutputPerMTok  = 5_000_000_000 // $5
	haikuWrite5mPerMTok = 1_250_000_000 // $1.25
	haikuWrite1hPerMTok = 2_000_000_000 // $2
	haikuReadPerMTok    = 100_000_000   // $0.10
	webSearchPerSearch  = 10_000_000    // $10 per 1,000
)

// haikuPrice is the price of usage on claude-haiku-4-5 at multiplier 1, in
// nano-credits, rounded up once, computed here from the published rates.
func haikuPrice(u simulator.Usage) int64 {
	h1 := min(u.CacheCreation.Ephemeral1hInputTokens, u.CacheCreationInputTokens)
	m5 := u.CacheCreationInputTokens - h1
	perMillion := u.InputTokens*haikuInputPerMTok + u.OutputTokens*haikuOutputPerMTok +
		m5*haikuWrite5mPerMTok + h1*haikuWrite1hPerMTok + u.CacheReadInputTokens*haikuReadPerMTok +
		u.ServerToolUse.WebSearchRequests*webSearchPerSearch*1_000_000
	return (perMillion + 999_999) / 1_000_000
}

// expectedUsage is simulator.ExpectedUsage, failing the test on error.
func expectedUsage(t *testing.T, body []byte) simulator.Usage {
	t.Helper()
	u, err := simulator.ExpectedUsage(body)
	if err != nil {
		t.Fatalf("unexpected ExpectedUsage error for %s: %s", body, err)
	}
	return u
}

func expectedStartUsage(t *testing.T, body []byte) simulator.Usage {
	t.Helper()
	u, err := simulator.ExpectedStartUsage(body)
	if err != nil {
		t.Fatalf("unexpected ExpectedStartUsage error for %s: %s", body, err)
	}
	return u
}

// timeoutUsage is what a stream cut off by a timeout is charged: the usage
// its message_start reported, with the output reported plus an estimate of
// the content streamed after that report (within maxTokens), as the meter
// makes it from the events the client received before the appended error.
func timeoutUsage(t *testing.T, body []byte, evs []sseEvent, maxTokens int64) simulator.Usage {
	t.Helper()
	u := expectedStartUsage(t, body)
	var o meter.Observer
	o.Reset(0)
	for _, e := range evs {
		if e.Name != "error" {
			o.Write([]byte("event: " + e.Name + "\ndata: " + e.Data + "\n\n"))
		}
	}
	r := o.Result()
	u.OutputTokens = min(meter.EstimateOutputTokens(&r), maxTokens)
	return u
}

// checkRecordUsage compares a call record's token counts with u.
func checkRecordUsage(t *testing.T, c *callRecord, u simulator.Usage) {
	t.Helper()
	got := [7]int64{c.InputTokens, c.OutputTokens, c.CacheCreationInputTokens, c.CacheCreation5mInputTokens,
		c.CacheCreation1hInputTokens, c.CacheReadInputTokens, c.WebSearchRequests}
	h1 := min(u.CacheCreation.Ephemeral1hInputTokens, u.CacheCreationInputTokens)
	want := [7]int64{u.InputTokens, u.OutputTokens, u.CacheCreationInputTokens, u.CacheCreationInputTokens - h1,
		h1, u.CacheReadInputTokens, u.ServerToolUse.WebSearchRequests}
	if got != want {
		t.Fatalf("unexpected call record usage (input, output, cache writes, 5m, 1h, reads, searches); got %v; want %v", got, want)
	}
}

// checkSettled checks the call record and the ledger entries of a settled
// call: outcome, charge, the hold entry equal to held, the settle entry
// returning held - charged.
func (h *harness) checkSettled(a *account, c *callRecord, outcome string, charged int64) {
	h.t.Helper()
	if c.Outcome != outcome {
		h.t.Fatalf("unexpected outcome of %s; got %q; want %q", c.RequestID, c.Outcome, outcome)
	}
	if got := mustAmount(h.t, c.Charged); got != charged {
		h.t.Fatalf("unexpected charge of %s; got %d; want %d nano-credits", c.RequestID, got, charged)
	}
	if c.AccountID != a.ID || c.KeyID != a.KeyID || c.Model != testModel {
		h.t.Fatalf("unexpected call record identity; got account %q key %q model %q; want %q %q %q",
			c.AccountID, c.KeyID, c.Model, a.ID, a.KeyID, testModel)
	}
	held := mustAmount(h.t, c.Held)
	hold, end, n := h.requestEntries(a.ID, c.RequestID)
	if n != 2 || hold == nil || end == nil {
		h.t.Fatalf("unexpected entries of %s; got %d (hold %v, end %v); want a hold and a settle", c.RequestID, n, hold, end)
	}
	if got := mustAmount(h.t, hold.Amount); got != -held {
		h.t.Fatalf("unexpected hold entry amount; got %d; want %d", got, -held)
	}
	if end.Kind != "settle" || end.Held == nil || end.Charged == nil {
		h.t.Fatalf("unexpected end entry %+v; want a settle with held and charged", end)
	}
	if got := mustAmount(h.t, end.Amount); got != held-charged {
		h.t.Fatalf("unexpected settle entry amount; got %d; want %d", got, held-charged)
	}
	if mustAmount(h.t, *end.Held) != held || mustAmount(h.t, *end.Charged) != charged {
		h.t.Fatalf("unexpected settle entry held/charged; got %s/%s; want %d/%d", *end.Held, *end.Charged, held, charged)
	}
}

// checkVoided checks a call that charged nothing: outcome, status, a hold
// voided (or, for a rejection, no entry at all).
func (h *harness) checkVoided(a *account, c *callRecord, outcome string, status int) {
	h.t.Helper()
	if c.Outcome != outcome || c.Status != status {
		h.t.Fatalf("unexpected call record outcome/status; got %q/%d; want %q/%d", c.Outcome, c.Status, outcome, status)
	}
	if got := mustAmount(h.t, c.Charged); got != 0 {
		h.t.Fatalf("unexpected charge; got %d; want 0", got)
	}
	hold, end, n := h.requestEntries(a.ID, c.RequestID)
	if outcome == "rejected" {
		if n != 0 {
			h.t.Fatalf("unexpected entries for a rejected call; got %d; want 0", n)
		}
		return
	}
	if n != 2 || hold == nil || end == nil || end.Kind != "void" || end.Reason == "" {
		h.t.Fatalf("unexpected entries of %s; got %d (hold %+v, end %+v); want a hold and a void with a reason", c.RequestID, n, hold, end)
	}
	if mustAmount(h.t, hold.Amount)+mustAmount(h.t, end.Amount) != 0 {
		h.t.Fatalf("unexpected void amount %s for hold %s", end.Amount, hold.Amount)
	}
}

// apiError is the contract's error body.
type apiError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID *string `json:"request_id"`
}

var requestIDPattern = regexp.MustCompile(`^req_[0-9A-Za-z]{22}$`)

// checkError checks an error response: status, the contract's shape, the
// type, and request_id equal to the request-id header (Tollgate's own).
// It returns the error message.
func checkError(t *testing.T, resp *http.Response, body []byte, status int, typ string) string {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("unexpected status; got %d; want %d; body %s", resp.StatusCode, status, body)
	}
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not JSON: %s; body %q", err, body)
	}
	if e.Type != "error" || e.Error.Type != typ || e.Error.Message == "" {
		t.Fatalf("unexpected error body; got %s; want type error, error.type %q and a message", body, typ)
	}
	id := resp.Header.Get("request-id")
	if !requestIDPattern.MatchString(id) {
		t.Fatalf("unexpected request-id header; got %q; want Tollgate's req_ + 22 base62", id)
	}
	if e.RequestID == nil || *e.RequestID != id {
		// Not fatal: the test's other checks still run.
		t.Errorf("unexpected request_id in the error body; got %s; want %q (the request-id header)", body, id)
	}
	if ct := resp.Header.Get("content-type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("unexpected error content-type; got %q; want application/json", ct)
	}
	return e.Error.Message
}

// sseEvent is one SSE event: its name and data.
type sseEvent struct {
	Name string
	Data string
}

// parseSSE splits an SSE body into events (LF framing, one data line each,
// as Anthropic and the simulator send).
func parseSSE(t *testing.T, body []byte) []sseEvent {
	t.Helper()
	var out []sseEvent
	for _, block := range strings.Split(string(body), "\n\n") {
		if strings.TrimSpace(block) == "" {
			continue
		}
		var ev sseEvent
		for _, line := range strings.Split(block, "\n") {
			switch {
			case line == "":
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.Data = strings.TrimPrefix(line, "data: ")
			default:
				t.Fatalf("unexpected SSE line %q in %q", line, body)
			}
		}
		out = append(out, ev)
	}
	return out
}

func eventNames(evs []sseEvent) []string {
	names := make([]string, len(evs))
	for i, e := range evs {
		names[i] = e.Name
	}
	return names
}

// rawStream opens a streaming call over a plain TCP connection, reads the
// response head and returns the connection and its reader, positioned at the
// start of the (chunked) body.
func (h *harness) rawStream(key string, body []byte) (net.Conn, *bufio.Reader, *http.Response) {
	h.t.Helper()
	conn, err := net.DialTimeout("tcp", h.clientAddr, 5*time.Second)
	if err != nil {
		h.t.Fatalf("cannot dial the gateway: %s", err)
	}
	if err := conn.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		h.t.Fatalf("cannot set a deadline: %s", err)
	}
	req := fmt.Sprintf("POST /v1/messages HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAnthropic-Version: 2023-06-01\r\nX-Api-Key: %s\r\nContent-Length: %d\r\n\r\n",
		h.clientAddr, key, len(body))
	if _, err := conn.Write(append([]byte(req), body...)); err != nil {
		h.t.Fatalf("cannot send the request: %s", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		h.t.Fatalf("cannot read the response head: %s", err)
	}
	return conn, bufio.NewReader(resp.Body), resp
}

// readEvents reads n SSE events from a stream.
func readEvents(t *testing.T, r *bufio.Reader, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	var block strings.Builder
	for len(out) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("cannot read event %d: %s (read so far %q)", len(out)+1, err, block.String())
		}
		if line == "\n" {
			out = append(out, parseSSE(t, []byte(block.String()))...)
			block.Reset()
			continue
		}
		block.WriteString(line)
	}
	return out
}

// newAdminServer is the admin API of g and its ledger, with the test token.
func newAdminServer(tb testing.TB, led *ledger.Ledger, g *proxy.Gateway, logger *log.Logger) *admin.Server {
	s, err := admin.New(admin.Config{Ledger: led, Catalogue: g.Catalogue, Token: testAdminToken, Logger: logger})
	if err != nil {
		tb.Fatalf("cannot create the admin API: %s", err)
	}
	return s
}
