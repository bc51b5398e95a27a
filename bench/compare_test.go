package bench

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"
)

func TestComputeRatios(t *testing.T) {
	f := func(gw, direct *LoadResult, want Ratios) {
		t.Helper()
		got := ComputeRatios(gw, direct)
		if got != want {
			t.Fatalf("unexpected ratios;\ngot  %+v\nwant %+v", got, want)
		}
	}
	res := func(rps, ttfb50, ttfb99, total50, total99 float64) *LoadResult {
		return &LoadResult{RequestsPerSec: rps, TTFB: Percentiles{P50Ms: ttfb50, P99Ms: ttfb99}, Total: Percentiles{P50Ms: total50, P99Ms: total99}}
	}
	f(res(500, 2, 4, 10, 20), res(1000, 1, 2, 5, 10), Ratios{
		Throughput: 0.5, TTFBP50: 2, TTFBP99: 2, TotalP50: 2, TotalP99: 2,
		AddedTTFBP50Ms: 1, AddedTTFBP99Ms: 2, AddedTotalP50Ms: 5, AddedTotalP99Ms: 10,
	})
	// A gateway faster than direct (noise) gives ratios above 1 and
	// negative added times, reported as they are.
	f(res(1100, 1, 1, 4, 8), res(1000, 1, 2, 5, 10), Ratios{
		Throughput: 1.1, TTFBP50: 1, TTFBP99: 0.5, TotalP50: 0.8, TotalP99: 0.8,
		AddedTTFBP50Ms: 0, AddedTTFBP99Ms: -1, AddedTotalP50Ms: -1, AddedTotalP99Ms: -2,
	})
	// Nothing direct (every direct call failed): zero ratios, not NaN or Inf.
	f(res(500, 2, 4, 10, 20), res(0, 0, 0, 0, 0), Ratios{
		AddedTTFBP50Ms: 2, AddedTTFBP99Ms: 4, AddedTotalP50Ms: 10, AddedTotalP99Ms: 20,
	})
}

// TestRunCompare runs a comparison with a slower upstream standing in for
// the gateway, and a fake /metrics, and checks the interleaving, the
// merged figures and the cost arithmetic.
func TestRunCompare(t *testing.T) {
	slow := startTestUpstream(t, UpstreamConfig{Deltas: 2, EventDelay: 2 * time.Millisecond})
	fast := startTestUpstream(t, UpstreamConfig{Deltas: 2})
	metrics, scrapes := fakeMetrics(t, 0)
	var order []string
	rep, err := RunCompare(context.Background(), CompareConfig{
		Load: LoadConfig{Concurrency: 4, Requests: 101, Duration: 30 * time.Second, Progress: func(s ProgressSnapshot) {
			if s.Final {
				order = append(order, s.Label)
			}
		}},
		GatewayURL: slow.URL(),
		Keys:       []string{"k"},
		DirectURL:  fast.URL(),
		Rounds:     3,
		Probe:      &GatewayProbe{AdminURL: metrics.URL, Token: "tok"},
		IdleWindow: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []string{"gateway 1/3", "direct 1/3", "direct 2/3", "gateway 2/3", "gateway 3/3", "direct 3/3"}
	if !slices.Equal(order, wantOrder) {
		t.Fatalf("unexpected segment order;\ngot  %q\nwant %q", order, wantOrder)
	}
	for _, r := range []*LoadResult{rep.Gateway, rep.Direct} {
		checkConsistent(t, r)
		if r.Calls != 101 || r.OK != 101 {
			t.Fatalf("%s: unexpected calls; got %d (ok %d); want 101 over the rounds", r.Label, r.Calls, r.OK)
		}
	}
	if slow.Calls() != 101 || fast.Calls() != 101 {
		t.Fatalf("unexpected upstream calls; got %d and %d; want 101 each", slow.Calls(), fast.Calls())
	}
	if want := rep.Gateway.RequestsPerSec / rep.Direct.RequestsPerSec; math.Abs(rep.Ratios.Throughput-want) > 1e-9 {
		t.Fatalf("unexpected throughput ratio; got %v; want %v", rep.Ratios.Throughput, want)
	}
	// The slow side's replies take 7 events × 2 ms.
	if rep.Gateway.Total.P50Ms < 14 || rep.Ratios.TotalP50 <= 1 {
		t.Fatalf("unexpected latencies: gateway total p50 %v ms, ratio %v", rep.Gateway.Total.P50Ms, rep.Ratios.TotalP50)
	}
	s := rep.Settings
	if s.Mode != "closed" || s.Concurrency != 4 || s.Requests != 101 || s.Rounds != 3 {
		t.Fatalf("unexpected settings: %+v", s)
	}
	// Three scrapes per gateway segment; each scrape adds 1000 mallocs and
	// 0.5 s of CPU, so the segments' own mallocs are zero once one scrape
	// is taken out, and their CPU is one scrape's.
	if got := scrapes.Load(); got != 9 {
		t.Fatalf("unexpected scrapes; got %d; want 9", got)
	}
	c := rep.GatewayCost
	if c == nil || c.Calls != 101 || c.AllocsPerCall != 0 || math.Abs(c.CPUSeconds-1.5) > 1e-9 || c.WALRecordsPerSync != 10 {
		t.Fatalf("unexpected gateway cost: %+v", c)
	}
	if math.Abs(c.CPUMsPerCall-1500.0/101) > 1e-9 {
		t.Fatalf("unexpected CPU per call; got %v; want %v", c.CPUMsPerCall, 1500.0/101)
	}
}

// TestRunCompareIdleWindow: the idle window is sampled like a segment
// (three scrapes) before the first round.
func TestRunCompareIdleWindow(t *testing.T) {
	up := startTestUpstream(t, UpstreamConfig{Deltas: 2})
	metrics, scrapes := fakeMetrics(t, 0)
	start := time.Now()
	rep, err := RunCompare(context.Background(), CompareConfig{
		Load:       LoadConfig{Concurrency: 2, Requests: 10},
		GatewayURL: up.URL(), DirectURL: up.URL(), Rounds: 1,
		Probe:      &GatewayProbe{AdminURL: metrics.URL, Token: "tok"},
		IdleWindow: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := scrapes.Load(); got != 6 {
		t.Fatalf("unexpected scrapes; got %d; want 3 idle and 3 for the segment", got)
	}
	// The fake gateway "spends" 0.5 s of CPU per scrape: over a window of
	// about 100 ms that is about 5 cores.
	if c := rep.GatewayCost; c.IdleCPUCores < 1 || c.IdleCPUCores > 5.01 || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("unexpected idle cost: %+v", c)
	}
}

func TestRunCompareLimits(t *testing.T) {
	up := startTestUpstream(t, UpstreamConfig{})
	f := func(c CompareConfig) {
		t.Helper()
		if _, err := RunCompare(context.Background(), c); err == nil {
			t.Fatalf("comparison %+v was accepted", c)
		}
	}
	f(CompareConfig{GatewayURL: up.URL(), DirectURL: up.URL(), Rounds: MaxRounds + 1})
	f(CompareConfig{GatewayURL: up.URL(), DirectURL: "http://192.0.2.1:80"})
	f(CompareConfig{GatewayURL: "http://192.0.2.1:80", DirectURL: up.URL()})
	f(CompareConfig{GatewayURL: up.URL(), DirectURL: up.URL(), IdleWindow: MaxIdleWindow + 1})
}
