package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/money"
)

// TestConcurrentHolds: 500 concurrent streaming calls on one account whose
// balance covers only 20 holds. The holds fit atomically: no overdraft, the
// rest answered 402 without reaching the upstream; afterwards no hold is
// open, the charges add up and conservation holds.
func TestConcurrentHolds(t *testing.T) {
	const calls, fit = 500, 20
	h := newHarness(t)
	// The upstream waits 2 s before answering, so the holds of the calls
	// admitted stay open while the others arrive.
	body := messagesBody("one two three four [[sim:ttfb=2s]]", 50, true)
	hold := holdFor(t, body)
	a := h.newAccount(money.Format(fit*hold + hold - 1))
	price := haikuPrice(expectedUsage(t, body))
	if price >= hold {
		t.Fatalf("the test needs a charge below the hold; got %d >= %d", price, hold)
	}
	simBefore := h.sim.Stats().Messages

	tr := &http.Transport{MaxIdleConnsPerHost: calls, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	type result struct {
		status  int
		body    []byte
		err     error
		headAt  time.Time
		reqID   string
		errType string
	}
	results := make([]result, calls)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.clientURL+"/v1/messages", bytes.NewReader(body))
			if err != nil {
				r.err = err
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Anthropic-Version", "2023-06-01")
			req.Header.Set("X-Api-Key", a.Key)
			<-start
			resp, err := client.Do(req)
			if err != nil {
				r.err = err
				return
			}
			r.headAt = time.Now()
			r.status = resp.StatusCode
			r.reqID = resp.Header.Get("request-id")
			r.body, r.err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if r.status != http.StatusOK {
				var e apiError
				if json.Unmarshal(r.body, &e) == nil {
					r.errType = e.Error.Type
				}
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()

	ok, refused := 0, 0
	var firstOK, lastRefused time.Time
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("call %d failed: %s", i, r.err)
		}
		switch r.status {
		case http.StatusOK:
			ok++
			if !bytes.HasSuffix(r.body, []byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")) {
				t.Fatalf("call %d: unexpected stream end %q", i, r.body[max(0, len(r.body)-80):])
			}
			if firstOK.IsZero() || r.headAt.Before(firstOK) {
				firstOK = r.headAt
			}
		case http.StatusPaymentRequired:
			refused++
			if r.errType != "billing_error" {
				t.Fatalf("call %d: unexpected 402 body %s", i, r.body)
			}
			if r.headAt.After(lastRefused) {
				lastRefused = r.headAt
			}
		default:
			t.Fatalf("call %d: unexpected status %d; body %s", i, r.status, r.body)
		}
	}
	t.Logf("%d calls: %d answered 200, %d answered 402; last 402 after %s, first 200 after %s",
		calls, ok, refused, lastRefused.Sub(began), firstOK.Sub(began))
	if ok < fit || ok+refused != calls {
		t.Fatalf("unexpected outcome counts; got %d ok, %d refused; want at least %d ok and the rest refused", ok, refused, fit)
	}
	// A hold ends only after its upstream answered (ttfb later); when every
	// refusal came before any answer, exactly the holds that fit were taken.
	if lastRefused.Before(firstOK) && ok != fit {
		t.Fatalf("unexpected number of calls admitted while %d holds were open; got %d; want %d", fit, ok, fit)
	}
	if got := h.sim.Stats().Messages - simBefore; got != int64(ok) {
		t.Fatalf("unexpected calls forwarded; got %d; want %d (refusals are not forwarded)", got, ok)
	}

	// Afterwards: every hold ended, the charges add up, conservation holds.
	if open := h.led.OpenHolds(); len(open) != 0 {
		t.Fatalf("unexpected open holds: %+v", open)
	}
	if _, err := h.led.Check(); err != nil {
		t.Fatalf("ledger invariants broken: %s", err)
	}
	info, err := h.led.Account(a.ID)
	if err != nil {
		t.Fatalf("cannot read the account: %s", err)
	}
	if info.Available < 0 || info.Held != 0 || info.OpenHolds != 0 {
		t.Fatalf("unexpected account state: available %d, held %d, open holds %d", info.Available, info.Held, info.OpenHolds)
	}
	if info.Charged != int64(ok)*price {
		t.Fatalf("unexpected total charged; got %d; want %d calls × %d", info.Charged, ok, price)
	}
	if info.TopUps+info.Adjusted-info.Expired != info.Available+info.Held+info.Charged || info.TopUps != a.TopUps {
		t.Fatalf("conservation broken: top-ups %d + adjusted %d - expired %d != available %d + held %d + charged %d",
			info.TopUps, info.Adjusted, info.Expired, info.Available, info.Held, info.Charged)
	}
	if b := h.balance(a); b.Available != a.TopUps-info.Charged || b.Held != 0 {
		t.Fatalf("unexpected balance; got %+v; want %d available", b, a.TopUps-info.Charged)
	}

	// The records and the entries say the same.
	var charged int64
	outcomes := map[string]int{}
	for _, c := range h.accountCalls(a.ID) {
		outcomes[c.Outcome+"/"+http.StatusText(c.Status)]++
		charged += mustAmount(t, c.Charged)
		if c.Outcome == "ok" && mustAmount(t, c.Charged) != price {
			t.Fatalf("unexpected charge of %s; got %s; want %d", c.RequestID, c.Charged, price)
		}
	}
	if outcomes["ok/OK"] != ok || outcomes["rejected/Payment Required"] != refused || len(outcomes) != 2 || charged != info.Charged {
		t.Fatalf("unexpected call records; got %v charging %d; want %d ok and %d rejected charging %d", outcomes, charged, ok, refused, info.Charged)
	}
	kinds := map[string]int{}
	for _, e := range h.entries(a.ID) {
		kinds[e.Kind]++
		if mustAmount(t, e.AvailableAfter) < 0 {
			t.Fatalf("unexpected negative available after entry %+v", e)
		}
	}
	if kinds["hold"] != ok || kinds["settle"] != ok || kinds["void"] != 0 || kinds["topup"] != 1 {
		t.Fatalf("unexpected entries; got %v; want %d holds, %d settles, 1 top-up", kinds, ok, ok)
	}
}
