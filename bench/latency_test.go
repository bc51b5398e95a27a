package bench

import (
	"math"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	f := func(values []time.Duration, want Percentiles) {
		t.Helper()
		h := newLatencyHistogram()
		for _, v := range values {
			h.record(v)
		}
		got := h.percentiles()
		check := func(name string, got, want float64) {
			t.Helper()
			// HDR at 3 significant digits: within 0.1% of the exact value.
			if math.Abs(got-want) > want*0.001+1e-9 {
				t.Fatalf("unexpected %s; got %v; want %v (±0.1%%)", name, got, want)
			}
		}
		check("p50", got.P50Ms, want.P50Ms)
		check("p90", got.P90Ms, want.P90Ms)
		check("p99", got.P99Ms, want.P99Ms)
		check("p999", got.P999Ms, want.P999Ms)
		check("max", got.MaxMs, want.MaxMs)
		check("mean", got.MeanMs, want.MeanMs)
	}
	ramp := func(n int, unit time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(i+1) * unit
		}
		return out
	}

	// Nothing recorded: all zero.
	f(nil, Percentiles{})
	// One value.
	f([]time.Duration{5 * time.Millisecond}, Percentiles{P50Ms: 5, P90Ms: 5, P99Ms: 5, P999Ms: 5, MaxMs: 5, MeanMs: 5})
	// 1..1000 ms: the k-th percentile is k*10 ms.
	f(ramp(1000, time.Millisecond), Percentiles{P50Ms: 500, P90Ms: 900, P99Ms: 990, P999Ms: 999, MaxMs: 1000, MeanMs: 500.5})
	// 1..10000 µs.
	f(ramp(10000, time.Microsecond), Percentiles{P50Ms: 5, P90Ms: 9, P99Ms: 9.9, P999Ms: 9.99, MaxMs: 10, MeanMs: 5.0005})
	// A long tail: 990 fast calls and 10 slow ones show at p99.9 only.
	tail := append(make([]time.Duration, 0, 1000), ramp(10, time.Second)...)
	for range 990 {
		tail = append(tail, time.Millisecond)
	}
	f(tail, Percentiles{P50Ms: 1, P90Ms: 1, P99Ms: 1, P999Ms: 9000, MaxMs: 10000, MeanMs: (990 + 55000) / 1000.0})
}

func TestLatencyClamp(t *testing.T) {
	h := newLatencyHistogram()
	h.record(0)
	h.record(-time.Second)
	h.record(10 * maxLatency)
	if got := h.count(); got != 3 {
		t.Fatalf("unexpected count; got %d; want 3 (out-of-range values are clamped, not dropped)", got)
	}
}

func TestRecorderMergesShards(t *testing.T) {
	r := newRecorder()
	for w := range 100 {
		r.ok(w, time.Duration(w+1)*time.Millisecond, time.Duration(w+1)*2*time.Millisecond, 10)
		if w%10 == 0 {
			r.fail(w, ErrKindTimeout)
			r.fail(w, statusKind(502))
		}
		if w%4 == 0 {
			r.disconnected(w)
		}
	}
	ttfb, total, ok, bytes, errs, left := r.collect()
	if ok != 100 || bytes != 1000 || ttfb.count() != 100 || total.count() != 100 || left != 25 {
		t.Fatalf("unexpected totals; got ok %d bytes %d ttfb %d total %d disconnected %d; want 100, 1000, 100, 100, 25",
			ok, bytes, ttfb.count(), total.count(), left)
	}
	if errs[ErrKindTimeout] != 10 || errs["status_502"] != 10 || len(errs) != 2 {
		t.Fatalf("unexpected errors; got %v; want timeout 10, status_502 10", errs)
	}
	if p := total.percentiles(); math.Abs(p.MaxMs-200) > 0.2 {
		t.Fatalf("unexpected max total; got %v; want 200", p.MaxMs)
	}
}
