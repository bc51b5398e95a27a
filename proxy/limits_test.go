package proxy

import (
	"math"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	var b bucket
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	// 60 per minute: 60 at once, then one per second.
	for i := range 60 {
		if ok, _ := b.take(60, 1, now); !ok {
			t.Fatalf("request %d refused within the burst", i)
		}
	}
	ok, wait := b.take(60, 1, now)
	if ok || wait != time.Second {
		t.Fatalf("unexpected 61st request; got ok=%v wait=%s; want refused, wait 1s", ok, wait)
	}
	if rem, full := b.remaining(60, now); rem != 0 || full != now+int64(time.Minute) {
		t.Fatalf("unexpected remaining; got %d full at %d", rem, full)
	}
	if ok, _ := b.take(60, 1, now+int64(time.Second)); !ok {
		t.Fatalf("a request one second later must pass")
	}
	// Giving back restores room at once.
	b.adjust(60, -1)
	if ok, _ := b.take(60, 1, now+int64(time.Second)); !ok {
		t.Fatalf("a request after a give-back must pass")
	}
	// Unlimited.
	if ok, _ := b.take(0, 1<<40, now); !ok {
		t.Fatalf("limit 0 means unlimited")
	}
	// A request larger than a minute's budget passes when the bucket is full
	// and then blocks it for as long as it needs.
	var big bucket
	if ok, _ := big.take(1000, 5000, now); !ok {
		t.Fatalf("a large request on a full bucket must pass")
	}
	if ok, wait := big.take(1000, 1, now+int64(time.Minute)); ok || wait != 3*time.Minute+60*time.Millisecond {
		t.Fatalf("unexpected wait after a large request; got ok=%v wait=%s", ok, wait)
	}
}

// admitAll admits a call as the messages handler does: slot and request,
// then tokens, all or nothing.
func admitAll(a *admission, tokens, now int64) *limitRefusal {
	if r := a.admitCall(now); r != nil {
		return r
	}
	if r := a.admitTokens(tokens, now); r != nil {
		a.refundRequest()
		a.release()
		return r
	}
	return nil
}

func TestAdmissionAllOrNothing(t *testing.T) {
	now := time.Now().UnixNano()
	key, acct := new(limitState), new(limitState)
	a := admission{key: key, account: acct, keyLimits: Limits{RPM: 10, TPM: 1000, Concurrency: 2}, acctLimits: Limits{RPM: 100, TPM: 500, Concurrency: 1}}
	if r := admitAll(&a, 400, now); r != nil {
		t.Fatalf("first call refused: %+v", r)
	}
	b := admission{key: key, account: acct, keyLimits: a.keyLimits, acctLimits: a.acctLimits}
	if r := admitAll(&b, 10, now); r == nil || r.scope+" "+r.kind != "account concurrency" {
		t.Fatalf("unexpected second call; got %+v; want the account concurrency limit", r)
	}
	if key.inflight.Load() != 1 || acct.inflight.Load() != 1 {
		t.Fatalf("a refusal must give back the key's slot; key %d account %d", key.inflight.Load(), acct.inflight.Load())
	}
	a.settle(100) // used 100 of the 400 estimated
	a.release()
	a.release() // twice is harmless
	if key.inflight.Load() != 0 || acct.inflight.Load() != 0 {
		t.Fatalf("slots not released; key %d account %d", key.inflight.Load(), acct.inflight.Load())
	}
	// The account's token bucket (500/min) holds 100 after the correction: 400 more fit, 401 do not.
	c := admission{key: key, account: acct, keyLimits: a.keyLimits, acctLimits: a.acctLimits}
	if r := admitAll(&c, 401, now); r == nil || r.scope+" "+r.kind != "account tpm" {
		t.Fatalf("unexpected call; got %+v; want the account token limit", r)
	}
	if rem, _ := key.requests.remaining(10, now); rem != 9 {
		t.Fatalf("a refused call must give back its request; key has %d of 10 left", rem)
	}
	if r := admitAll(&c, 400, now); r != nil {
		t.Fatalf("unexpected refusal: %+v", r)
	}
	c.release()
}

// TestBucketSaturates: a huge request on a tiny limit blocks the bucket for
// a long time instead of wrapping it around to "full".
func TestBucketSaturates(t *testing.T) {
	now := time.Now().UnixNano()
	var b bucket
	if ok, _ := b.take(1, math.MaxInt64/2, now); !ok {
		t.Fatalf("a request on a full bucket must pass")
	}
	if ok, wait := b.take(1, 1, now); ok || wait <= 0 {
		t.Fatalf("unexpected admission after a huge request; got ok=%v wait=%s", ok, wait)
	}
	b.adjust(1, math.MaxInt64) // a correction cannot wrap either
	if ok, _ := b.take(1, 1, now); ok {
		t.Fatalf("unexpected admission after a saturated correction")
	}
	b.adjust(1, math.MinInt64)
	if ok, _ := b.take(1, 1, now); !ok {
		t.Fatalf("a bucket given everything back must admit")
	}
}
