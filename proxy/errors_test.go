package proxy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/proxy"
)

// allCallsCount is the number of call records of every account.
func (h *harness) allCallsCount() int {
	h.t.Helper()
	var l callList
	h.admin(http.MethodGet, "/admin/v1/calls?limit=1000", nil, http.StatusOK, &l)
	if l.HasMore {
		h.t.Fatalf("too many calls for allCallsCount")
	}
	return len(l.Data)
}

// TestClientErrors: every client error status and its precedence, each
// in the contract's shape with request_id equal to the request-id header;
// every refusal after authentication leaves a call record (outcome
// rejected, status as sent, nothing charged, no ledger entry); 401s leave
// none; nothing refused reaches the upstream.
func TestClientErrors(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	other := h.newAccount("10")
	poor := h.newAccount("0.000001")
	frozen := h.newAccount("10")
	frozenPoor := h.newAccount("0.000001")
	revoked := h.newAccount("10")
	for _, f := range []*account{frozen, frozenPoor} {
		h.admin(http.MethodPost, "/admin/v1/accounts/"+f.ID+"/freeze", nil, http.StatusNoContent, nil)
	}
	h.admin(http.MethodDelete, "/admin/v1/keys/"+revoked.KeyID, nil, http.StatusNoContent, nil)

	valid := messagesBody("hello", 100, false)
	msgs := `"messages":[{"role":"user","content":"hello"}]`
	malformed := []byte(`{"model":"claude-haiku-4-5","max_tokens":100,` + msgs)
	body := func(fields string) []byte { return []byte("{" + fields + "," + msgs + "}") }
	unknownModel := body(`"model":"claude-nonexistent-9","max_tokens":100`)

	simBefore := h.sim.Stats().Messages
	callsBefore := h.allCallsCount()
	records := 0

	f := func(name string, acct *account, key string, hdr map[string]string, b []byte, status int, typ string, contains ...string) {
		t.Helper()
		resp, rb := h.post("/v1/messages", key, b, hdr)
		msg := checkError(t, resp, rb, status, typ)
		for _, s := range contains {
			if !strings.Contains(msg, s) {
				t.Fatalf("%s: unexpected message %q; want it to contain %q", name, msg, s)
			}
		}
		c := h.adminCall(resp.Header.Get("request-id"))
		if acct == nil {
			if c != nil {
				t.Fatalf("%s: unexpected call record for a %d: %+v", name, status, c)
			}
			return
		}
		if c == nil {
			t.Fatalf("%s: no call record for a refusal after authentication", name)
		}
		records++
		h.checkVoided(acct, c, "rejected", status)
		if c.KeyID != acct.KeyID || c.AccountID != acct.ID {
			t.Fatalf("%s: unexpected record identity %q/%q; want %q/%q", name, c.AccountID, c.KeyID, acct.ID, acct.KeyID)
		}
	}

	// 400 invalid_request_error.
	f("malformed JSON", a, a.Key, nil, malformed, 400, "invalid_request_error")
	f("empty body", a, a.Key, nil, []byte(``), 400, "invalid_request_error")
	f("not an object", a, a.Key, nil, []byte(`[1,2]`), 400, "invalid_request_error")
	f("no model", a, a.Key, nil, body(`"max_tokens":100`), 400, "invalid_request_error", "model")
	f("model not a string", a, a.Key, nil, body(`"model":5,"max_tokens":100`), 400, "invalid_request_error", "model")
	f("no max_tokens", a, a.Key, nil, body(`"model":"claude-haiku-4-5"`), 400, "invalid_request_error", "max_tokens")
	f("max_tokens 0", a, a.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":0`), 400, "invalid_request_error", "max_tokens")
	f("max_tokens negative", a, a.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":-5`), 400, "invalid_request_error", "max_tokens")
	f("max_tokens a string", a, a.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":"100"`), 400, "invalid_request_error", "max_tokens")
	f("max_tokens a fraction", a, a.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":1.5`), 400, "invalid_request_error", "max_tokens")
	f("max_tokens above the model's", a, a.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":64001`), 400, "invalid_request_error", "max_tokens")
	f("messages not a list", a, a.Key, nil, []byte(`{"model":"claude-haiku-4-5","max_tokens":10,"messages":"hello"}`), 400, "invalid_request_error", "messages")
	f("stream not a boolean", a, a.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":10,"stream":"yes"`), 400, "invalid_request_error", "stream")
	f("system a number", a, a.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":10,"system":5`), 400, "invalid_request_error", "system")
	f("tools an object", a, a.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":10,"tools":{}`), 400, "invalid_request_error", "tools")
	f("duplicate model", a, a.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":10,"model":"claude-opus-4-8"`), 400, "invalid_request_error", "model")

	// A priced modifier or server tool the catalogue has no price for is
	// refused rather than billed at a guess: Haiku 4.5 lists neither fast mode nor US inference,
	// and code execution is billed per container-hour.
	f("unpriced speed", a, a.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":10,"speed":"fast"`), 400, "invalid_request_error", "speed")
	f("unpriced inference_geo", a, a.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":10,"inference_geo":"us"`), 400, "invalid_request_error", "inference_geo")
	f("unpriced server tool", a, a.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":10,"tools":[{"type":"code_execution_20250825","name":"code_execution"}]`), 400, "invalid_request_error", "code_execution")

	// 404 not_found_error.
	f("unknown model", a, a.Key, nil, unknownModel, 404, "not_found_error")
	f("retired model", a, a.Key, nil, body(`"model":"claude-sonnet-4-20250514","max_tokens":100`), 404, "not_found_error")

	// 402 billing_error, with the hold and the available amount.
	hold := holdFor(t, valid)
	f("balance below the hold", poor, poor.Key, nil, valid, 402, "billing_error",
		money.Format(hold), money.Format(poor.TopUps))

	// 403 permission_error.
	f("frozen", frozen, frozen.Key, nil, valid, 403, "permission_error")

	// 401 authentication_error: no record.
	f("no key", nil, "", nil, valid, 401, "authentication_error")
	f("unknown key", nil, "tg-"+strings.Repeat("A", 43), nil, valid, 401, "authentication_error")
	f("revoked key", nil, revoked.Key, nil, valid, 401, "authentication_error")
	f("two different keys", nil, a.Key, map[string]string{"Authorization": "Bearer " + other.Key}, valid, 401, "authentication_error")
	f("Basic credentials", nil, "", map[string]string{"Authorization": "Basic " + a.Key}, valid, 401, "authentication_error")

	// Precedence: 401, 403, 413, 400, 404, 429, 402.
	f("no key + malformed", nil, "", nil, malformed, 401, "authentication_error")
	f("revoked key + malformed", nil, revoked.Key, nil, malformed, 401, "authentication_error")
	f("frozen + malformed", frozen, frozen.Key, nil, malformed, 403, "permission_error")
	f("frozen + unknown model", frozen, frozen.Key, nil, unknownModel, 403, "permission_error")
	f("frozen + balance below the hold", frozenPoor, frozenPoor.Key, nil, valid, 403, "permission_error")
	f("bad max_tokens + unknown model", a, a.Key, nil, body(`"model":"claude-nonexistent-9","max_tokens":0`), 400, "invalid_request_error")
	f("bad max_tokens + balance below the hold", poor, poor.Key, nil, body(`"model":"claude-haiku-4-5","max_tokens":0`), 400, "invalid_request_error")
	f("unknown model + balance below the hold", poor, poor.Key, nil, unknownModel, 404, "not_found_error")

	if got := h.sim.Stats().Messages; got != simBefore {
		t.Fatalf("unexpected requests reaching the upstream; got %d; want 0", got-simBefore)
	}
	if got := h.allCallsCount() - callsBefore; got != records {
		t.Fatalf("unexpected number of new call records; got %d; want %d (one per refusal after authentication)", got, records)
	}

	// Both headers carrying the same key, or the key as a Bearer token, work.
	for _, hdr := range []map[string]string{
		{"Authorization": "Bearer " + a.Key},
		{"Authorization": "Bearer " + a.Key, "X-Api-Key": a.Key},
	} {
		resp, rb := h.post("/v1/messages", "", valid, hdr)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("unexpected status with %v; got %d; want 200; body %s", hdr, resp.StatusCode, rb)
		}
	}

	// A frozen account can still read its balance and calls; count_tokens
	// (a POST) is refused.
	if b := h.balance(frozen); b.Available != frozen.TopUps {
		t.Fatalf("unexpected frozen balance; got %+v; want %d available", b, frozen.TopUps)
	}
	resp, rb := h.get("/v1/calls", frozen.Key)
	var l callList
	if resp.StatusCode != http.StatusOK || json.Unmarshal(rb, &l) != nil || len(l.Data) != 3 || l.Data[0].Outcome != "rejected" {
		t.Fatalf("unexpected GET /v1/calls for a frozen account; got %d %s; want 200 with its 3 rejected calls", resp.StatusCode, rb)
	}
	resp, rb = h.post("/v1/messages/count_tokens", frozen.Key, []byte(`{"model":"claude-haiku-4-5",`+msgs+`}`), nil)
	checkError(t, resp, rb, 403, "permission_error")
	h.admin(http.MethodPost, "/admin/v1/accounts/"+frozen.ID+"/unfreeze", nil, http.StatusNoContent, nil)
	if resp, rb := h.post("/v1/messages", frozen.Key, valid, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("unexpected status after unfreeze; got %d; want 200; body %s", resp.StatusCode, rb)
	}
	// The revoked key fails on GET routes too.
	resp, rb = h.get("/v1/balance", revoked.Key)
	checkError(t, resp, rb, 401, "authentication_error")
}

// TestUnknownRoutes: anything else is 404 not_found_error in the contract's
// shape, with or without a key, and leaves no call record.
func TestUnknownRoutes(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("1")
	before := h.allCallsCount()
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/"},
		{http.MethodGet, "/v1/nothing"},
		{http.MethodPost, "/v1/complete"},
		{http.MethodGet, "/v1/messages"},
		{http.MethodPost, "/v1/messages/batches"},
		{http.MethodDelete, "/v1/balance"},
		{http.MethodPost, "/v2/messages"},
		{http.MethodGet, "/admin/v1/accounts"},
	} {
		for _, key := range []string{"", a.Key} {
			hd := map[string]string{"Content-Type": "application/json"}
			if key != "" {
				hd["X-Api-Key"] = key
			}
			var b []byte
			if r.method == http.MethodPost {
				b = messagesBody("hello", 10, false)
			}
			resp, rb := h.do(r.method, h.clientURL+r.path, b, hd)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("unexpected status of %s %s; got %d; want 404", r.method, r.path, resp.StatusCode)
			}
			checkError(t, resp, rb, 404, "not_found_error")
		}
	}
	if got := h.allCallsCount(); got != before {
		t.Fatalf("unexpected call records for unknown routes; got %d; want 0", got-before)
	}
}

// rawOversized sends the head of a POST /v1/messages announcing a body of
// size bytes, and only 100 bytes of it, and returns the response, which must
// come before the rest of the body is sent.
func (h *harness) rawOversized(hdr string, size int) (*http.Response, []byte) {
	h.t.Helper()
	conn, err := net.DialTimeout("tcp", h.clientAddr, 5*time.Second)
	if err != nil {
		h.t.Fatalf("cannot dial: %s", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		h.t.Fatalf("cannot set a deadline: %s", err)
	}
	head := fmt.Sprintf("POST /v1/messages HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n", h.clientAddr, hdr, size)
	// The gateway reads at most 8 KiB of the body before it answers (fasthttp's
	// pre-read of a streamed request body); the body itself is far larger.
	if _, err := conn.Write([]byte(head + `{"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":"` + strings.Repeat("x", 8192))); err != nil {
		h.t.Fatalf("cannot send: %s", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		h.t.Fatalf("no response before the body was sent in full: %s", err)
	}
	defer resp.Body.Close()
	b := make([]byte, 0, 512)
	buf := make([]byte, 512)
	for {
		n, err := resp.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return resp, b
}

// TestRequestTooLarge: a body over the configured limit is refused with 413
// before it is read in full, after authentication and the frozen check.
func TestRequestTooLarge(t *testing.T) {
	h := newHarness(t, withConfig(func(c *proxy.Config) { c.MaxRequestBodyBytes = 4096 }))
	a := h.newAccount("10")
	frozen := h.newAccount("10")
	h.admin(http.MethodPost, "/admin/v1/accounts/"+frozen.ID+"/freeze", nil, http.StatusNoContent, nil)

	// Under the limit: fine.
	if resp, rb := h.post("/v1/messages", a.Key, messagesBody(strings.Repeat("word ", 700), 10, false), nil); resp.StatusCode != 200 {
		t.Fatalf("unexpected status under the limit; got %d; want 200; body %s", resp.StatusCode, rb)
	}

	resp, rb := h.rawOversized("X-Api-Key: "+a.Key+"\r\n", 1<<20)
	checkError(t, resp, rb, http.StatusRequestEntityTooLarge, "request_too_large")
	id := resp.Header.Get("request-id")

	// Precedence: 401 and 403 before 413.
	t.Run("no key", func(t *testing.T) {
		defer h.use(t)()
		resp, rb := h.rawOversized("", 1<<20)
		checkError(t, resp, rb, http.StatusUnauthorized, "authentication_error")
	})
	t.Run("frozen", func(t *testing.T) {
		defer h.use(t)()
		resp, rb := h.rawOversized("X-Api-Key: "+frozen.Key+"\r\n", 1<<20)
		checkError(t, resp, rb, http.StatusForbidden, "permission_error")
	})
	t.Run("record", func(t *testing.T) {
		defer h.use(t)()
		// A 413 comes after authentication, so the call has a record
		// (every rejection after authentication has one).
		c := h.adminCall(id)
		if c == nil {
			t.Fatalf("no call record for the authenticated 413 %s", id)
		}
		h.checkVoided(a, c, "rejected", http.StatusRequestEntityTooLarge)
	})
	if b := h.balance(a); b.Held != 0 {
		t.Fatalf("unexpected held %d", b.Held)
	}
}

// TestDeniedBetas: anthropic-beta values the operator denies are refused
// with 400 before forwarding; others pass.
func TestDeniedBetas(t *testing.T) {
	h := newHarness(t, withConfig(func(c *proxy.Config) { c.DeniedBetas = []string{"context-1m-2025-08-07"} }))
	a := h.newAccount("1")
	forwarded := h.sim.Stats().Messages
	resp, rb := h.post("/v1/messages", a.Key, messagesBody("hello", 10, false), map[string]string{"Anthropic-Beta": "prompt-caching-2024-07-31, context-1m-2025-08-07"})
	checkError(t, resp, rb, 400, "invalid_request_error")
	c := h.adminCall(resp.Header.Get("request-id"))
	if c == nil {
		t.Fatalf("no call record for the refusal")
	}
	h.checkVoided(a, c, "rejected", 400)
	if h.sim.Stats().Messages != forwarded {
		t.Fatalf("unexpected call forwarded with a denied beta")
	}
	resp, rb = h.post("/v1/messages", a.Key, messagesBody("hello", 10, false), map[string]string{"Anthropic-Beta": "prompt-caching-2024-07-31"})
	if resp.StatusCode != 200 {
		t.Fatalf("unexpected status with an allowed beta; got %d; want 200; body %s", resp.StatusCode, rb)
	}
}

// TestRateLimits: a key over its request or concurrency limit gets 429
// rate_limit_error with retry-after, recorded as rejected; precedence puts
// 429 for requests before 404, and 429 before 402.
func TestRateLimits(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("10")
	valid := messagesBody("hello", 10, false)

	// Requests per minute.
	_, rpmKey := h.mintKey(a.ID, map[string]any{"rpm": 2})
	for i := range 2 {
		if resp, rb := h.post("/v1/messages", rpmKey, valid, nil); resp.StatusCode != 200 {
			t.Fatalf("unexpected status of call %d under the limit; got %d; want 200; body %s", i, resp.StatusCode, rb)
		}
	}
	resp, rb := h.post("/v1/messages", rpmKey, messagesBody("hello", 10, false), nil)
	checkError(t, resp, rb, 429, "rate_limit_error")
	if ra := resp.Header.Get("retry-after"); ra == "" || ra == "0" {
		t.Fatalf("unexpected retry-after %q; want a positive number of seconds", ra)
	}
	if c := h.adminCall(resp.Header.Get("request-id")); c == nil || c.Outcome != "rejected" || c.Status != 429 || mustAmount(t, c.Charged) != 0 {
		t.Fatalf("unexpected record of a 429: %+v", c)
	}
	// 429 for requests per minute before 404: a refused client costs no
	// body read.
	resp, rb = h.post("/v1/messages", rpmKey, []byte(`{"model":"claude-nonexistent-9","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`), nil)
	checkError(t, resp, rb, 429, "rate_limit_error")

	// 429 before 402.
	poor := h.newAccount("0.000001")
	_, poorKey := h.mintKey(poor.ID, map[string]any{"rpm": 1})
	resp, rb = h.post("/v1/messages", poorKey, valid, nil)
	checkError(t, resp, rb, 402, "billing_error")
	resp, rb = h.post("/v1/messages", poorKey, valid, nil)
	checkError(t, resp, rb, 429, "rate_limit_error")

	// Concurrency: a call keeps its slot until it settles.
	_, oneKey := h.mintKey(a.ID, map[string]any{"concurrency": 1})
	conn, r, sresp := h.rawStream(oneKey, messagesBody("one two three [[sim:delay=50ms,words=10]]", 50, true))
	defer conn.Close()
	readEvents(t, r, 1)
	resp, rb = h.post("/v1/messages", oneKey, valid, nil)
	checkError(t, resp, rb, 429, "rate_limit_error")
	readRest(t, r)
	h.waitCall(sresp.Header.Get("request-id"))
	if resp, rb := h.post("/v1/messages", oneKey, valid, nil); resp.StatusCode != 200 {
		t.Fatalf("unexpected status once the slot is free; got %d; want 200; body %s", resp.StatusCode, rb)
	}
}
