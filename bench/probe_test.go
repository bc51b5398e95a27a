package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

func TestMetricSum(t *testing.T) {
	const text = `# HELP go_memstats_mallocs_total Mallocs
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total 123456
go_memstats_mallocs_total_extra 7
tollgate_ledger_operations_total{op="hold"} 10
tollgate_ledger_operations_total{op="settle"} 9
tollgate_ledger_operations_total{op="void"} 1
tollgate_wal_records_total 40
tollgate_wal_syncs_total 4
process_cpu_seconds_total 1.25
go_info_ext{compiler="gc", GOARCH="amd64"} 1
weird{a="}"} 5
broken_total{op="x" 3
bad_value_total abc
`
	f := func(name string, want float64, wantFound bool) {
		t.Helper()
		got, found := metricSum([]byte(text), name)
		if got != want || found != wantFound {
			t.Fatalf("unexpected %s; got %v, %v; want %v, %v", name, got, found, want, wantFound)
		}
	}
	f("go_memstats_mallocs_total", 123456, true)
	f("tollgate_ledger_operations_total", 20, true)
	f(metricHolds, 10, true)
	f(metricSettlements, 9, true)
	f(metricVoids, 1, true)
	f(`tollgate_ledger_operations_total{op="topup"}`, 0, false)
	f("tollgate_wal_records_total", 40, true)
	f("process_cpu_seconds_total", 1.25, true)
	f("go_info_ext", 1, true)
	f("weird", 5, true)
	f("go_memstats", 0, false)
	f("missing_total", 0, false)
	f("broken_total", 0, false)
	f("bad_value_total", 0, false)
}

func TestParseProcStatTicks(t *testing.T) {
	f := func(line string, want int64, wantErr bool) {
		t.Helper()
		got, err := parseProcStatTicks([]byte(line))
		if (err != nil) != wantErr || got != want {
			t.Fatalf("unexpected result for %q; got %d, %v; want %d, error %v", line, got, err, want, wantErr)
		}
	}
	// Fields 14 (utime) and 15 (stime) are 250 and 50.
	f("4242 (tollgate) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 1000000 2000 18446744073709551615\n", 300, false)
	// A command name with spaces and parentheses.
	f("7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1\n", 7, false)
	f("7 (short) R 1 2 3", 0, true)
	f("no name here", 0, true)
	f("7 (x) R 1 7 7 0 -1 0 0 0 0 0 -3 4 0 0", 0, true)
}

func TestProcCPUSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	// Burn some CPU so the reading moves past one tick.
	before, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after < before || x == 0 {
		t.Fatalf("CPU time went backwards: %s then %s", before, after)
	}
}

func TestCostMeter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sample := func(at time.Duration, cpu time.Duration, mallocs, ops, records, syncs float64) GatewaySample {
		return GatewaySample{At: t0.Add(at), CPU: cpu, Mallocs: mallocs, LedgerOps: ops, WALRecords: records, WALSyncs: syncs}
	}
	var m costMeter
	// Segment 1: a scrape costs 500 mallocs; 1000 calls cost 2000 more.
	m.add(sample(0, time.Second, 10_000, 0, 0, 0), sample(0, time.Second, 10_500, 0, 0, 0),
		sample(2*time.Second, 1500*time.Millisecond, 13_000, 2000, 2000, 100), 1000, 0)
	// Segment 2, later: 1000 calls cost 1000 mallocs and 300 ms; the
	// after-sample came after two more scrapes waiting for open holds.
	m.add(sample(5*time.Second, 2*time.Second, 20_000, 3000, 3000, 200), sample(5*time.Second, 2*time.Second, 20_500, 3000, 3000, 200),
		sample(7*time.Second, 2300*time.Millisecond, 23_000, 5000, 5000, 300), 1000, 2)
	c := m.cost()
	f := func(name string, got, want float64) {
		t.Helper()
		if d := got - want; d > 1e-9 || d < -1e-9 {
			t.Fatalf("unexpected %s; got %v; want %v", name, got, want)
		}
	}
	f("calls", float64(c.Calls), 2000)
	f("elapsed", c.ElapsedSec, 4)
	f("cpu seconds", c.CPUSeconds, 0.8)
	f("cpu ms per call", c.CPUMsPerCall, 0.4)
	f("cpu s per 1000 calls", c.CPUSecondsPer1000Calls, 0.4)
	f("cores", c.CPUCores, 0.2)
	f("allocs per call", c.AllocsPerCall, 1.5)
	f("ledger ops per second", c.LedgerOpsPerSec, 1000)
	f("wal records per sync", c.WALRecordsPerSync, 20)

	if c.CPUMsPerCallNet != c.CPUMsPerCall || c.AllocsPerCallNet != c.AllocsPerCall || c.IdleCPUCores != 0 {
		t.Fatalf("without an idle window the net figures are the gross ones: %+v", c)
	}

	// An idle window of 1 s costing 50 ms of CPU and 100 allocations
	// (after one scrape's 500): over the segments' 4 s, 0.2 s and 400
	// allocations of the totals were idle cost.
	m.idle(sample(10*time.Second, 3*time.Second, 30_000, 0, 0, 0), sample(10*time.Second, 3*time.Second, 30_500, 0, 0, 0),
		sample(11*time.Second, 3050*time.Millisecond, 31_100, 0, 0, 0))
	c = m.cost()
	f("idle cores", c.IdleCPUCores, 0.05)
	f("idle allocs per second", c.IdleAllocsPerSec, 100)
	f("net cpu ms per call", c.CPUMsPerCallNet, (0.8-0.2)*1000/2000)
	f("net allocs per call", c.AllocsPerCallNet, (3000.0-400)/2000)
	f("gross allocs per call", c.AllocsPerCall, 1.5)

	// No calls, no syncs: zeros, never NaN (JSON cannot carry NaN).
	var empty costMeter
	if c := empty.cost(); c.CPUMsPerCall != 0 || c.AllocsPerCall != 0 || c.WALRecordsPerSync != 0 || c.CPUCores != 0 {
		t.Fatalf("unexpected figures without calls: %+v", c)
	}
}

// TestCostMeterHolds: the holds' ends and the drains add up over
// segments, and the open holds left are the most after any segment.
func TestCostMeterHolds(t *testing.T) {
	s := func(holds, settlements, voids, open, started, refused float64) GatewaySample {
		return GatewaySample{Holds: holds, Settlements: settlements, Voids: voids, OpenHolds: open, DrainsStarted: started, DrainsRefused: refused}
	}
	var m costMeter
	m.add(s(0, 0, 0, 0, 0, 0), s(0, 0, 0, 0, 0, 0), s(100, 99, 1, 0, 20, 0), 100, 0)
	m.add(s(100, 100, 1, 0, 20, 0), s(100, 100, 1, 0, 20, 0), s(200, 197, 1, 2, 35, 5), 100, 0)
	c := m.cost()
	if c.Holds != 200 || c.Settlements != 196 || c.Voids != 1 || c.OpenHolds != 2 || c.DrainsStarted != 35 || c.DrainsRefused != 5 {
		t.Fatalf("unexpected holds and drains: %+v", c)
	}
}

// fakeMetrics serves /metrics like the gateway: counters that grow with
// each scrape, behind the admin token; three holds stay open until scrape
// number settledAt (none from the start when it is zero or one).
func fakeMetrics(t *testing.T, settledAt int64) (*httptest.Server, *atomic.Int64) {
	var scrapes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		n := scrapes.Add(1)
		fmt.Fprintf(w, "go_memstats_mallocs_total %d\n", 1000*n)
		fmt.Fprintf(w, "process_cpu_seconds_total %g\n", 0.5*float64(n))
		fmt.Fprintf(w, "tollgate_ledger_operations_total{op=\"hold\"} %d\ntollgate_ledger_operations_total{op=\"settle\"} %d\n", 10*n, 10*n)
		fmt.Fprintf(w, "tollgate_wal_records_total %d\ntollgate_wal_syncs_total %d\n", 20*n, 2*n)
		fmt.Fprintf(w, "tollgate_ledger_open_holds %d\ntollgate_drains_started_total 3\n", max(0, 3*(settledAt-n)))
	}))
	t.Cleanup(srv.Close)
	return srv, &scrapes
}

func TestGatewayProbeSample(t *testing.T) {
	srv, _ := fakeMetrics(t, 4)
	p := &GatewayProbe{AdminURL: srv.URL, Token: "tok"}
	s, err := p.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Mallocs != 1000 || s.CPU != 500*time.Millisecond || s.LedgerOps != 20 || s.WALRecords != 20 || s.WALSyncs != 2 ||
		s.Holds != 10 || s.Settlements != 10 || s.OpenHolds != 9 || s.DrainsStarted != 3 {
		t.Fatalf("unexpected sample: %+v", s)
	}
	if _, err := (&GatewayProbe{AdminURL: srv.URL, Token: "wrong"}).Sample(context.Background()); err == nil {
		t.Fatalf("a refused scrape must be an error")
	}
	if _, err := (&GatewayProbe{AdminURL: "http://192.0.2.1:8081", Token: "tok"}).Sample(context.Background()); err == nil {
		t.Fatalf("a probe beyond loopback must be refused")
	}
}

// TestWaitSettled: the probe scrapes until no hold is open, counting the
// scrapes beyond the first, and gives up at its bound.
func TestWaitSettled(t *testing.T) {
	srv, scrapes := fakeMetrics(t, 4)
	p := &GatewayProbe{AdminURL: srv.URL, Token: "tok"}
	s, extra, err := p.WaitSettled(context.Background(), 10*time.Second)
	if err != nil || s.OpenHolds != 0 || extra != 3 || scrapes.Load() != 4 {
		t.Fatalf("unexpected wait; got open %v after %d extra scrapes (%d in all), %v; want 0 after 3 (4)", s.OpenHolds, extra, scrapes.Load(), err)
	}
	srv2, _ := fakeMetrics(t, 4)
	p = &GatewayProbe{AdminURL: srv2.URL, Token: "tok"}
	start := time.Now()
	s, _, err = p.WaitSettled(context.Background(), time.Nanosecond)
	if err != nil || s.OpenHolds != 9 || time.Since(start) > time.Second {
		t.Fatalf("unexpected wait past its bound; got open %v after %s, %v; want 9 at once", s.OpenHolds, time.Since(start), err)
	}
}
