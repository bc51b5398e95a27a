package upstream

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tollgate/tollgate/meter"
)

// Routing: which upstreams a call may go to, in which order, and which of
// them are taken out for a while.
//
// A call's candidates are the configured upstreams whose kind the catalogue
// lists for its model (and that have not retired it). They are ordered by
// priority (lower first) and, among equal priorities, by weighted rendezvous
// hashing: each upstream scores weight / -ln(h), h a hash of (key, upstream)
// mapped into (0, 1), and the highest score goes first. With the account as
// the key (sticky routing), an account stays on one upstream while it is
// healthy, so its prompt caches keep hitting, and accounts spread over the
// upstreams in proportion to their weights; with the request ID as the key,
// each call is spread by weight on its own. Rendezvous hashing needs no
// state and moves only the keys of an upstream that leaves or returns.
//
// Health: an upstream that fails maxFailures times in a row (a connection
// error, 429, 5xx or 529, or an error about the platform's own account) is
// taken out for the backoff period; a call it would have served goes to the
// next candidate. When every candidate is out, all of them are tried anyway,
// in the same order: refusing every call would be worse than trying an
// upstream that may have recovered. After the period the upstream is tried
// again; its next failure takes it out again at once, its next success
// clears the count. Rejected: active health probes (they cost upstream
// calls and still miss per-model failures) and per-model health (more state
// for a failure mode, one model down on one account, that the error answers
// already route around).
//
// Failover happens only before the client has seen a byte (forward), so the
// customer is charged once, by the upstream that served.

// MaxRoutes bounds the configured upstreams: a call's candidates live in
// a fixed array in the call, so ordering them never allocates.
const MaxRoutes = 16

// Route is one candidate upstream of a call with the model's ID there.
type Route struct {
	Up      *Upstream
	ModelID string
}

// upstreamHealth is the failure state of one upstream. Safe for concurrent
// use; the success path only reads unless there was a failure to clear.
type upstreamHealth struct {
	// failures counts consecutive failures.
	failures atomic.Int64
	// downUntilNanos is when the upstream comes back (Unix nanoseconds); 0
	// or past when it is in service.
	downUntilNanos atomic.Int64
}

// upstreamMetrics are one upstream's series; the label is the configured
// name, a bounded set.
type upstreamMetrics struct {
	ok, failed, ejected *metrics.Counter
	up                  *metrics.Gauge
}

func newUpstreamMetrics(name string) upstreamMetrics {
	m := upstreamMetrics{
		ok:      metrics.GetOrCreateCounter(`tollgate_upstream_attempts_total{upstream="` + name + `",result="ok"}`),
		failed:  metrics.GetOrCreateCounter(`tollgate_upstream_attempts_total{upstream="` + name + `",result="failed"}`),
		ejected: metrics.GetOrCreateCounter(`tollgate_upstream_ejections_total{upstream="` + name + `"}`),
		up:      metrics.GetOrCreateGauge(`tollgate_upstream_up{upstream="`+name+`"}`, nil),
	}
	m.up.Set(1)
	return m
}

// inService reports whether u is not taken out at now.
func (u *Upstream) inService(now int64) bool {
	return u.health.downUntilNanos.Load() <= now
}

// Succeeded records an answer that was not a failure.
func (u *Upstream) Succeeded() {
	u.metrics.ok.Inc()
	if u.health.failures.Load() != 0 {
		u.health.failures.Store(0)
	}
	if u.health.downUntilNanos.Load() != 0 {
		u.health.downUntilNanos.Store(0)
		u.metrics.up.Set(1)
	}
}

// Failed records a failure at now and takes u out for backoff once it has
// failed maxFailures times in a row.
func (u *Upstream) Failed(now time.Time, maxFailures int, backoff time.Duration) {
	u.metrics.failed.Inc()
	if u.health.failures.Add(1) < int64(maxFailures) {
		return
	}
	u.health.downUntilNanos.Store(now.Add(backoff).UnixNano())
	u.metrics.ejected.Inc()
	u.metrics.up.Set(0)
}

// Routes fills dst with the candidate upstreams of m among ups at time at that serve
// the price modifiers mods, in the order to try them, and returns how many
// there are, and how many more serve m but not mods. key picks among equal
// priorities (the account for sticky routing, else the request ID).
func Routes(ups []*Upstream, m *meter.Model, at time.Time, key string, mods meter.Modifiers, dst *[MaxRoutes]Route) (n, withoutModifiers int) {
	type cand struct {
		Route
		score float64
	}
	var cands [MaxRoutes]cand
	inService := 0
	now := at.UnixNano()
	for _, u := range ups {
		mu, ok := m.Upstream(u.kind, at)
		if !ok {
			continue
		}
		if !mu.Serves(mods) {
			withoutModifiers++
			continue
		}
		cands[n] = cand{Route: Route{Up: u, ModelID: mu.ModelID}}
		if u.inService(now) {
			inService++
		}
		n++
	}
	if inService > 0 && inService < n {
		// Drop the upstreams taken out; keep the order of the rest.
		k := 0
		for i := range n {
			if cands[i].Up.inService(now) {
				cands[k] = cands[i]
				k++
			}
		}
		n = k
	}
	if n > 1 {
		h := fnv1a(key)
		for i := range n {
			cands[i].score = rendezvousScore(h, cands[i].Up.salt, cands[i].Up.weight)
		}
		// Insertion sort: n is at most MaxRoutes.
		for i := 1; i < n; i++ {
			for j := i; j > 0 && before(&cands[j].Route, cands[j].score, &cands[j-1].Route, cands[j-1].score); j-- {
				cands[j], cands[j-1] = cands[j-1], cands[j]
			}
		}
	}
	for i := range n {
		dst[i] = cands[i].Route
	}
	return n, withoutModifiers
}

// before orders candidates: lower priority value first, then higher score.
func before(a *Route, sa float64, b *Route, sb float64) bool {
	if a.Up.priority != b.Up.priority {
		return a.Up.priority < b.Up.priority
	}
	return sa > sb
}

// rendezvousScore is weight / -ln(x), x in (0, 1) derived from the key's
// hash and the upstream's salt: the weighted rendezvous hash (highest score
// wins), under which each upstream wins a share of keys equal to its share
// of the weights.
func rendezvousScore(keyHash, salt uint64, weight int) float64 {
	x := splitmix64(keyHash ^ salt)
	u := (float64(x>>11) + 0.5) / (1 << 53)
	return float64(weight) / -math.Log(u)
}

// fnv1a is the 64-bit FNV-1a hash of s: deterministic across processes, so
// gateways running side by side route an account alike.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// splitmix64 is SplitMix64's finalizer: it spreads every input bit over the
// output, so keys that differ by one bit score independently.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// ForCounting picks among ups the upstream for a request only Anthropic's API serves
// (count_tokens: Bedrock's counting has another shape) and the model ID it
// knows m by: the first in-service anthropic upstream that serves m, by
// priority, else the first that serves m at all.
func ForCounting(ups []*Upstream, m *meter.Model, at time.Time) (*Upstream, string) {
	var best *Upstream
	var bestID string
	bestUp := false
	now := at.UnixNano()
	for _, u := range ups {
		if u.kind != meter.UpstreamAnthropic {
			continue
		}
		mu, ok := m.Upstream(u.kind, at)
		if !ok {
			continue
		}
		up := u.inService(now)
		if best == nil || (up && !bestUp) || (up == bestUp && u.priority < best.priority) {
			best, bestID, bestUp = u, mu.ModelID, up
		}
	}
	return best, bestID
}
