package proxy

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/admin"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/valyala/fasthttp"
)

// limitedKey mints a key of the fixture's account with the given limits.
func (f *pathFixture) limitedKey(t *testing.T, lim ledger.Limits) string {
	t.Helper()
	secret, _, err := admin.MintKey(f.g.Ledger(), ledger.Key{AccountID: "bench", Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func (f *pathFixture) callWith(t *testing.T, key string, body []byte) *fasthttp.Response {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	req.Header.SetMethod("POST")
	req.SetRequestURI("http://gateway/v1/messages")
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.SetContentType("application/json")
	req.SetBody(body)
	if err := f.client.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestLimitsRPM(t *testing.T) {
	f := newPathFixture(t, false)
	key := f.limitedKey(t, ledger.Limits{RPM: 3, TPM: -1, Concurrency: -1})
	for i := range 3 {
		resp := f.callWith(t, key, f.body)
		if resp.StatusCode() != 200 {
			t.Fatalf("call %d: unexpected status %d", i, resp.StatusCode())
		}
		if got, want := string(resp.Header.Peek("anthropic-ratelimit-requests-remaining")), []string{"2", "1", "0"}[i]; got != want {
			t.Fatalf("call %d: unexpected remaining; got %q; want %q", i, got, want)
		}
		if string(resp.Header.Peek("anthropic-ratelimit-requests-limit")) != "3" || len(resp.Header.Peek("anthropic-ratelimit-requests-reset")) == 0 {
			t.Fatalf("call %d: rate-limit headers missing", i)
		}
		fasthttp.ReleaseResponse(resp)
	}
	resp := f.callWith(t, key, f.body)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 429 || !strings.Contains(string(resp.Body()), `"rate_limit_error"`) || string(resp.Header.Peek("retry-after")) != "20" {
		t.Fatalf("unexpected 4th call: %d retry-after=%q %s", resp.StatusCode(), resp.Header.Peek("retry-after"), resp.Body())
	}
	// Another key of another account is unaffected.
	other := f.callWith(t, f.key, f.body)
	if other.StatusCode() != 200 {
		t.Fatalf("another key was limited: %d", other.StatusCode())
	}
	fasthttp.ReleaseResponse(other)
}

func TestLimitsTPMCorrectedAtSettlement(t *testing.T) {
	f := newPathFixture(t, false)
	// The estimate of one call is its input estimate plus max_tokens (256);
	// the actual use is 27 + 40 tokens. A TPM of 600 admits two estimates at
	// once, and more once the corrections give the difference back.
	key := f.limitedKey(t, ledger.Limits{RPM: -1, TPM: 600, Concurrency: -1})
	ok := 0
	for range 6 {
		resp := f.callWith(t, key, f.body)
		if resp.StatusCode() == 200 {
			ok++
		} else if resp.StatusCode() != 429 {
			t.Fatalf("unexpected status %d", resp.StatusCode())
		}
		fasthttp.ReleaseResponse(resp)
	}
	// Calls run one after the other, each settled before the next: call n
	// is admitted while (n-1)·67 used + its estimate fit in 600. Without the
	// corrections only 600/estimate calls would be.
	var r meter.Request
	if err := meter.InspectRequest(f.body, &r); err != nil {
		t.Fatal(err)
	}
	estimate := r.EstimatedInputTokens + r.MaxTokens
	want := 0
	for n := int64(0); n < 6 && n*67+estimate <= 600; n++ {
		want++
	}
	if ok != want || want <= int(600/estimate) {
		t.Fatalf("token corrections at settlement not applied: %d of 6 calls admitted; want %d (estimate %d)", ok, want, estimate)
	}
	big := []byte(`{"model":"claude-haiku-4-5","max_tokens":1000,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	first := f.callWith(t, key, big) // admitted: the bucket has room for it, then owes
	fasthttp.ReleaseResponse(first)
	resp := f.callWith(t, key, big)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 429 || len(resp.Header.Peek("anthropic-ratelimit-tokens-remaining")) == 0 {
		t.Fatalf("unexpected status over the token limit: %d %s", resp.StatusCode(), resp.Body())
	}
}

func TestLimitsConcurrencyReleasedOnEveryEnding(t *testing.T) {
	f := newPathFixture(t, false)
	key := f.limitedKey(t, ledger.Limits{RPM: -1, TPM: -1, Concurrency: 2})
	var wg sync.WaitGroup
	statuses := make(chan int, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := f.callWith(t, key, f.body)
			statuses <- resp.StatusCode()
			fasthttp.ReleaseResponse(resp)
		}()
	}
	wg.Wait()
	close(statuses)
	seen := map[int]int{}
	for s := range statuses {
		seen[s]++
	}
	if seen[200] == 0 || seen[200]+seen[429] != 20 {
		t.Fatalf("unexpected statuses under a concurrency limit of 2: %v", seen)
	}
	// Every slot came back: two calls at once pass afterwards.
	st := f.g.keyLimits.get(f.g.ledger.KeyByHash(ids.HashKey([]byte(key))).ID)
	if n := st.inflight.Load(); n != 0 {
		t.Fatalf("concurrency slots leaked: %d", n)
	}
	// A refused call (402: the hold does not fit) releases its slot too.
	if _, err := f.g.ledger.CreateAccount(ledger.AccountSpec{ID: "poor", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	poor, _, err := admin.MintKey(f.g.Ledger(), ledger.Key{AccountID: "poor", Limits: ledger.Limits{RPM: -1, TPM: -1, Concurrency: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		resp := f.callWith(t, poor, f.body)
		if resp.StatusCode() != 402 {
			t.Fatalf("unexpected status for an empty account: %d", resp.StatusCode())
		}
		fasthttp.ReleaseResponse(resp)
	}
}

func TestKeySpendLimitOverHTTP(t *testing.T) {
	f := newPathFixture(t, false)
	secret, _, err := admin.MintKey(f.g.Ledger(), ledger.Key{AccountID: "bench", Limits: ledger.DefaultLimits, SpendLimit: 2_000_000, SpendPeriod: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Each call holds 0.001308 and is charged 0.000227 credits: the hold of
	// the next call fits while charges + hold stay within 0.002.
	statuses := []int{}
	for range 5 {
		resp := f.callWith(t, secret, f.body)
		statuses = append(statuses, resp.StatusCode())
		if resp.StatusCode() == 402 && !strings.Contains(string(resp.Body()), "spend limit") {
			t.Fatalf("unexpected 402: %s", resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
	}
	// Charges 0, 0.000227, ... 0.000908 plus a hold of 0.001308: the fifth
	// call would reach 0.002216.
	if fmt.Sprint(statuses) != "[200 200 200 200 402]" {
		t.Fatalf("unexpected statuses under a spend limit: %v", statuses)
	}
}
