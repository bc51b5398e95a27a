package upstream

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/tollgate/tollgate/meter"
)

// routeUpstreams readies upstreams for routing with only what Routes reads.
func routeUpstreams(ups ...*Upstream) []*Upstream {
	for _, u := range ups {
		u.salt = fnv1a(u.name)
		u.metrics = newUpstreamMetrics(u.name)
		if u.weight == 0 {
			u.weight = 1
		}
	}
	return ups
}

// routeModel is a model served by anthropic and bedrock upstreams.
var routeModel = &meter.Model{ID: "m", Upstreams: []meter.Upstream{
	{Kind: meter.UpstreamAnthropic, ModelID: "m-anthropic"},
	{Kind: meter.UpstreamBedrock, ModelID: "m-bedrock"},
}}

func routeNames(g []*Upstream, m *meter.Model, at time.Time, key string) string {
	var dst [MaxRoutes]Route
	n, _ := Routes(g, m, at, key, meter.Modifiers{}, &dst)
	s := ""
	for i := range n {
		if i > 0 {
			s += ","
		}
		s += dst[i].Up.name + "=" + dst[i].ModelID
	}
	return s
}

// TestRoutesOrder: only upstreams of kinds the model lists, each with the
// model's ID there, lower priorities first.
func TestRoutesOrder(t *testing.T) {
	now := time.Now()
	g := routeUpstreams(
		&Upstream{name: "b2", kind: KindBedrock, priority: 2},
		&Upstream{name: "a1", kind: KindAnthropic, priority: 1},
		&Upstream{name: "b0", kind: KindBedrock, priority: 0},
	)
	if got, want := routeNames(g, routeModel, now, "k"), "b0=m-bedrock,a1=m-anthropic,b2=m-bedrock"; got != want {
		t.Fatalf("unexpected routes; got %s; want %s", got, want)
	}
	onlyAnthropic := &meter.Model{ID: "x", Upstreams: []meter.Upstream{{Kind: meter.UpstreamAnthropic, ModelID: "x1"}}}
	if got, want := routeNames(g, onlyAnthropic, now, "k"), "a1=x1"; got != want {
		t.Fatalf("unexpected routes; got %s; want %s", got, want)
	}
	retired := &meter.Model{ID: "y", Upstreams: []meter.Upstream{{Kind: meter.UpstreamBedrock, ModelID: "y1", Retires: now.Add(-time.Hour)}}}
	if got := routeNames(g, retired, now, "k"); got != "" {
		t.Fatalf("unexpected routes for a model retired on its only upstream: %s", got)
	}
	if u, id := ForCounting(g, routeModel, now); u == nil || u.name != "a1" || id != "m-anthropic" {
		t.Fatalf("unexpected count_tokens route %v %q; want the anthropic upstream", u, id)
	}
}

// TestRoutesWeights: among equal priorities, each upstream comes first for
// a share of keys equal to its share of the weights; a key always gets the
// same order (sticky routing), and removing an upstream moves only its keys.
func TestRoutesWeights(t *testing.T) {
	now := time.Now()
	a := &Upstream{name: "a", kind: KindAnthropic, weight: 1}
	b := &Upstream{name: "b", kind: KindBedrock, weight: 3}
	g := routeUpstreams(a, b)
	const keys = 20000
	firstB := 0
	for i := range keys {
		key := fmt.Sprintf("account-%d", i)
		order := routeNames(g, routeModel, now, key)
		if order != routeNames(g, routeModel, now, key) {
			t.Fatalf("unexpected order change for key %s", key)
		}
		if order == "b=m-bedrock,a=m-anthropic" {
			firstB++
		} else if order != "a=m-anthropic,b=m-bedrock" {
			t.Fatalf("unexpected order %s", order)
		}
	}
	share := float64(firstB) / keys
	if math.Abs(share-0.75) > 0.02 {
		t.Fatalf("unexpected share of keys routed first to the weight-3 upstream; got %.3f; want 0.75", share)
	}

	// A third upstream takes keys only from the others, never moves a key
	// between them.
	c := &Upstream{name: "c", kind: KindBedrock, weight: 4}
	g3 := routeUpstreams(a, b, c)
	for i := range 2000 {
		key := fmt.Sprintf("account-%d", i)
		var d2, d3 [MaxRoutes]Route
		Routes(g, routeModel, now, key, meter.Modifiers{}, &d2)
		Routes(g3, routeModel, now, key, meter.Modifiers{}, &d3)
		if d3[0].Up != c && d3[0].Up != d2[0].Up {
			t.Fatalf("key %s moved from %s to %s when c joined", key, d2[0].Up.name, d3[0].Up.name)
		}
	}
}

// TestRoutesHealth: an upstream failing maxFailures times in a row is out
// for the backoff period, then back; a success clears the count; when every
// candidate is out, all are tried.
func TestRoutesHealth(t *testing.T) {
	now := time.Now()
	a := &Upstream{name: "a", kind: KindAnthropic, priority: 0}
	b := &Upstream{name: "b", kind: KindBedrock, priority: 1}
	g := routeUpstreams(a, b)
	want := func(at time.Time, order string) {
		t.Helper()
		if got := routeNames(g, routeModel, at, "k"); got != order {
			t.Fatalf("unexpected routes; got %s; want %s", got, order)
		}
	}
	a.Failed(now, 3, time.Minute)
	a.Failed(now, 3, time.Minute)
	a.Succeeded()
	a.Failed(now, 3, time.Minute)
	a.Failed(now, 3, time.Minute)
	want(now, "a=m-anthropic,b=m-bedrock") // never 3 in a row
	a.Failed(now, 3, time.Minute)
	want(now, "b=m-bedrock")
	want(now.Add(59*time.Second), "b=m-bedrock")
	want(now.Add(time.Minute), "a=m-anthropic,b=m-bedrock")
	// Back in service, one more failure takes it out again.
	a.Failed(now.Add(time.Minute), 3, time.Minute)
	want(now.Add(time.Minute+time.Second), "b=m-bedrock")
	// Every candidate out: all are tried, in order.
	for range 3 {
		b.Failed(now.Add(time.Minute), 3, time.Minute)
	}
	want(now.Add(time.Minute+time.Second), "a=m-anthropic,b=m-bedrock")
	a.Succeeded()
	want(now.Add(time.Minute+time.Second), "a=m-anthropic")
	if u, _ := ForCounting(g, routeModel, now.Add(time.Minute+time.Second)); u != a {
		t.Fatalf("unexpected count_tokens route %v", u)
	}
}

// TestRendezvousScore: scores are positive, finite and grow with the weight.
func TestRendezvousScore(t *testing.T) {
	for _, h := range []uint64{0, 1, math.MaxUint64, 0x9e3779b97f4a7c15} {
		s1, s2 := rendezvousScore(h, 7, 1), rendezvousScore(h, 7, 2)
		if !(s1 > 0) || math.IsInf(s1, 0) || s2 != 2*s1 {
			t.Fatalf("unexpected scores %v %v for hash %x", s1, s2, h)
		}
	}
}

// TestRoutesByModifier: a call asking for a modifier goes only to upstreams
// that offer it (fast mode is first-party only); with none, routes says how
// many it left out, for the 400.
func TestRoutesByModifier(t *testing.T) {
	a := &Upstream{name: "a", kind: meter.UpstreamAnthropic, weight: 1}
	b := &Upstream{name: "b", kind: meter.UpstreamBedrock, weight: 1}
	g := routeUpstreams(a, b)
	m := &meter.Model{ID: "m", Upstreams: []meter.Upstream{
		{Kind: meter.UpstreamAnthropic, ModelID: "m-a", Offers: meter.OfferSpeedFast | meter.OfferInferenceGeoUS},
		{Kind: meter.UpstreamBedrock, ModelID: "m-b"},
	}}
	var dst [MaxRoutes]Route
	f := func(mods meter.Modifiers, wantN, wantWithout int) {
		t.Helper()
		n, without := Routes(g, m, time.Now(), "k", mods, &dst)
		if n != wantN || without != wantWithout {
			t.Fatalf("unexpected routes for %+v; got %d (%d left out); want %d (%d)", mods, n, without, wantN, wantWithout)
		}
	}
	f(meter.Modifiers{}, 2, 0)
	f(meter.Modifiers{Speed: meter.SpeedFast}, 1, 1)
	f(meter.Modifiers{InferenceGeo: meter.GeoUS}, 1, 1)
	gb := routeUpstreams(b)
	if n, without := Routes(gb, m, time.Now(), "k", meter.Modifiers{Speed: meter.SpeedFast}, &dst); n != 0 || without != 1 {
		t.Fatalf("unexpected routes on bedrock alone; got %d (%d left out); want 0 (1)", n, without)
	}
}
