package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tollgate/tollgate/bench"
	"github.com/tollgate/tollgate/internal/pgtest"
)

// tollgateBin is the gateway binary built once for the end-to-end tests.
var tollgateBin string

func TestMain(m *testing.M) {
	// tollbench run starts its floor hop by running its own executable,
	// which here is this test binary: be the hop when asked to.
	if len(os.Args) > 1 && os.Args[1] == "hop" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, false))
	}
	dir, err := os.MkdirTemp("", "tollbench-test-")
	if err != nil {
		panic(err)
	}
	tollgateBin = filepath.Join(dir, "tollgate")
	out, err := exec.Command("go", "build", "-o", tollgateBin, "github.com/tollgate/tollgate/cmd/tollgate").CombinedOutput()
	if err != nil {
		panic(fmt.Sprintf("cannot build tollgate: %s\n%s", err, out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runTollbench runs the command in-process and returns its exit code and
// outputs.
func runTollbench(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, false)
	return code, stdout.String(), stderr.String()
}

// shortLoad is a load of a few seconds in all: this runs in `make test`
// on a shared machine.
var shortLoad = []string{
	"-tollgate", "", // filled in by the tests
	"-config", "../../configs/tollgate.yaml",
	"-catalogue", "../../configs/models.yaml",
	"-concurrency", "8",
	"-duration", "600ms",
	"-warmup", "100ms",
	"-accounts", "4",
}

func loadArgs(extra ...string) []string {
	args := append([]string(nil), shortLoad...)
	args[1] = tollgateBin
	return append(args, extra...)
}

// TestRunEndToEnd runs `tollbench run -json` against a real gateway
// process and checks that the figures are consistent with each other,
// never how fast anything was.
func TestRunEndToEnd(t *testing.T) {
	code, stdout, stderr := runTollbench(t, append([]string{"run"}, loadArgs("-json", "-shards", "4", "-workers", "8")...)...)
	if code != 0 {
		t.Fatalf("tollbench run failed with %d:\n%s\n%s", code, stderr, stdout)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("cannot decode the JSON report: %s\n%s", err, stdout)
	}
	for _, r := range []*bench.LoadResult{rep.Gateway, rep.Direct} {
		if r.Calls == 0 || r.OK+r.ErrorCount != r.Calls || r.ErrorCount != 0 {
			t.Fatalf("%s: unexpected calls %d, ok %d, errors %v", r.Label, r.Calls, r.OK, r.Errors)
		}
		for _, p := range []bench.Percentiles{r.TTFB, r.Total} {
			if !(0 < p.P50Ms && p.P50Ms <= p.P90Ms && p.P90Ms <= p.P99Ms && p.P99Ms <= p.P999Ms && p.P999Ms <= p.MaxMs) {
				t.Fatalf("%s: percentiles out of order: %+v", r.Label, p)
			}
		}
		if r.TTFB.P50Ms > r.Total.P50Ms*1.001 {
			t.Fatalf("%s: time to first byte above total time: %+v %+v", r.Label, r.TTFB, r.Total)
		}
		if want := float64(r.OK) / r.ElapsedSec; math.Abs(r.RequestsPerSec-want) > want*1e-9 {
			t.Fatalf("%s: requests/s %v is not ok/elapsed %v", r.Label, r.RequestsPerSec, want)
		}
	}
	if want := rep.Gateway.RequestsPerSec / rep.Direct.RequestsPerSec; math.Abs(rep.Ratios.Throughput-want) > 1e-9 {
		t.Fatalf("unexpected throughput ratio %v; want %v", rep.Ratios.Throughput, want)
	}
	if got, want := rep.Gateway.BytesPerCall, rep.Direct.BytesPerCall; got != want || got == 0 {
		t.Fatalf("the gateway changed the reply's size: %v bytes through it, %v direct", got, want)
	}
	c := rep.GatewayCost
	if c == nil || c.Calls != rep.Gateway.Calls || c.CPUSeconds <= 0 || c.AllocsPerCall < 0 || c.WALRecordsPerSync < 1 {
		t.Fatalf("unexpected gateway cost: %+v", c)
	}
	// Every call is one hold and one settlement, and nothing else runs.
	ops := c.LedgerOpsPerSec * c.ElapsedSec
	if want := 2 * float64(c.Calls); math.Abs(ops-want) > 2+want*0.01 {
		t.Fatalf("unexpected ledger operations; got %v; want %v (hold and settle per call)", ops, want)
	}
	checkHoldsEnded(t, c)
	hop := rep.Hop
	if hop == nil || hop.OK == 0 || hop.BytesPerCall != rep.Direct.BytesPerCall || rep.HopCost == nil || rep.HopCost.CPUSeconds <= 0 {
		t.Fatalf("unexpected floor hop side: %+v, cost %+v", hop, rep.HopCost)
	}
	if want := c.CPUMsPerCall / rep.HopCost.CPUMsPerCall; math.Abs(rep.Ratios.GatewayCPUOverHop-want) > 1e-9 {
		t.Fatalf("unexpected gateway CPU over the hop's %v; want %v", rep.Ratios.GatewayCPUOverHop, want)
	}
	s := rep.Settings
	wantGateway := []bench.GatewaySetting{{Key: "ledger.shards", Value: "4"}, {Key: "policies.drain_workers", Value: "8"}}
	if !slices.Equal(s.Gateway, wantGateway) || s.Accounts != 4 || s.Concurrency != 8 || s.Deltas != bench.DefaultDeltas || s.Rounds != bench.DefaultRounds {
		t.Fatalf("unexpected settings: %+v", s)
	}
}

// TestRunCluster runs `tollbench run -nodes 2` against two gateway nodes
// in cluster mode on a real PostgreSQL: every call succeeds, the costs are
// both nodes' added up (one hold and one settlement per call), and both
// nodes served calls (each reported usage to PostgreSQL).
func TestRunCluster(t *testing.T) {
	pg := pgtest.StartPrimary(t)
	t.Setenv("PGPASSWORD", pgtest.Password)
	code, stdout, stderr := runTollbench(t, append([]string{"run"}, loadArgs("-json", "-hop=false", "-cluster-dsn", pg.DSN(), "-nodes", "2")...)...)
	if code != 0 {
		t.Fatalf("tollbench run failed with %d:\n%s\n%s", code, stderr, stdout)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("cannot decode the JSON report: %s\n%s", err, stdout)
	}
	if r := rep.Gateway; r.Calls == 0 || r.OK != r.Calls || rep.Settings.Nodes != 2 {
		t.Fatalf("calls %d, ok %d, errors %v, nodes %d", r.Calls, r.OK, r.Errors, rep.Settings.Nodes)
	}
	checkHoldsEnded(t, rep.GatewayCost)
	if nodes := pg.Psql("tollgate", "SELECT count(DISTINCT node) FROM tg_journal WHERE kind = 'usage'"); strings.TrimSpace(nodes) != "2" {
		t.Fatalf("%s nodes reported usage, want 2", nodes)
	}
}

// checkHoldsEnded checks that every measured call held once and that every
// hold was settled, none left open: the ledger balances.
func checkHoldsEnded(t *testing.T, c *bench.GatewayCost) {
	t.Helper()
	if c.Holds != float64(c.Calls) || c.Settlements != c.Holds || c.Voids != 0 || c.OpenHolds != 0 {
		t.Fatalf("unexpected holds for %d calls: %v held, %v settled, %v voided, %v left open", c.Calls, c.Holds, c.Settlements, c.Voids, c.OpenHolds)
	}
}

// TestSweepEndToEnd runs a sweep of two axes of one value each, after the
// baseline, with a quarter of the clients leaving mid-stream (the streams
// paced so that they leave while the gateway is still streaming), and
// checks the points, the disconnected calls, that every hold was settled
// all the same, the table and the chart.
func TestSweepEndToEnd(t *testing.T) {
	chart := filepath.Join(t.TempDir(), "sweep")
	code, stdout, stderr := runTollbench(t, append([]string{"sweep"}, loadArgs(
		"-axis", "shards=4", "-axis", "drain_workers=8", "-disconnect", "0.25", "-event-delay", "2ms",
		"-duration", "300ms", "-rounds", "1", "-idle-window", "200ms", "-chart", chart, "-json")...)...)
	if code != 0 {
		t.Fatalf("tollbench sweep failed with %d:\n%s\n%s", code, stderr, stdout)
	}
	var res bench.SweepResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("cannot decode the JSON result: %s\n%s", err, stdout)
	}
	want := []bench.SweepPoint{{}, {Axis: "shards", Value: 4}, {Axis: "drain_workers", Value: 8}}
	if len(res.Rows) != len(want) {
		t.Fatalf("unexpected rows; got %d; want %d:\n%s", len(res.Rows), len(want), stdout)
	}
	for i, row := range res.Rows {
		checkSweepRow(t, row, want[i])
	}
	var md bytes.Buffer
	if err := bench.WriteSweepMarkdown(&md, &res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| baseline | default |", "| shards | 4 |", "| drain_workers | 8 |", "25% of clients leaving after the first delta"} {
		if !strings.Contains(md.String(), want) {
			t.Fatalf("the table lacks %q:\n%s", want, md.String())
		}
	}
	// One chart per axis, each well-formed, with the baseline marked as
	// the default at the base configuration's value.
	for axis, label := range map[string]string{"shards": "64 (default)", "drain_workers": "256 (default)"} {
		svg, err := os.ReadFile(chart + "-" + axis + ".svg")
		if err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(svg, new(struct{})); err != nil {
			t.Fatalf("the %s chart is not well-formed XML: %s", axis, err)
		}
		// Two points (the axis's and the baseline) in the throughput, CPU
		// and TTFB panels; a default line in each.
		if n := bytes.Count(svg, []byte(`class="gateway"`)); n != 6 || bytes.Count(svg, []byte(`class="default"`)) != 3 || !bytes.Contains(svg, []byte(label)) {
			t.Fatalf("unexpected %s chart (%d gateway points):\n%s", axis, n, svg)
		}
	}
	if files, _ := filepath.Glob(chart + "*"); len(files) != 2 {
		t.Fatalf("unexpected chart files %q; want one per axis", files)
	}
}

// checkSweepRow checks one point of TestSweepEndToEnd's sweep.
func checkSweepRow(t *testing.T, row bench.SweepRow, want bench.SweepPoint) {
	t.Helper()
	rep := row.Report
	if row.SweepPoint != want || row.Error != "" || rep == nil {
		t.Fatalf("unexpected row %+v; want point %v, measured", row, want)
	}
	s, g := rep.Settings, rep.Gateway
	if s.Axis != want.Axis || s.Value != want.Value || s.DisconnectShare != 0.25 || s.EventDelayMs != 2 {
		t.Fatalf("%s: unexpected settings %+v", want, s)
	}
	wantDefault := map[string]int{"": 0, "shards": 64, "drain_workers": 256}[want.Axis]
	if s.AxisDefault != wantDefault {
		t.Fatalf("%s: unexpected default %d; want %d", want, s.AxisDefault, wantDefault)
	}
	if key := map[string]string{"shards": "ledger.shards", "drain_workers": "policies.drain_workers"}[want.Axis]; key != "" {
		if !slices.Contains(s.Gateway, bench.GatewaySetting{Key: key, Value: strconv.Itoa(want.Value)}) {
			t.Fatalf("%s: the point's setting is not among those applied: %v", want, s.Gateway)
		}
	} else if len(s.Gateway) != 0 {
		t.Fatalf("the baseline applied settings: %v", s.Gateway)
	}
	// One round, every call answered: exactly a quarter of the calls (by
	// sequence number) left, and they are neither ok nor errors.
	if g.ErrorCount != 0 || g.Disconnected == 0 || g.Disconnected != int64(float64(g.Calls)*0.25) || g.OK+g.Disconnected != g.Calls {
		t.Fatalf("%s: unexpected calls %d, ok %d, disconnected %d, errors %v", want, g.Calls, g.OK, g.Disconnected, g.Errors)
	}
	c := rep.GatewayCost
	if c == nil || c.Calls != g.Calls || c.DrainsStarted+c.DrainsRefused == 0 {
		t.Fatalf("%s: unexpected gateway cost (no drains?): %+v", want, c)
	}
	checkHoldsEnded(t, c)
}

func TestUsageErrors(t *testing.T) {
	f := func(wantCode int, args ...string) {
		t.Helper()
		if code, _, stderr := runTollbench(t, args...); code != wantCode {
			t.Fatalf("unexpected exit code of %q; got %d; want %d\n%s", args, code, wantCode, stderr)
		}
	}
	f(2)
	f(2, "bogus")
	f(0, "help")
	f(2, "run", "-nosuchflag")
	f(2, "run", "-wal-mode", "fast")
	f(2, "run", "-disconnect", "1.5")
	f(2, "sweep", "-disconnect", "-0.1")
	f(2, "run", "extra-argument")
	f(2, "sweep", "-axis", "shards=1,x")
	f(2, "sweep", "-axis", "drain_workers=0")
	f(2, "sweep", "-axis", "bogus=1")
	f(2, "sweep", "-axis", "shards")
	f(2, "sweep", "-axis", "shards=3")
	f(2, "sweep", "-axis", "shards=1", "-axis", "shards=2")
	f(2, "sweep", "-axis", "drain_workers="+strings.Repeat("1,", 63)+"1")
	f(2, "run", "-nodes", "2")
	f(2, "run", "-nodes", "0")
	f(2, "run", "-cluster-dsn", "postgres://db.example.com/tollgate")
	f(1, "run", "-tollgate", "/nonexistent/tollgate")
	f(1, "upstream", "-listen", "0.0.0.0:0")
}

func TestParseInts(t *testing.T) {
	f := func(s string, want []int, wantErr bool) {
		t.Helper()
		got, err := parseInts(s)
		if (err != nil) != wantErr || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("unexpected result for %q; got %v, %v; want %v, error %v", s, got, err, want, wantErr)
		}
	}
	f("1,4,16", []int{1, 4, 16}, false)
	f(" 2 , 8", []int{2, 8}, false)
	f("", nil, true)
	f("1,,2", nil, true)
	f("-1", nil, true)
	f(strings.Repeat("1,", 64)+"1", nil, true)
}
