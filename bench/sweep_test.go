package bench

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestSweepPoints(t *testing.T) {
	f := func(cfg SweepConfig, want []SweepPoint, wantErr bool) {
		t.Helper()
		got, err := cfg.Points()
		if (err != nil) != wantErr || !slices.Equal(got, want) {
			t.Fatalf("unexpected points of %+v; got %v, %v; want %v, error %v", cfg, got, err, want, wantErr)
		}
	}
	f(SweepConfig{}, []SweepPoint{{0, 0}}, false)
	f(SweepConfig{Shards: []int{1, 4}}, []SweepPoint{{1, 0}, {4, 0}}, false)
	f(SweepConfig{DrainWorkers: []int{16}}, []SweepPoint{{0, 16}}, false)
	// Shards in the outer loop, in the order given.
	f(SweepConfig{Shards: []int{64, 1}, DrainWorkers: []int{16, 256}}, []SweepPoint{{64, 16}, {64, 256}, {1, 16}, {1, 256}}, false)
	f(SweepConfig{Shards: []int{-1}}, nil, true)
	f(SweepConfig{Shards: make([]int, 9), DrainWorkers: make([]int, 8)}, nil, true)
	f(SweepConfig{Shards: make([]int, 8), DrainWorkers: make([]int, 8)}, make([]SweepPoint, 64), false)
}

// fakeReport is a report whose figures follow from the point, so a test
// can tell which point it came from.
func fakeReport(p SweepPoint) *Report {
	rps := float64(100*p.Shards + p.DrainWorkers)
	return &Report{
		Settings: Settings{Mode: "closed", Concurrency: 8, Accounts: 2, Rounds: 2,
			Gateway: []GatewaySetting{{"ledger.shards", strconv.Itoa(p.Shards)}, {"policies.drain_workers", strconv.Itoa(p.DrainWorkers)}}},
		Gateway: &LoadResult{Label: "gateway", RequestsPerSec: rps, TTFB: Percentiles{P99Ms: 1}, Total: Percentiles{P99Ms: 2}, Errors: map[string]int64{}},
		Direct:  &LoadResult{Label: "direct", RequestsPerSec: 2 * rps, Errors: map[string]int64{}},
		Ratios:  Ratios{Throughput: 0.5},
	}
}

func TestRunSweepOrchestration(t *testing.T) {
	var ran []SweepPoint
	var announced []string
	run := func(ctx context.Context, p SweepPoint) (*Report, error) {
		ran = append(ran, p)
		switch {
		case p.Shards == 4 && p.DrainWorkers == 16:
			return nil, errors.New("gateway did not start:\nbad shards")
		case p.Shards == 4 && p.DrainWorkers == 256:
			// Measured, but the gateway did not stop cleanly.
			return fakeReport(p), errors.New("exit status 1")
		}
		return fakeReport(p), nil
	}
	cfg := SweepConfig{Shards: []int{1, 4, 16}, DrainWorkers: []int{16, 256}, OnPoint: func(i, n int, p SweepPoint) {
		announced = append(announced, strings.Repeat("x", i+1)+"/"+strings.Repeat("x", n))
	}}
	res, err := RunSweep(context.Background(), cfg, run)
	if err != nil {
		t.Fatal(err)
	}
	want := []SweepPoint{{1, 16}, {1, 256}, {4, 16}, {4, 256}, {16, 16}, {16, 256}}
	if !slices.Equal(ran, want) {
		t.Fatalf("unexpected points run; got %v; want %v (a failed point must not stop the sweep)", ran, want)
	}
	if len(announced) != 6 || announced[5] != "xxxxxx/xxxxxx" {
		t.Fatalf("unexpected OnPoint calls: %q", announced)
	}
	if len(res.Rows) != 6 || !res.Failed() {
		t.Fatalf("unexpected rows %d, failed %v", len(res.Rows), res.Failed())
	}
	for i, row := range res.Rows {
		if row.SweepPoint != want[i] {
			t.Fatalf("row %d is point %v; want %v", i, row.SweepPoint, want[i])
		}
		failed := row.Shards == 4
		if (row.Error != "") != failed {
			t.Fatalf("row %d: unexpected error %q", i, row.Error)
		}
		if hasReport := row.Report != nil; hasReport != (row.SweepPoint != SweepPoint{4, 16}) {
			t.Fatalf("row %d: unexpected report presence %v", i, hasReport)
		}
		if row.Report != nil && row.Report.Gateway.RequestsPerSec != float64(100*row.Shards+row.DrainWorkers) {
			t.Fatalf("row %d carries another point's report", i)
		}
	}
}

func TestRunSweepCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ran int
	run := func(ctx context.Context, p SweepPoint) (*Report, error) {
		ran++
		if ran == 2 {
			cancel()
		}
		return fakeReport(p), ctx.Err()
	}
	res, err := RunSweep(ctx, SweepConfig{Shards: []int{1, 2, 4, 8}}, run)
	if !errors.Is(err, context.Canceled) || ran != 2 || len(res.Rows) != 2 {
		t.Fatalf("unexpected result of a cancelled sweep; got err %v, ran %d, rows %d; want canceled, 2, 2", err, ran, len(res.Rows))
	}
}

func TestRunSweepRefusesTooManyPoints(t *testing.T) {
	run := func(ctx context.Context, p SweepPoint) (*Report, error) {
		t.Fatalf("no point may run")
		return nil, nil
	}
	if _, err := RunSweep(context.Background(), SweepConfig{Shards: make([]int, 65)}, run); err == nil {
		t.Fatalf("a sweep over MaxSweepPoints was accepted")
	}
}
