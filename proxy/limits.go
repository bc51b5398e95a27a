package proxy

import (
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Rate limits per key and per account: requests per minute and tokens per
// minute as token buckets, and calls in flight. Each bucket is one atomic
// int64 holding its "theoretical arrival time" (the generic cell rate
// algorithm): a request of cost c is admitted when the bucket's TAT is at most
// one minute ahead of now once moved c emission intervals further (an
// interval is a minute divided by the limit). So admission is a load and a
// compare-and-swap, with no lock and no allocation; a bucket refills
// continuously; and a correction (tokens counted at settlement instead of the
// estimate) is an atomic add.
//
// A call larger than a whole minute's budget is admitted when the bucket is
// full, and then blocks the bucket for as long as its tokens need: a large
// request is never refused forever.

// window is the span the limits are per.
const window = int64(time.Minute)

// bucket is a GCRA token bucket; the zero value is full.
type bucket struct{ tat atomic.Int64 }

// take debits cost at now if the bucket has room and reports whether it did;
// otherwise it returns how long until it would.
func (b *bucket) take(limit, cost, now int64) (bool, time.Duration) {
	if limit <= 0 {
		return true, 0
	}
	interval := window / limit
	for {
		tat := b.tat.Load()
		next := max(tat, now) + cost*interval
		if next-now > window && tat > now {
			return false, time.Duration(next - now - window)
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true, 0
		}
	}
}

// adjust corrects an earlier debit by delta units (negative: give back).
func (b *bucket) adjust(limit, delta int64) {
	if limit > 0 && delta != 0 {
		b.tat.Add(delta * (window / limit))
	}
}

// remaining is how many units the bucket would admit now, and when it is full.
func (b *bucket) remaining(limit, now int64) (int64, int64) {
	if limit <= 0 {
		return 0, now
	}
	interval := window / limit
	used := max(b.tat.Load(), now) - now
	return max(0, (window-used)/interval), now + used
}

// limitState is the live state of one key's or account's limits.
type limitState struct {
	requests, tokens bucket
	inflight         atomic.Int64
}

// limitShards bounds lock contention on the state maps; states are created
// once per key or account and never removed (their number is bounded by the
// keys and accounts that exist).
const limitShards = 64

type limitTable struct {
	seed   maphash.Seed
	shards [limitShards]struct {
		sync.RWMutex
		m map[string]*limitState
		_ [cacheLinePad]byte
	}
}

func newLimitTable() *limitTable {
	t := &limitTable{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = map[string]*limitState{}
	}
	return t
}

func (t *limitTable) get(id string) *limitState {
	s := &t.shards[maphash.String(t.seed, id)%limitShards]
	s.RLock()
	st := s.m[id]
	s.RUnlock()
	if st != nil {
		return st
	}
	s.Lock()
	defer s.Unlock()
	if st = s.m[id]; st == nil {
		st = new(limitState)
		s.m[id] = st
	}
	return st
}

const cacheLinePad = 128

// effective resolves a limit that says "default" (-1).
func effective(v, def int64) int64 {
	if v < 0 {
		return def
	}
	return v
}

// admission is what a call took from its key's and account's limits, to be
// corrected at settlement and released at the end.
type admission struct {
	key, account          *limitState
	keyLimits, acctLimits Limits
	tokens                int64
	slots                 bool
}

// limitRefusal describes a 429: which limit (scope "key" or "account", kind
// "concurrency", "rpm" or "tpm") and how long until it would pass.
type limitRefusal struct {
	scope, kind string
	retryAfter  time.Duration
}

var limitNames = map[string]string{"concurrency": "concurrency limit", "rpm": "requests-per-minute limit", "tpm": "tokens-per-minute limit"}

// admit takes a slot and the request and token estimates from the key's and
// the account's limits, all or nothing.
func (a *admission) admit(tokens, now int64) *limitRefusal {
	a.tokens = tokens
	type check struct {
		st     *limitState
		limits Limits
		who    string
	}
	checks := [2]check{{a.key, a.keyLimits, "key"}, {a.account, a.acctLimits, "account"}}
	// Concurrency first: it is released at settlement, whatever happens.
	for i, c := range checks {
		if c.limits.Concurrency > 0 && c.st.inflight.Add(1) > c.limits.Concurrency {
			c.st.inflight.Add(-1)
			for _, p := range checks[:i] {
				if p.limits.Concurrency > 0 {
					p.st.inflight.Add(-1)
				}
			}
			return &limitRefusal{scope: c.who, kind: "concurrency", retryAfter: time.Second}
		}
	}
	a.slots = true
	for i, c := range checks {
		if ok, wait := c.st.requests.take(c.limits.RPM, 1, now); !ok {
			for _, p := range checks[:i] {
				p.st.requests.adjust(p.limits.RPM, -1)
			}
			a.release()
			return &limitRefusal{scope: c.who, kind: "rpm", retryAfter: wait}
		}
	}
	for i, c := range checks {
		if ok, wait := c.st.tokens.take(c.limits.TPM, tokens, now); !ok {
			for _, p := range checks[:i] {
				p.st.tokens.adjust(p.limits.TPM, -tokens)
			}
			for _, p := range checks {
				p.st.requests.adjust(p.limits.RPM, -1)
			}
			a.release()
			return &limitRefusal{scope: c.who, kind: "tpm", retryAfter: wait}
		}
	}
	return nil
}

// settle replaces the token estimate by the tokens the call used.
func (a *admission) settle(used int64) {
	if a.key == nil {
		return
	}
	d := used - a.tokens
	a.key.tokens.adjust(a.keyLimits.TPM, d)
	a.account.tokens.adjust(a.acctLimits.TPM, d)
	a.tokens = used
}

// release gives the concurrency slots back; safe to call more than once.
func (a *admission) release() {
	if !a.slots {
		return
	}
	a.slots = false
	if a.keyLimits.Concurrency > 0 {
		a.key.inflight.Add(-1)
	}
	if a.acctLimits.Concurrency > 0 {
		a.account.inflight.Add(-1)
	}
}

// setHeaders writes anthropic-ratelimit-* headers for the key's own limits.
func (a *admission) setHeaders(h *fasthttp.ResponseHeader, now int64, buf []byte) []byte {
	if a.key == nil {
		return buf
	}
	set := func(names *[3]string, limit int64, b *bucket) {
		if limit <= 0 {
			return
		}
		rem, full := b.remaining(limit, now)
		buf = strconv.AppendInt(buf[:0], limit, 10)
		h.SetBytesV(names[0], buf)
		buf = strconv.AppendInt(buf[:0], rem, 10)
		h.SetBytesV(names[1], buf)
		buf = time.Unix(0, full).UTC().AppendFormat(buf[:0], time.RFC3339)
		h.SetBytesV(names[2], buf)
	}
	set(&requestHeaders, a.keyLimits.RPM, &a.key.requests)
	set(&tokenHeaders, a.keyLimits.TPM, &a.key.tokens)
	return buf
}

var (
	requestHeaders = [3]string{"anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"}
	tokenHeaders   = [3]string{"anthropic-ratelimit-tokens-limit", "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"}
)

// retryAfterSeconds rounds a wait up to whole seconds (at least 1).
func retryAfterSeconds(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Seconds())))
}
