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
	f := func(axes []AxisValues, want []SweepPoint, wantErr bool) {
		t.Helper()
		got, err := SweepConfig{Axes: axes}.Points()
		if (err != nil) != wantErr || !slices.Equal(got, want) {
			t.Fatalf("unexpected points of %+v; got %v, %v; want %v, error %v", axes, got, err, want, wantErr)
		}
	}
	base := SweepPoint{}
	f(nil, []SweepPoint{base}, false)
	// The baseline first, then each axis's values in the order given.
	f([]AxisValues{{"shards", []int{16, 1}}, {"gomaxprocs", []int{2}}},
		[]SweepPoint{base, {"shards", 16}, {"shards", 1}, {"gomaxprocs", 2}}, false)
	f([]AxisValues{{"drain_workers", []int{4}}, {"concurrency", []int{32}}, {"wal_interval_ms", []int{5}}},
		[]SweepPoint{base, {"drain_workers", 4}, {"concurrency", 32}, {"wal_interval_ms", 5}}, false)
	// Names, values and limits checked.
	f([]AxisValues{{"bogus", []int{1}}}, nil, true)
	f([]AxisValues{{"Shards", []int{1}}}, nil, true)
	f([]AxisValues{{"shards", []int{1}}, {"shards", []int{2}}}, nil, true)
	f([]AxisValues{{"shards", nil}}, nil, true)
	f([]AxisValues{{"shards", []int{0}}}, nil, true)
	f([]AxisValues{{"drain_workers", []int{-4}}}, nil, true)
	f([]AxisValues{{"shards", []int{3}}}, nil, true)
	f([]AxisValues{{"shards", []int{1 << 17}}}, nil, true)
	f([]AxisValues{{"gomaxprocs", []int{1025}}}, nil, true)
	// At most MaxSweepPoints, the baseline included.
	many := func(n int) []int {
		v := make([]int, n)
		for i := range v {
			v[i] = i + 1
		}
		return v
	}
	f([]AxisValues{{"drain_workers", many(MaxSweepPoints)}}, nil, true)
	if got, err := (SweepConfig{Axes: []AxisValues{{"drain_workers", many(MaxSweepPoints - 1)}}}).Points(); err != nil || len(got) != MaxSweepPoints {
		t.Fatalf("a sweep of MaxSweepPoints was refused: %d points, %v", len(got), err)
	}
	// The default sweep is valid, and short enough to run in minutes.
	if got, err := (SweepConfig{Axes: DefaultSweepAxes()}).Points(); err != nil || len(got) != 14 {
		t.Fatalf("unexpected default sweep: %d points, %v; want 14", len(got), err)
	}
}

// fakeReport is a report whose figures follow from the point, so a test
// can tell which point it came from.
func fakeReport(p SweepPoint) *Report {
	rps := float64(100 + p.Value)
	if p.IsBaseline() {
		rps = 50
	}
	return &Report{
		Settings: Settings{Mode: "closed", Concurrency: 8, Accounts: 2, Rounds: 2, Axis: p.Axis, Value: p.Value, AxisDefault: 16,
			Gateway: []GatewaySetting{{"ledger.shards", strconv.Itoa(p.Value)}}},
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
		switch p {
		case SweepPoint{"shards", 4}:
			return nil, errors.New("gateway did not start:\nbad shards")
		case SweepPoint{"drain_workers", 16}:
			// Measured, but the gateway did not stop cleanly.
			return fakeReport(p), errors.New("exit status 1")
		}
		return fakeReport(p), nil
	}
	cfg := SweepConfig{Axes: []AxisValues{{"shards", []int{1, 4}}, {"drain_workers", []int{16, 256}}}, OnPoint: func(i, n int, p SweepPoint) {
		announced = append(announced, strings.Repeat("x", i+1)+"/"+strings.Repeat("x", n)+" "+p.String())
	}}
	res, err := RunSweep(context.Background(), cfg, run)
	if err != nil {
		t.Fatal(err)
	}
	want := []SweepPoint{{}, {"shards", 1}, {"shards", 4}, {"drain_workers", 16}, {"drain_workers", 256}}
	if !slices.Equal(ran, want) {
		t.Fatalf("unexpected points run; got %v; want %v (a failed point must not stop the sweep)", ran, want)
	}
	if len(announced) != 5 || announced[0] != "x/xxxxx baseline" || announced[4] != "xxxxx/xxxxx drain_workers 256" {
		t.Fatalf("unexpected OnPoint calls: %q", announced)
	}
	if len(res.Rows) != 5 || !res.Failed() || res.Baseline() != &res.Rows[0] || !slices.Equal(res.Axes(), []string{"shards", "drain_workers"}) {
		t.Fatalf("unexpected result: %d rows, failed %v, axes %v", len(res.Rows), res.Failed(), res.Axes())
	}
	for i, row := range res.Rows {
		if row.SweepPoint != want[i] {
			t.Fatalf("row %d is point %v; want %v", i, row.SweepPoint, want[i])
		}
		failed := i == 2 || i == 3
		if (row.Error != "") != failed {
			t.Fatalf("row %d: unexpected error %q", i, row.Error)
		}
		if hasReport := row.Report != nil; hasReport != (i != 2) {
			t.Fatalf("row %d: unexpected report presence %v", i, hasReport)
		}
		if row.Report != nil && row.Report.Settings.Value != row.Value {
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
	res, err := RunSweep(ctx, SweepConfig{Axes: []AxisValues{{"shards", []int{1, 2, 4, 8}}}}, run)
	if !errors.Is(err, context.Canceled) || ran != 2 || len(res.Rows) != 2 {
		t.Fatalf("unexpected result of a cancelled sweep; got err %v, ran %d, rows %d; want canceled, 2, 2", err, ran, len(res.Rows))
	}
}

func TestRunSweepRefusesBadAxes(t *testing.T) {
	run := func(ctx context.Context, p SweepPoint) (*Report, error) {
		t.Fatalf("no point may run")
		return nil, nil
	}
	for _, axes := range [][]AxisValues{{{"drain_workers", make([]int, MaxSweepPoints)}}, {{"nope", []int{1}}}} {
		if _, err := RunSweep(context.Background(), SweepConfig{Axes: axes}, run); err == nil {
			t.Fatalf("sweep %v was accepted", axes)
		}
	}
}
