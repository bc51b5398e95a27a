package admin

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/internal/tokens"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/wal"
)

const testToken = "tga-test-admin-token"

// fixture serves the admin API of a ledger in a temporary directory on
// loopback, with one account, "bench", holding 100 credits.
type fixture struct {
	t   *testing.T
	led *ledger.Ledger
	srv *Server
	url string
	hc  *http.Client
}

func newFixture(t *testing.T) *fixture {
	w, err := wal.Open(t.TempDir(), wal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	led, err := ledger.Open(w, ledger.Config{Shards: 8})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := meter.LoadCatalogue("../../configs/models.yaml")
	if err != nil {
		t.Fatal(err)
	}
	store, err := access.Open(w.States, w.SetState)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Ledger: led, Catalogue: func() *meter.Catalogue { return cat }, Token: testToken, Access: store, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	f := &fixture{t: t, led: led, srv: srv, url: "http://" + ln.Addr().String(), hc: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(func() {
		f.hc.CloseIdleConnections()
		if err := srv.Shutdown(t.Context()); err != nil {
			t.Errorf("unexpected Shutdown error: %s", err)
		}
		if err := <-served; err != nil {
			t.Errorf("unexpected Serve error: %s", err)
		}
		w.Close()
	})
	if _, err := led.CreateAccount(ledger.AccountSpec{ID: "bench", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	f.want("POST", "/admin/v1/accounts/bench/topups", `{"amount":"100","order_id":"seed","kind":"paid"}`, 201)
	return f
}

// call makes a settled Haiku 4.5 call of "bench" (27 tokens in, 40 out) as
// the gateway records one, and returns its request ID.
func (f *fixture) call(requestID string) string {
	f.t.Helper()
	c, err := f.led.Hold("bench", requestID, "key_bench", 1_000_000)
	if err == nil {
		err = c.Wait()
	}
	if err != nil {
		f.t.Fatal(err)
	}
	rec := &ledger.CallRecord{RequestID: requestID, AccountID: "bench", KeyID: "key_bench", TimeNanos: time.Now().UnixNano(),
		Model: "claude-haiku-4-5", ModelID: "claude-haiku-4-5-20251001", Status: 200, Outcome: ledger.OutcomeOK,
		Counts: tokens.Counts{InputTokens: 27, OutputTokens: 40}, Held: 1_000_000, Charged: 227_000, Upstream: "anthropic"}
	if c, err = f.led.Settle(requestID, rec.Charged, rec); err == nil {
		err = c.Wait()
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return requestID
}

func (f *fixture) doWith(token, method, path, body string) (int, map[string]any, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %s", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("request-id") == "" {
		f.t.Fatalf("%s %s: no request-id header", method, path)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if out != nil && resp.StatusCode >= 400 && out["request_id"] != resp.Header.Get("request-id") {
		f.t.Fatalf("%s %s: error request_id %v differs from the request-id header %q", method, path, out["request_id"], resp.Header.Get("request-id"))
	}
	return resp.StatusCode, out, raw
}

func (f *fixture) do(method, path, body string) (int, map[string]any) {
	f.t.Helper()
	st, out, _ := f.doWith(testToken, method, path, body)
	return st, out
}

func (f *fixture) want(method, path, body string, status int) map[string]any {
	f.t.Helper()
	st, out := f.do(method, path, body)
	if st != status {
		f.t.Fatalf("%s %s %s: unexpected status; got %d %v; want %d", method, path, body, st, out, status)
	}
	return out
}

func errType(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}

func TestAdminAccountsAndTopUps(t *testing.T) {
	a := newFixture(t)
	acct := a.want("POST", "/admin/v1/accounts", `{"id":"acme","email":"ops@acme.test","rpm":60}`, 201)
	if acct["id"] != "acme" || acct["available"] != "0" || acct["rpm"] != float64(60) || acct["tpm"] != nil || acct["expires_at"] != nil {
		t.Fatalf("unexpected account: %v", acct)
	}
	if out := a.want("POST", "/admin/v1/accounts", `{"id":"acme"}`, 409); errType(out) != "conflict_error" {
		t.Fatalf("unexpected error: %v", out)
	}
	if gen := a.want("POST", "/admin/v1/accounts", `{}`, 201); !strings.HasPrefix(gen["id"].(string), "acct_") {
		t.Fatalf("unexpected generated ID: %v", gen)
	}
	a.want("GET", "/admin/v1/accounts/nobody", "", 404)
	a.want("PATCH", "/admin/v1/accounts/acme", `{"multiplier":"1.5","concurrency":3}`, 200)
	if got := a.want("GET", "/admin/v1/accounts/acme", "", 200); got["multiplier"] != "1.5" || got["concurrency"] != float64(3) || got["rpm"] != float64(60) {
		t.Fatalf("patch not applied: %v", got)
	}

	first := a.want("POST", "/admin/v1/accounts/acme/topups", `{"amount":"25","order_id":"o-1","kind":"paid"}`, 201)
	if first["kind"] != "topup" || first["amount"] != "25" || first["order_id"] != "o-1" || first["credit"] != "paid" {
		t.Fatalf("unexpected entry: %v", first)
	}
	again := a.want("POST", "/admin/v1/accounts/acme/topups", `{"amount":"25","order_id":"o-1","kind":"paid"}`, 200)
	if again["id"] != first["id"] {
		t.Fatalf("the same order must return the first entry; got %v; want %v", again["id"], first["id"])
	}
	a.want("POST", "/admin/v1/accounts/acme/topups", `{"amount":"26","order_id":"o-1","kind":"paid"}`, 409)
	a.want("POST", "/admin/v1/accounts/nobody/topups", `{"amount":"1","order_id":"o-2","kind":"paid"}`, 404)
	bad := map[string]string{
		`{"amount":25,"order_id":"o-3","kind":"paid"}`:                                      "amount",
		`{"amount":"-5","order_id":"o-3","kind":"paid"}`:                                    "amount",
		`{"amount":"0.0000000001","order_id":"o-3","kind":"paid"}`:                          "amount",
		`{"amount":"99999999999999999999","order_id":"o-3","kind":"paid"}`:                  "amount",
		`{"amount":"1e3","order_id":"o-3","kind":"paid"}`:                                   "amount",
		`{"amount":"1","kind":"paid"}`:                                                      "order_id",
		`{"amount":"1","order_id":"o-3","kind":"free"}`:                                     "kind",
		`{"amount":"1","order_id":"o-3","kind":"paid","expires_at":"2030-01-01T00:00:00Z"}`: "expires_at",
		`{"amount":"1","order_id":"o-3","kind":"gift"}`:                                     "expires_at",
		`{"amount":"1","order_id":"o-3","kind":"paid","colour":"red"}`:                      "colour",
		`{"amount":"1","order_id":7,"kind":"paid"}`:                                         "order_id",
		`not json`: "JSON",
	}
	for body, field := range bad {
		out := a.want("POST", "/admin/v1/accounts/acme/topups", body, 400)
		msg := out["error"].(map[string]any)["message"].(string)
		if errType(out) != "invalid_request_error" || !strings.Contains(msg, field) {
			t.Fatalf("body %s: the message must name %s; got %v", body, field, out)
		}
	}
	gift := a.want("POST", "/admin/v1/accounts/acme/topups", fmt.Sprintf(`{"amount":"0.5","order_id":"g-1","kind":"gift","expires_at":%q}`, time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339)), 201)
	if gift["credit"] != "gift" || gift["expires_at"] == nil {
		t.Fatalf("unexpected gift entry: %v", gift)
	}
	if got := a.want("GET", "/admin/v1/accounts/acme", "", 200); got["available"] != "25.5" || got["expires_at"] == nil {
		t.Fatalf("unexpected balance: %v", got)
	}
	expiring := a.want("GET", "/admin/v1/expiring?within=72h", "", 200)
	data := expiring["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["account_id"] != "acme" || data[0].(map[string]any)["amount"] != "0.5" {
		t.Fatalf("unexpected expiring list: %v", expiring)
	}

	// 50 concurrent identical top-ups credit once.
	var wg sync.WaitGroup
	statuses := make(chan int, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _ := a.do("POST", "/admin/v1/accounts/acme/topups", `{"amount":"10","order_id":"burst","kind":"paid"}`)
			statuses <- st
		}()
	}
	wg.Wait()
	close(statuses)
	created := 0
	for st := range statuses {
		if st == 201 {
			created++
		} else if st != 200 {
			t.Fatalf("unexpected status in a burst of identical top-ups: %d", st)
		}
	}
	if got := a.want("GET", "/admin/v1/accounts/acme", "", 200); created != 1 || got["available"] != "35.5" {
		t.Fatalf("a burst of one order must credit once; created %d times, available %v", created, got["available"])
	}

	a.want("POST", "/admin/v1/accounts/acme/freeze", "", 204)
	if got := a.want("GET", "/admin/v1/accounts/acme", "", 200); got["frozen"] != true {
		t.Fatalf("not frozen: %v", got)
	}
	a.want("POST", "/admin/v1/accounts/acme/unfreeze", "", 204)
	a.want("POST", "/admin/v1/accounts/nobody/freeze", "", 404)

	entries := a.want("GET", "/admin/v1/accounts/acme/entries?limit=2", "", 200)
	if len(entries["data"].([]any)) != 2 || entries["has_more"] != true || entries["next_cursor"] == nil {
		t.Fatalf("unexpected first page: %v", entries)
	}
	rest := a.want("GET", "/admin/v1/accounts/acme/entries?limit=1000&cursor="+entries["next_cursor"].(string), "", 200)
	if len(rest["data"].([]any)) != 1 || rest["has_more"] != false || rest["next_cursor"] != nil {
		t.Fatalf("unexpected last page: %v", rest)
	}
	a.want("GET", "/admin/v1/accounts/acme/entries?limit=0", "", 400)
	a.want("GET", "/admin/v1/accounts/acme/entries?limit=1001", "", 400)
	a.want("GET", "/admin/v1/accounts/acme/entries?cursor=x", "", 400)
}

func TestAdminAuthorization(t *testing.T) {
	a := newFixture(t)
	for _, tok := range []string{"", "wrong", "Bearer", testToken + "x"} {
		st, out, _ := a.doWith(tok, "GET", "/admin/v1/models", "")
		if st != 401 || errType(out) != "authentication_error" {
			t.Fatalf("token %q: unexpected answer %d %v", tok, st, out)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if st, _, _ := a.doWith("", "GET", p, ""); st != 200 {
			t.Fatalf("%s needs no token; got %d", p, st)
		}
	}
	if st, _, body := a.doWith(testToken, "GET", "/metrics", ""); st != 200 || !strings.Contains(string(body), "tollgate_wal_records_total") {
		t.Fatalf("unexpected metrics: %d", st)
	}
	if st, _, _ := a.doWith("", "GET", "/metrics", ""); st != 401 {
		t.Fatalf("metrics need a token; got %d", st)
	}
	a.want("GET", "/admin/v1/nothing", "", 404)
	models := a.want("GET", "/admin/v1/models", "", 200)
	if len(models["data"].([]any)) == 0 {
		t.Fatalf("no models: %v", models)
	}
}

func TestAdminKeys(t *testing.T) {
	a := newFixture(t)
	key := a.want("POST", "/admin/v1/accounts/bench/keys", `{"name":"ci","rpm":10,"models":["claude-haiku-4-5"],"spend_limit":"5","spend_period":"720h"}`, 201)
	secret := key["key"].(string)
	if !strings.HasPrefix(secret, "tg-") || len(secret) < 43 || key["hint"] != "tg-…"+secret[len(secret)-4:] || key["rpm"] != float64(10) {
		t.Fatalf("unexpected key: %v", key)
	}
	list := a.want("GET", "/admin/v1/accounts/bench/keys", "", 200)
	for _, k := range list["data"].([]any) {
		if _, ok := k.(map[string]any)["key"]; ok {
			t.Fatalf("a listed key shows its secret: %v", k)
		}
	}
	a.want("POST", "/admin/v1/accounts/nobody/keys", `{}`, 404)
	a.want("POST", "/admin/v1/accounts/bench/keys", `{"spend_period":"soon"}`, 400)
	id := key["id"].(string)
	if k := a.want("PATCH", "/admin/v1/keys/"+id, `{"name":"renamed","rpm":0}`, 200); k["name"] != "renamed" || k["rpm"] != float64(0) {
		t.Fatalf("patch not applied: %v", k)
	}
	a.want("PATCH", "/admin/v1/keys/key_nope", `{"name":"x"}`, 404)
	a.want("DELETE", "/admin/v1/keys/"+id, "", 204)
	a.want("DELETE", "/admin/v1/keys/key_nope", "", 404)
	if k := a.led.KeyByHash(ids.HashKey([]byte(secret))); k == nil || !k.Revoked {
		t.Fatalf("revoked key still valid: %+v", k)
	}
}

func TestAdminAdjustmentsStatementAndCalls(t *testing.T) {
	a := newFixture(t)
	start := time.Now().UTC()
	var requestID string
	for i := range 3 {
		requestID = a.call(fmt.Sprintf("req_%d", i))
	}
	calls := a.want("GET", "/admin/v1/calls?account=bench&limit=2", "", 200)
	data := calls["data"].([]any)
	if len(data) != 2 || calls["has_more"] != true {
		t.Fatalf("unexpected calls page: %v", calls)
	}
	c0 := data[0].(map[string]any)
	if c0["outcome"] != "ok" || c0["upstream"] != "anthropic" || c0["input_tokens"] != float64(27) || c0["output_tokens"] != float64(40) {
		t.Fatalf("unexpected call record: %v", c0)
	}
	byTime := a.want("GET", "/admin/v1/calls?since="+start.Add(-time.Minute).Format(time.RFC3339)+"&limit=100", "", 200)
	if len(byTime["data"].([]any)) != 3 {
		t.Fatalf("unexpected calls by time: %v", byTime)
	}
	if r := a.want("GET", "/admin/v1/calls?request_id="+requestID, "", 200); len(r["data"].([]any)) != 1 {
		t.Fatalf("no call by request ID %s: %v", requestID, r)
	}

	adj := a.want("POST", "/admin/v1/adjustments", `{"account":"bench","amount":"-0.000001","reason":"undercharged","request_id":"`+requestID+`","idempotency_key":"adj-1"}`, 201)
	if adj["kind"] != "adjust" || adj["amount"] != "-0.000001" || adj["actor"] != "admin" {
		t.Fatalf("unexpected adjustment: %v", adj)
	}
	if again := a.want("POST", "/admin/v1/adjustments", `{"account":"bench","amount":"-0.000001","reason":"undercharged","request_id":"`+requestID+`","idempotency_key":"adj-1"}`, 200); again["id"] != adj["id"] {
		t.Fatalf("the same idempotency key must return the first entry")
	}
	a.want("POST", "/admin/v1/adjustments", `{"account":"bench","amount":"-0.000002","reason":"undercharged","idempotency_key":"adj-1"}`, 409)
	a.want("POST", "/admin/v1/adjustments", `{"account":"bench","amount":"1","reason":"x","request_id":"req_unknown"}`, 404)
	a.want("POST", "/admin/v1/adjustments", `{"account":"bench","amount":"1"}`, 400)
	// The dispute window at its boundary.
	a.srv.cfg.DisputeWindow = time.Since(start) + time.Minute
	a.want("POST", "/admin/v1/adjustments", `{"account":"bench","amount":"0.000001","reason":"inside","request_id":"`+requestID+`"}`, 201)
	keyed := `{"account":"bench","amount":"0.000002","reason":"disputed","request_id":"` + requestID + `","idempotency_key":"dispute-1"}`
	first := a.want("POST", "/admin/v1/adjustments", keyed, 201)
	a.srv.cfg.DisputeWindow = time.Millisecond
	// A retry gets the first result although the window has closed since.
	if again := a.want("POST", "/admin/v1/adjustments", keyed, 200); again["id"] != first["id"] {
		t.Fatalf("unexpected retry result %v; want the first entry %v", again, first)
	}
	if out := a.want("POST", "/admin/v1/adjustments", `{"account":"bench","amount":"0.000001","reason":"late","request_id":"`+requestID+`"}`, 409); errType(out) != "conflict_error" {
		t.Fatalf("unexpected error: %v", out)
	}

	st := a.want("GET", "/admin/v1/accounts/bench/statement", "", 200)
	charges := st["charges"].([]any)
	if len(charges) != 1 || charges[0].(map[string]any)["calls"] != float64(3) || charges[0].(map[string]any)["model"] != "claude-haiku-4-5-20251001" { // the catalogue ID, not the alias the client used
		t.Fatalf("unexpected charges: %v", st)
	}
	acct := a.want("GET", "/admin/v1/accounts/bench", "", 200)
	total := func(k string) string { return st[k].(string) }
	if total("closing_balance") != acct["available"].(string) || total("opening_balance") != "0" {
		t.Fatalf("statement does not reconcile with the balance: %v vs %v", st, acct)
	}
	// closing = opening + topups + adjustments - charges - expiries, in nano-credits.
	nanos := func(s string) int64 {
		v, err := parseAmountForTest(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if nanos(total("closing_balance")) != nanos(total("opening_balance"))+nanos(total("topups"))+nanos(total("adjustments"))-nanos(charges[0].(map[string]any)["amount"].(string))-nanos(total("expiries")) {
		t.Fatalf("statement totals do not add up: %v", st)
	}
	_, _, raw := a.doWith(testToken, "GET", "/admin/v1/accounts/bench/statement?format=csv", "")
	rows, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][0] != "request_id" || rows[0][19] != "ttfb_ms" {
		t.Fatalf("unexpected CSV: %v %q", err, raw)
	}
	a.want("GET", "/admin/v1/accounts/bench/statement?from=yesterday", "", 400)
}

func parseAmountForTest(s string) (int64, error) { return money.Parse(s) }

// TestAdminCloseAccount: closing revokes the keys, forfeits the available
// credit by an "account closed" adjustment, refuses top-ups, keys and
// unfreezing with 409 afterwards, and answers a repeat with the account.
func TestAdminCloseAccount(t *testing.T) {
	a := newFixture(t)
	key := a.want("POST", "/admin/v1/accounts/bench/keys", `{"name":"ci"}`, 201)
	closed := a.want("POST", "/admin/v1/accounts/bench/close", "", 200)
	if closed["closed_at"] == nil || closed["frozen"] != true || closed["available"] != "0" {
		t.Fatalf("unexpected closed account: %v", closed)
	}
	if k := a.led.KeyByHash(ids.HashKey([]byte(key["key"].(string)))); k == nil || !k.Revoked {
		t.Fatalf("the key survived the close: %+v", k)
	}
	entries := a.want("GET", "/admin/v1/accounts/bench/entries?limit=1", "", 200)["data"].([]any)
	if e := entries[0].(map[string]any); e["kind"] != "adjust" || e["amount"] != "-100" || e["reason"] != "account closed" {
		t.Fatalf("unexpected forfeit entry: %v", e)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/admin/v1/accounts/bench/topups", `{"amount":"1","order_id":"late","kind":"paid"}`},
		{"POST", "/admin/v1/accounts/bench/keys", `{}`},
		{"POST", "/admin/v1/accounts/bench/unfreeze", ""},
	} {
		if out := a.want(c.method, c.path, c.body, 409); errType(out) != "conflict_error" {
			t.Fatalf("%s %s: unexpected error %v", c.method, c.path, out)
		}
	}
	a.want("POST", "/admin/v1/adjustments", `{"account":"bench","amount":"5","reason":"goodwill refund"}`, 201)
	if again := a.want("POST", "/admin/v1/accounts/bench/close", "", 200); again["closed_at"] != closed["closed_at"] || again["available"] != "5" {
		t.Fatalf("unexpected repeat of the close: %v", again)
	}
	a.want("POST", "/admin/v1/accounts/nobody/close", "", 404)
}

// TestOperatorsAndRoles: operators act with their own tokens, recorded as
// "op:<id>", within their role: finance posts top-ups but freezes nothing,
// support answers disputes but posts no top-up, only the admin role
// manages operators; a revoked token or a disabled operator is 401.
func TestOperatorsAndRoles(t *testing.T) {
	a := newFixture(t)
	token := map[string]string{}
	for _, op := range []struct{ id, role string }{{"alice", "finance"}, {"bob", "support"}, {"carol", "admin"}} {
		a.want("POST", "/admin/v1/operators", fmt.Sprintf(`{"id":%q,"role":%q}`, op.id, op.role), 201)
		token[op.id] = a.want("POST", "/admin/v1/operators/"+op.id+"/tokens", "", 201)["token"].(string)
	}
	a.want("POST", "/admin/v1/operators", `{"id":"dave","role":"root"}`, 400)
	as := func(op, method, path, body string, status int) map[string]any {
		t.Helper()
		st, out, _ := a.doWith(token[op], method, path, body)
		if st != status {
			t.Fatalf("%s %s %s as %s: status %d %v; want %d", method, path, body, op, st, out, status)
		}
		return out
	}
	entry := as("alice", "POST", "/admin/v1/accounts/bench/topups", `{"amount":"1","order_id":"by-alice","kind":"paid"}`, 201)
	if entry["actor"] != "op:alice" {
		t.Fatalf("unexpected actor of an operator's top-up: %v", entry)
	}
	if out := as("alice", "POST", "/admin/v1/accounts/bench/freeze", "", 403); errType(out) != "permission_error" {
		t.Fatalf("unexpected refusal: %v", out)
	}
	as("alice", "POST", "/admin/v1/operators", `{"id":"eve","role":"admin"}`, 403)
	as("bob", "GET", "/admin/v1/accounts/bench", "", 200)
	as("bob", "POST", "/admin/v1/accounts/bench/topups", `{"amount":"1","order_id":"by-bob","kind":"paid"}`, 403)
	requestID := a.call("req_disputed")
	if _, _, err := a.led.FileDispute(ledger.Dispute{ID: "dsp_1", AccountID: "bench", RequestID: requestID, Reason: "cut off"}); err != nil {
		t.Fatal(err)
	}
	if d := as("bob", "POST", "/admin/v1/disputes/dsp_1/accept", "{}", 200); d["state"] != "accepted" || d["resolved_by"] != "op:bob" {
		t.Fatalf("unexpected acceptance by support: %v", d)
	}
	as("carol", "POST", "/admin/v1/accounts/bench/freeze", "", 204)
	toks := a.want("GET", "/admin/v1/operators/alice/tokens", "", 200)["data"].([]any)
	a.want("DELETE", "/admin/v1/operator-tokens/"+toks[0].(map[string]any)["id"].(string), "", 204)
	as("alice", "GET", "/admin/v1/accounts/bench", "", 401)
	a.want("PATCH", "/admin/v1/operators/bob", `{"disabled":true}`, 200)
	as("bob", "GET", "/admin/v1/accounts/bench", "", 401)
}

// TestSupportRefundsAtMostTheCharge: support may accept a dispute for up
// to the call's charge; more needs the money right (finance or admin).
func TestSupportRefundsAtMostTheCharge(t *testing.T) {
	f := newFixture(t)
	f.want("POST", "/admin/v1/operators", `{"id":"bob","role":"support"}`, 201)
	bob := f.want("POST", "/admin/v1/operators/bob/tokens", "", 201)["token"].(string)
	for _, id := range []string{"req_a", "req_b"} {
		f.call(id)
		if _, _, err := f.led.FileDispute(ledger.Dispute{ID: "dsp_" + id, AccountID: "bench", RequestID: id, Reason: "wrong"}); err != nil {
			t.Fatal(err)
		}
	}
	if st, out, _ := f.doWith(bob, "POST", "/admin/v1/disputes/dsp_req_a/accept", `{"amount":"1000"}`); st != 403 {
		t.Fatalf("support refunding above the charge: %d %v", st, out)
	}
	if st, out, _ := f.doWith(bob, "POST", "/admin/v1/disputes/dsp_req_a/accept", `{"amount":"0.0001"}`); st != 200 || out["refund"] != "0.0001" {
		t.Fatalf("support refunding part of the charge: %d %v", st, out)
	}
	f.want("POST", "/admin/v1/disputes/dsp_req_b/accept", `{"amount":"1000"}`, 200)
}

// TestInvitations: invitations to an account's console users and to an
// operator answer their link; a bad email is 400, an unknown account 404,
// a closed account 409; the account's users list them.
func TestInvitations(t *testing.T) {
	f := newFixture(t)
	w, err := wal.Open(t.TempDir(), wal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	users, err := access.OpenUsers(w)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.cfg.Users, f.srv.cfg.CustomerConsoleURL, f.srv.cfg.OperatorConsoleURL = users, "https://console.example", "https://ops.example"
	inv := f.want("POST", "/admin/v1/accounts/bench/invitations", `{"email":"ada@bench.test"}`, 201)
	if link, _ := inv["link"].(string); !strings.HasPrefix(link, "https://console.example/console/invite?token=tgi-") || inv["mailed"] != false {
		t.Fatalf("the invitation: %v", inv)
	}
	f.want("POST", "/admin/v1/accounts/bench/invitations", `{"email":"not an email"}`, 400)
	f.want("POST", "/admin/v1/accounts/nobody/invitations", `{"email":"ada@bench.test"}`, 404)
	if list := f.want("GET", "/admin/v1/accounts/bench/users", "", 200); len(list["invitations"].([]any)) != 1 {
		t.Fatalf("the account's users: %v", list)
	}
	f.want("POST", "/admin/v1/operators", `{"id":"olga","email":"olga@platform.test","role":"support"}`, 201)
	if op := f.want("POST", "/admin/v1/operators/olga/invitations", `{}`, 201); op["email"] != "olga@platform.test" ||
		!strings.HasPrefix(op["link"].(string), "https://ops.example/console/invite?") {
		t.Fatalf("the operator's invitation: %v", op)
	}
	f.want("POST", "/admin/v1/accounts/bench/close", "", 200)
	f.want("POST", "/admin/v1/accounts/bench/invitations", `{"email":"bob@bench.test"}`, 409)
}
