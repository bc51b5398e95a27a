package proxy

import (
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/ledger"
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
// otherwise it returns how long until it would. The arithmetic saturates: a
// huge cost on a tiny limit blocks the bucket for a long time, never wraps.
func (b *bucket) take(limit, cost, now int64) (bool, time.Duration) {
	if limit <= 0 {
		return true, 0
	}
	debit := mulSat(cost, window/limit)
	for {
		tat := b.tat.Load()
		next := addSat(max(tat, now), debit)
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
	if limit <= 0 || delta == 0 {
		return
	}
	d := mulSat(delta, window/limit)
	for {
		tat := b.tat.Load()
		if b.tat.CompareAndSwap(tat, addSat(tat, d)) {
			return
		}
	}
}

// mulSat is a*b, saturated to the int64 range (b > 0).
func mulSat(a, b int64) int64 {
	switch {
	case a > 0 && a > math.MaxInt64/b:
		return math.MaxInt64
	case a < 0 && a < math.MinInt64/b:
		return math.MinInt64
	}
	return a * b
}

// addSat is a+b, saturated to the int64 range.
func addSat(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
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

// limitState is the live state of one key's or account's limits. The
// count_tokens and read buckets are used on keys only.
type limitState struct {
	requests, tokens   bucket
	countTokens, reads bucket
	inflight           atomic.Int64
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
// corrected at settlement, given back when the call is refused later, and
// released at the end.
type admission struct {
	key, account          *limitState
	keyLimits, acctLimits Limits
	// tokens is what the call took from the token buckets.
	tokens int64
	// slots and request are set while the call holds a concurrency slot and
	// a request of the requests-per-minute buckets.
	slots, request bool
}

// admissionOf resolves the limits of key k and its account's settings st
// (a limit that says "default" takes the configured one).
func (g *Gateway) admissionOf(k *ledger.Key, st *ledger.AccountSettings) admission {
	kd, ad, n := g.cfg.DefaultKeyLimits, g.cfg.DefaultAccountLimits, g.limitShare.Load()
	return admission{
		key: g.keyLimits.get(k.ID), account: g.accountLimits.get(k.AccountID),
		keyLimits:  Limits{RPM: share(effective(k.Limits.RPM, kd.RPM), n), TPM: share(effective(k.Limits.TPM, kd.TPM), n), Concurrency: share(effective(k.Limits.Concurrency, kd.Concurrency), n)},
		acctLimits: Limits{RPM: share(effective(st.Limits.RPM, ad.RPM), n), TPM: share(effective(st.Limits.TPM, ad.TPM), n), Concurrency: share(effective(st.Limits.Concurrency, ad.Concurrency), n)},
	}
}

// ShareLimits makes this gateway apply 1/nodes of every key's and
// account's limits, rounded up (cluster mode: the other nodes apply the
// rest). Across nodes that a balancer loads evenly the limits then hold to
// within nodes-1 of each; a client served by one node only gets its share.
func (g *Gateway) ShareLimits(nodes int64) { g.limitShare.Store(nodes) }

// share is this node's share of limit among n nodes (0, unlimited, stays).
func share(limit, n int64) int64 {
	if n <= 1 || limit <= 0 {
		return limit
	}
	return (limit + n - 1) / n
}

// limitRefusal describes a 429: which limit (scope "key" or "account", kind
// "concurrency", "rpm", "tpm", "count_tokens_rpm" or "read_rpm") and how long
// until it would pass.
type limitRefusal struct {
	scope, kind string
	retryAfter  time.Duration
}

var limitNames = map[string]string{
	"concurrency": "concurrency limit", "rpm": "requests-per-minute limit", "tpm": "tokens-per-minute limit",
	"count_tokens_rpm": "count_tokens requests-per-minute limit", "read_rpm": "read requests-per-minute limit",
}

type limitCheck struct {
	st     *limitState
	limits Limits
	who    string
}

func (a *admission) checks() [2]limitCheck {
	return [2]limitCheck{{a.key, a.keyLimits, "key"}, {a.account, a.acctLimits, "account"}}
}

// admitCall takes a concurrency slot and a request from the key's and the
// account's limits, all or nothing: the checks that need no request body.
func (a *admission) admitCall(now int64) *limitRefusal {
	if r := a.takeSlots(); r != nil {
		return r
	}
	checks := a.checks()
	for i, c := range checks {
		if ok, wait := c.st.requests.take(c.limits.RPM, 1, now); !ok {
			for _, p := range checks[:i] {
				p.st.requests.adjust(p.limits.RPM, -1)
			}
			a.release()
			return &limitRefusal{scope: c.who, kind: "rpm", retryAfter: wait}
		}
	}
	a.request = true
	return nil
}

// takeSlots takes a concurrency slot of the key and of the account, both or
// neither. Concurrency comes first: it is released at the end, whatever
// happens.
func (a *admission) takeSlots() *limitRefusal {
	checks := a.checks()
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
	return nil
}

// admitTokens takes the request's token estimate from the key's and the
// account's tokens-per-minute buckets, both or neither.
func (a *admission) admitTokens(tokens, now int64) *limitRefusal {
	checks := a.checks()
	for i, c := range checks {
		if ok, wait := c.st.tokens.take(c.limits.TPM, tokens, now); !ok {
			for _, p := range checks[:i] {
				p.st.tokens.adjust(p.limits.TPM, -tokens)
			}
			return &limitRefusal{scope: c.who, kind: "tpm", retryAfter: wait}
		}
	}
	a.tokens = tokens
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

// refundTokens gives the token estimate back: the call was refused after
// admission and used nothing.
func (a *admission) refundTokens() { a.settle(0) }

// refundRequest gives the request back to the requests-per-minute buckets:
// the gateway refused the call for a reason of its own.
func (a *admission) refundRequest() {
	if !a.request {
		return
	}
	a.request = false
	for _, c := range a.checks() {
		c.st.requests.adjust(c.limits.RPM, -1)
	}
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
