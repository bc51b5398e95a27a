package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestWriteMarkdown(t *testing.T) {
	rep := fakeReport(SweepPoint{})
	rep.Settings.Gateway = []GatewaySetting{{"ledger.shards", "16"}, {"policies.drain_workers", "64"}}
	rep.Gateway.RequestsPerSec, rep.Direct.RequestsPerSec = 1664, 3328
	rep.Gateway.Errors = map[string]int64{"status_402": 2, ErrKindTimeout: 1}
	rep.Gateway.ErrorCount = 3
	rep.Settings.Machine = Machine{CPUs: 2, MemoryMiB: 24576, GoVersion: "go1.26", GOMAXPROCS: 2, LoadBefore: 1.5, LoadAfter: 2.25}
	rep.Settings.Deltas, rep.Settings.DeltaBytes, rep.Settings.EventDelayMs, rep.Settings.EventJitterMs = 100, 16, 20, 30
	rep.Settings.DisconnectShare, rep.Gateway.Disconnected, rep.Direct.Disconnected = 0.2, 21, 42
	rep.GatewayCost = &GatewayCost{CPUMsPerCall: 0.123, CPUSecondsPer1000Calls: 0.123, AllocsPerCall: 2, WALRecordsPerSync: 12.5,
		Holds: 100, Settlements: 99, Voids: 1, DrainsStarted: 18, DrainsRefused: 3}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"closed loop, concurrency 8",
		"machine: 2 CPUs, 24.0 GiB, go1.26, GOMAXPROCS 2; load average 1.50 before, 2.25 after",
		"gateway ledger.shards 16, policies.drain_workers 64 (the rest as configured), 2 accounts",
		"replies of 100 deltas × 16 B, 20–50 ms (uniform) between events",
		", 20% of clients leaving after the first delta",
		"| disconnected (left after the first delta) | 21 | 42 |  |",
		"| | gateway | direct | gateway / direct |",
		"| requests/s | 1664.0 | 3328.0 | 0.50 |",
		"| gateway CPU ms/call | 0.123 |",
		"| gateway allocs/call | 2.00 |",
		"| WAL records per sync | 12.50 |",
		"| ledger holds / settled / voided (left open) | 100 / 99 / 1 (0) |",
		"| drains started / refused (pool full) | 18 / 3 |",
		"errors by kind: gateway status_402 2, timeout 1; direct none",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("the table lacks %q:\n%s", want, out)
		}
	}
	// Every table row has the same number of cells.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "|") && strings.Count(line, "|") != 5 {
			t.Fatalf("ragged row %q", line)
		}
	}
}

// TestWriteMarkdownWithHop: with the floor hop, the table gains its column
// and its ratio to direct, and the gateway's CPU is read against the hop's.
func TestWriteMarkdownWithHop(t *testing.T) {
	rep := fakeReport(SweepPoint{})
	rep.Settings.Gateway = []GatewaySetting{{"ledger.shards", "16"}, {"policies.drain_workers", "64"}}
	rep.Gateway.RequestsPerSec, rep.Direct.RequestsPerSec = 1664, 3328
	hop := *rep.Direct
	hop.RequestsPerSec = 2496
	rep.Hop = &hop
	rep.Ratios.HopThroughput = 0.75
	rep.GatewayCost = &GatewayCost{CPUMsPerCall: 0.2}
	rep.HopCost = &GatewayCost{CPUMsPerCall: 0.1}
	rep.Ratios.GatewayCPUOverHop = 2
	var b bytes.Buffer
	if err := WriteMarkdown(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| | gateway | floor hop | direct | gateway / direct | hop / direct |",
		"| requests/s | 1664.0 | 2496.0 | 3328.0 | 0.50 | 0.75 |",
		"| gateway CPU ms/call | 0.200 | 0.100 |  | 2.00 of the hop's |  |",
		"; floor hop none",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("the table lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "|") && strings.Count(line, "|") != 7 {
			t.Fatalf("ragged row %q", line)
		}
	}
}

// sweepFixture is a sweep of two axes: shards, whose default (16) is
// among its values and one of which failed, and drain_workers.
func sweepFixture() *SweepResult {
	res := &SweepResult{}
	for _, p := range []SweepPoint{{}, {"shards", 1}, {"shards", 4}, {"shards", 16}, {"drain_workers", 64}} {
		row := SweepRow{SweepPoint: p, Report: fakeReport(p)}
		if p.Value == 4 {
			row.Report, row.Error = nil, "cannot start: a | b\nmore"
		}
		if p.Axis == "drain_workers" {
			row.Report.Settings.AxisDefault = 256
		}
		res.Rows = append(res.Rows, row)
	}
	res.Rows[1].Report.Gateway.Disconnected, res.Rows[1].Report.Gateway.DisconnectedShare = 20, 0.2
	res.Rows[1].Report.GatewayCost = &GatewayCost{CPUMsPerCall: 0.25, AllocsPerCall: 2, PeakRSSMiB: 100, PeakRSSPerCallKiB: 48, WALRecordsPerSync: 3, DrainsStarted: 18, DrainsRefused: 2}
	res.Rows[1].Report.Gateway.Errors = map[string]int64{"status_503": 3}
	return res
}

func TestWriteSweepMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSweepMarkdown(&b, sweepFixture()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	var rows []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "|") {
			rows = append(rows, line)
			// Never ragged: every row has the header's cells.
			if n := strings.Count(line, "|") - strings.Count(line, `\|`); n != 15 {
				t.Fatalf("row %q has %d separators; want 15", line, n)
			}
		}
	}
	if len(rows) != 7 {
		t.Fatalf("unexpected rows; got %d; want header, rule and 5:\n%s", len(rows), out)
	}
	for i, want := range []string{
		"| axis | value | gateway calls/s | direct calls/s | ratio | CPU ms/call | TTFB p99 ms | added TTFB p99 ms | allocs/call | RSS KiB/call in flight | WAL rec/sync | disconnected | drains / refused | errors |",
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
		"| baseline | default | 50.0 | 100.0 | 0.50 |  | 1.000 | +0.000 |  |  |  | 0 (0.0%) |  | none |",
		"| shards | 1 | 101.0 | 202.0 | 0.50 | 0.250 | 1.000 | +0.000 | 2.0 | 48.0 | 3.00 | 20 (20.0%) | 18 / 2 | status_503 3 |",
		`| shards | 4 | | | | | | | | | | | | cannot start: a \| b |`,
		"| shards | 16 (default) | 116.0 |",
		"| drain_workers | 64 | 164.0 |",
	} {
		if !strings.HasPrefix(rows[i], want) {
			t.Fatalf("unexpected row %d;\ngot  %s\nwant %s…", i, rows[i], want)
		}
	}
	if !strings.Contains(out, "tollbench sweep: closed loop") || !strings.Contains(out, "gateway baseline ledger.shards 0") {
		t.Fatalf("unexpected description:\n%s", out)
	}
}

// svgParts parses a chart, failing the test if it is not well-formed XML,
// and returns the count of elements by name and class ("circle.gateway")
// and its texts.
func svgParts(t *testing.T, svg []byte) (map[string]int, []string) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	counts := map[string]int{}
	var texts []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return counts, texts
		}
		if err != nil {
			t.Fatalf("the chart is not well-formed XML: %s\n%s", err, svg)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			name := tok.Name.Local
			for _, a := range tok.Attr {
				if a.Name.Local == "class" {
					name += "." + a.Value
				}
			}
			counts[name]++
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); s != "" {
				texts = append(texts, s)
			}
		}
	}
}

func TestWriteAxisSVG(t *testing.T) {
	res := sweepFixture()
	f := func(axis string, wantCounts map[string]int, wantTexts ...string) {
		t.Helper()
		var b bytes.Buffer
		if err := WriteAxisSVG(&b, res, axis); err != nil {
			t.Fatal(err)
		}
		counts, texts := svgParts(t, b.Bytes())
		for k, want := range wantCounts {
			if counts[k] != want {
				t.Fatalf("%s: unexpected %s count; got %d; want %d\n%s", axis, k, counts[k], want, b.String())
			}
		}
		for _, want := range wantTexts {
			if !slices.Contains(texts, want) {
				t.Fatalf("%s: the chart lacks the text %q; it has %q", axis, want, texts)
			}
		}
	}
	// shards 1, 4 (failed) and 16, the default, in order. Gateway dots:
	// two in the throughput and TTFB panels, one for CPU (only shards 1
	// has costs); direct's in two panels; the baseline's dashed line
	// where it has the figure; "failed" in each panel.
	f("shards", map[string]int{"svg": 1, "circle.gateway": 5, "circle.direct": 4, "line.default": 2},
		"tollbench sweep: shards (ledger.shards: lock shards of the ledger)", "1", "4", "16 (default)", "failed", "default 50.0", "default 1.000",
		"throughput, calls/s", "gateway CPU per call, ms", "p99 time to first byte, ms")
	// drain_workers 64, and the baseline placed at the default, 256.
	f("drain_workers", map[string]int{"circle.gateway": 4, "circle.direct": 4, "line.default": 2},
		"64", "256 (default)", "gateway 256 (default): 50.0")
	// An axis with no points, and an empty sweep, still draw.
	f("gomaxprocs", map[string]int{"svg": 1, "circle.gateway": 0, "line.default": 2})
	var b bytes.Buffer
	if err := WriteAxisSVG(&b, &SweepResult{}, "shards"); err != nil || !strings.HasSuffix(b.String(), "</svg>\n") {
		t.Fatalf("cannot draw an empty sweep: %v", err)
	}
	svgParts(t, b.Bytes())
}

func TestWrap(t *testing.T) {
	f := func(s string, width int, want ...string) {
		t.Helper()
		if got := wrap(s, width); !slices.Equal(got, want) {
			t.Fatalf("unexpected wrap of %q at %d; got %q; want %q", s, width, got, want)
		}
	}
	f("", 10)
	f("one two three", 20, "one two three")
	f("one two three", 7, "one two", "three")
	f("one  two", 3, "one", "two")
	f("a verylongword b", 4, "a", "verylongword", "b")
	f("délai ok", 5, "délai", "ok")
}

func TestNiceCeil(t *testing.T) {
	f := func(v, want float64) {
		t.Helper()
		if got := niceCeil(v); got != want {
			t.Fatalf("unexpected niceCeil(%v); got %v; want %v", v, got, want)
		}
	}
	f(0, 1)
	f(-3, 1)
	f(1, 1)
	f(1.1, 2)
	f(3, 5)
	f(7, 10)
	f(1234, 2000)
	f(0.034, 0.05)
}

// TestReportJSON checks the JSON field names tools depend on.
func TestReportJSON(t *testing.T) {
	p := SweepPoint{"shards", 4}
	rep := fakeReport(p)
	rep.GatewayCost = &GatewayCost{CPUMsPerCall: 0.1}
	data, err := json.Marshal(&SweepResult{Rows: []SweepRow{{SweepPoint: p, Report: rep}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"axis":"shards","value":4,"report"`, `"axis_default":16`, `"gateway":[{"key":"ledger.shards","value":"4"}]`,
		`"requests_per_sec":`, `"p99_ms":`, `"cpu_ms_per_call":0.1`, `"throughput":0.5`, `"ttfb":`, `"disconnected":0`, `"drains_started":0`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Fatalf("the JSON lacks %s:\n%s", want, data)
		}
	}
}
