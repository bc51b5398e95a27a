package proxy_test

import (
	"math/big"
	"net/http"
	"testing"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/proxy/simulator"
)

// TestOverrunDebt: a call whose usage exceeds its hold is charged in full;
// what the credit cannot cover makes available negative, new calls are
// refused with 402 while it is, and the next top-up repays the debt first.
func TestOverrunDebt(t *testing.T) {
	h := newHarness(t)
	// A million cache-write tokens: 1.25 credits, far above the hold of a
	// request this short.
	body := messagesBody("hello there [[sim:cache_write=1000000]]", 10, true)
	hold := holdFor(t, body)
	a := h.newAccount(money.Format(hold))
	price := haikuPrice(expectedUsage(t, body))
	if price <= hold {
		t.Fatalf("the test needs a charge above the hold; got %d <= %d", price, hold)
	}
	resp, evs, c := h.streamCall(a, body)
	if evs[len(evs)-1].Name != "message_stop" || resp.StatusCode != 200 {
		t.Fatalf("unexpected stream %v", eventNames(evs))
	}
	h.checkSettled(a, c, "ok", price)
	b := h.balance(a)
	if b.Available != hold-price || b.Held != 0 {
		t.Fatalf("unexpected balance after the overrun; got %+v; want available %d (negative), held 0", b, hold-price)
	}

	// In debt: refused before forwarding.
	forwarded := h.sim.Stats().Messages
	resp2, rb := h.post("/v1/messages", a.Key, messagesBody("hello", 10, false), nil)
	checkError(t, resp2, rb, http.StatusPaymentRequired, "billing_error")
	if got := h.sim.Stats().Messages; got != forwarded {
		t.Fatalf("unexpected call forwarded while in debt")
	}

	// A top-up repays the debt first.
	h.topUp(a, "2")
	if b := h.balance(a); b.Available != a.TopUps-price {
		t.Fatalf("unexpected balance after the top-up; got %d; want %d", b.Available, a.TopUps-price)
	}
	resp3, rb := h.post("/v1/messages", a.Key, messagesBody("hello", 10, false), nil)
	if resp3.StatusCode != http.StatusOK {
		t.Fatalf("unexpected status after repaying the debt; got %d; want 200; body %s", resp3.StatusCode, rb)
	}
	if _, err := h.led.Check(); err != nil {
		t.Fatalf("ledger invariants broken: %s", err)
	}
}

// multipliedPrice is ceil(the list price of u × num / den), rounded once.
func multipliedPrice(u simulator.Usage, num, den int64) int64 {
	h1 := min(u.CacheCreation.Ephemeral1hInputTokens, u.CacheCreationInputTokens)
	m5 := u.CacheCreationInputTokens - h1
	perMillion := u.InputTokens*haikuInputPerMTok + u.OutputTokens*haikuOutputPerMTok +
		m5*haikuWrite5mPerMTok + h1*haikuWrite1hPerMTok + u.CacheReadInputTokens*haikuReadPerMTok +
		u.ServerToolUse.WebSearchRequests*webSearchPerSearch*1_000_000
	n := new(big.Int).Mul(big.NewInt(perMillion), big.NewInt(num))
	d := new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(den))
	n.Add(n, d).Sub(n, big.NewInt(1))
	return n.Quo(n, d).Int64()
}

// TestAccountMultiplier: the account's multiplier scales the price, rounded
// up once per call.
func TestAccountMultiplier(t *testing.T) {
	h := newHarness(t)
	var created struct {
		ID         string `json:"id"`
		Multiplier string `json:"multiplier"`
	}
	h.admin(http.MethodPost, "/admin/v1/accounts", map[string]any{"multiplier": "1.333333333"}, http.StatusCreated, &created)
	a := &account{ID: created.ID}
	h.topUp(a, "10")
	a.KeyID, a.Key = h.mintKey(a.ID)
	for _, text := range []string{
		"one two three [[sim:cache=1h,cache_write=7,cache_read=3]]",
		"one two three four five six seven [[sim:web_search=1,cache_write=11]]",
	} {
		body := messagesBody(text, 100, true)
		before := h.balance(a)
		_, _, c := h.streamCall(a, body)
		u := expectedUsage(t, body)
		price := multipliedPrice(u, 1_333_333_333, 1_000_000_000)
		h.checkSettled(a, c, "ok", price)
		// What the platform pays the upstream is the list price, without
		// the customer's multiplier.
		if got := mustAmount(t, c.UpstreamCost); got != haikuPrice(u) {
			t.Fatalf("unexpected upstream_cost; got %d; want %d", got, haikuPrice(u))
		}
		if after := h.balance(a); before.Available-after.Available != price {
			t.Fatalf("unexpected balance change for %q; got %d; want %d", text, before.Available-after.Available, price)
		}
	}
}
