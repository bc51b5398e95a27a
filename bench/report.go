package bench

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// WriteMarkdown writes a comparison as a Markdown table: one row per
// figure, columns gateway, (floor hop,) direct and the ratios to direct.
func WriteMarkdown(w io.Writer, rep *Report) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "tollbench: %s\n\n%s\n\n", describeSettings(rep.Settings, false), describeMachine(rep.Settings.Machine))
	t := comparisonTable{w: bw, rep: rep}
	t.header()
	t.loadRows()
	t.costRows()
	fmt.Fprintf(bw, "\nerrors by kind: gateway %s; direct %s", errorKinds(rep.Gateway.Errors), errorKinds(rep.Direct.Errors))
	if rep.Hop != nil {
		fmt.Fprintf(bw, "; floor hop %s", errorKinds(rep.Hop.Errors))
	}
	fmt.Fprintln(bw)
	return bw.Flush()
}

// comparisonTable writes WriteMarkdown's table, with the floor hop's
// columns when the report has them.
type comparisonTable struct {
	w   io.Writer
	rep *Report
}

func (t comparisonTable) header() {
	if t.rep.Hop != nil {
		fmt.Fprintf(t.w, "| | gateway | floor hop | direct | gateway / direct | hop / direct |\n|---|---:|---:|---:|---:|---:|\n")
		return
	}
	fmt.Fprintf(t.w, "| | gateway | direct | gateway / direct |\n|---|---:|---:|---:|\n")
}

// row writes one figure: the gateway's, the hop's, direct's, then the
// gateway's and the hop's ratio to direct (the hop's left out without a
// hop).
func (t comparisonTable) row(name, gateway, hop, direct, gatewayRatio, hopRatio string) {
	if t.rep.Hop != nil {
		fmt.Fprintf(t.w, "| %s | %s | %s | %s | %s | %s |\n", name, gateway, hop, direct, gatewayRatio, hopRatio)
		return
	}
	fmt.Fprintf(t.w, "| %s | %s | %s | %s |\n", name, gateway, direct, gatewayRatio)
}

func (t comparisonTable) loadRows() {
	g, d, h, r := t.rep.Gateway, t.rep.Direct, t.rep.Hop, t.rep.Ratios
	if h == nil {
		h = &LoadResult{}
	}
	t.row("calls", itoa(g.Calls), itoa(h.Calls), itoa(d.Calls), "", "")
	t.row("ok", itoa(g.OK), itoa(h.OK), itoa(d.OK), "", "")
	t.row("errors", itoa(g.ErrorCount), itoa(h.ErrorCount), itoa(d.ErrorCount), "", "")
	if t.rep.Settings.DisconnectShare > 0 {
		t.row("disconnected (left after the first delta)", itoa(g.Disconnected), itoa(h.Disconnected), itoa(d.Disconnected), "", "")
	}
	t.row("requests/s", f1(g.RequestsPerSec), f1(h.RequestsPerSec), f1(d.RequestsPerSec), f2(r.Throughput), f2(r.HopThroughput))
	lat := func(name string, pick func(*LoadResult) float64, withAdded bool) {
		gv, hv, dv := pick(g), pick(h), pick(d)
		gr, hr := ratioText(gv, dv), ratioText(hv, dv)
		if withAdded {
			gr += " (" + signed(gv-dv) + " ms)"
			hr += " (" + signed(hv-dv) + " ms)"
		}
		t.row(name, f3(gv), f3(hv), f3(dv), gr, hr)
	}
	lat("TTFB p50 (ms)", func(l *LoadResult) float64 { return l.TTFB.P50Ms }, true)
	lat("TTFB p90 (ms)", func(l *LoadResult) float64 { return l.TTFB.P90Ms }, false)
	lat("TTFB p99 (ms)", func(l *LoadResult) float64 { return l.TTFB.P99Ms }, true)
	lat("TTFB p99.9 (ms)", func(l *LoadResult) float64 { return l.TTFB.P999Ms }, false)
	lat("total p50 (ms)", func(l *LoadResult) float64 { return l.Total.P50Ms }, true)
	lat("total p90 (ms)", func(l *LoadResult) float64 { return l.Total.P90Ms }, false)
	lat("total p99 (ms)", func(l *LoadResult) float64 { return l.Total.P99Ms }, true)
	lat("total p99.9 (ms)", func(l *LoadResult) float64 { return l.Total.P999Ms }, false)
	t.row("tollbench CPU ms/call", f3(g.ClientCPUMsPerCall), f3(h.ClientCPUMsPerCall), f3(d.ClientCPUMsPerCall), "", "")
}

func (t comparisonTable) costRows() {
	c, hc := t.rep.GatewayCost, t.rep.HopCost
	if c == nil {
		return
	}
	hopCPU, overHop := "", ""
	if hc != nil {
		hopCPU, overHop = f3(hc.CPUMsPerCall), f2(t.rep.Ratios.GatewayCPUOverHop)+" of the hop's"
	}
	t.row("gateway CPU ms/call", f3(c.CPUMsPerCall), hopCPU, "", overHop, "")
	t.row("gateway CPU s per 1,000 calls", f3(c.CPUSecondsPer1000Calls), "", "", "", "")
	t.row("gateway CPU ms/call, idle cost taken out", f3(c.CPUMsPerCallNet), "", "", "", "")
	t.row("gateway cores busy (idle)", f2(c.CPUCores)+" ("+f3(c.IdleCPUCores)+")", "", "", "", "")
	t.row("gateway allocs/call", f2(c.AllocsPerCall), "", "", "", "")
	t.row("gateway allocs/call, idle allocs taken out", f2(c.AllocsPerCallNet), "", "", "", "")
	t.row("gateway idle allocs/s", f1(c.IdleAllocsPerSec), "", "", "", "")
	if c.PeakRSSMiB > 0 {
		hopRSS := ""
		if hc != nil {
			hopRSS = f1(hc.PeakRSSMiB)
		}
		t.row("peak RSS MiB (idle)", f1(c.PeakRSSMiB)+" ("+f1(c.IdleRSSMiB)+")", hopRSS, "", "", "")
		t.row("gateway RSS KiB per call in flight", f1(c.PeakRSSPerCallKiB), "", "", "", "")
	}
	t.row("ledger ops/s", f1(c.LedgerOpsPerSec), "", "", "", "")
	t.row("WAL records per sync", f2(c.WALRecordsPerSync), "", "", "", "")
	t.row("ledger holds / settled / voided (left open)", f0(c.Holds)+" / "+f0(c.Settlements)+" / "+f0(c.Voids)+" ("+f0(c.OpenHolds)+")", "", "", "", "")
	if c.DrainsStarted+c.DrainsRefused > 0 || t.rep.Settings.DisconnectShare > 0 {
		t.row("drains started / refused (pool full)", f0(c.DrainsStarted)+" / "+f0(c.DrainsRefused), "", "", "", "")
	}
}

// ratioText is a / b with two decimals, empty when b is zero.
func ratioText(a, b float64) string {
	if b == 0 {
		return ""
	}
	return f2(a / b)
}

// WriteSweepMarkdown writes a sweep as a Markdown table, one row per
// point: the baseline (axis "baseline"), then each axis's values, the
// base configuration's value marked "(default)".
func WriteSweepMarkdown(w io.Writer, res *SweepResult) error {
	bw := bufio.NewWriter(w)
	if rep := describedReport(res); rep != nil {
		fmt.Fprintf(bw, "tollbench sweep: %s; each point changes one setting from the baseline\n\n%s (first point)\n\n",
			describeSettings(rep.Settings, true), describeMachine(rep.Settings.Machine))
	}
	fmt.Fprint(bw, "| axis | value |")
	for _, c := range sweepColumns {
		fmt.Fprintf(bw, " %s |", c.head)
	}
	fmt.Fprint(bw, " errors |\n|---|---:|")
	for range sweepColumns {
		fmt.Fprint(bw, "---:|")
	}
	fmt.Fprint(bw, "---|\n")
	for _, row := range res.Rows {
		axis := row.Axis
		if row.IsBaseline() {
			axis = "baseline"
		}
		fmt.Fprintf(bw, "| %s | %s |", axis, pointValue(row))
		var errs []string
		if rep := row.Report; rep != nil {
			for _, c := range sweepColumns {
				fmt.Fprintf(bw, " %s |", c.cell(rep))
			}
			errs = append(errs, errorKinds(rep.Gateway.Errors))
		} else {
			fmt.Fprint(bw, strings.Repeat(" |", len(sweepColumns)))
		}
		if row.Error != "" {
			errs = append(errs, mdEscape(firstLine(row.Error)))
		}
		fmt.Fprintf(bw, " %s |\n", strings.Join(errs, "; "))
	}
	return bw.Flush()
}

// describedReport is the report a sweep's description comes from: the
// baseline's, whose settings are the base every point starts from, else
// the first there is.
func describedReport(res *SweepResult) *Report {
	if b := res.Baseline(); b != nil && b.Report != nil {
		return b.Report
	}
	for _, row := range res.Rows {
		if row.Report != nil {
			return row.Report
		}
	}
	return nil
}

// pointValue is a row's value cell: "default" for the baseline, the value
// otherwise, marked when it is the base configuration's.
func pointValue(row SweepRow) string {
	if row.IsBaseline() {
		return "default"
	}
	v := strconv.Itoa(row.Value)
	if row.Report != nil && row.Report.Settings.AxisDefault == row.Value {
		v += " (default)"
	}
	return v
}

// sweepColumns are the figures of WriteSweepMarkdown's table, one column
// each: the gateway's unless the heading says otherwise.
var sweepColumns = []struct {
	head string
	cell func(*Report) string
}{
	{"gateway calls/s", func(r *Report) string { return f1(r.Gateway.RequestsPerSec) }},
	{"direct calls/s", func(r *Report) string { return f1(r.Direct.RequestsPerSec) }},
	{"ratio", func(r *Report) string { return f2(r.Ratios.Throughput) }},
	{"CPU ms/call", costCell(func(c *GatewayCost) string { return f3(c.CPUMsPerCall) })},
	{"TTFB p99 ms", func(r *Report) string { return f3(r.Gateway.TTFB.P99Ms) }},
	{"added TTFB p99 ms", func(r *Report) string { return signed(r.Ratios.AddedTTFBP99Ms) }},
	{"allocs/call", costCell(func(c *GatewayCost) string { return f1(c.AllocsPerCall) })},
	{"RSS KiB/call in flight", costCell(func(c *GatewayCost) string {
		if c.PeakRSSMiB == 0 {
			return ""
		}
		return f1(c.PeakRSSPerCallKiB)
	})},
	{"WAL rec/sync", costCell(func(c *GatewayCost) string { return f2(c.WALRecordsPerSync) })},
	{"disconnected", func(r *Report) string {
		return itoa(r.Gateway.Disconnected) + " (" + f1(100*r.Gateway.DisconnectedShare) + "%)"
	}},
	{"drains / refused", costCell(func(c *GatewayCost) string { return f0(c.DrainsStarted) + " / " + f0(c.DrainsRefused) })},
}

// costCell is a column of the gateway's costs, empty without them.
func costCell(cell func(*GatewayCost) string) func(*Report) string {
	return func(r *Report) string {
		if r.GatewayCost == nil {
			return ""
		}
		return cell(r.GatewayCost)
	}
}

// describeSettings is a one-line summary of what was measured. A sweep's
// summary gives its baseline's gateway settings, from which each point
// changes one.
func describeSettings(s Settings, sweep bool) string {
	return strings.Join(settingsParts(s, sweep), "; ")
}

// settingsParts is describeSettings in parts: the load, the replies, the
// gateway.
func settingsParts(s Settings, sweep bool) []string {
	var load string
	if s.Mode == "open" {
		load = fmt.Sprintf("open loop at %g calls/s (at most %d in flight)", s.RatePerSec, s.Concurrency)
	} else {
		load = fmt.Sprintf("closed loop, concurrency %d", s.Concurrency)
	}
	if s.Requests > 0 {
		load += fmt.Sprintf(", %d calls", s.Requests)
	} else {
		load += fmt.Sprintf(", %gs", s.DurationSec)
	}
	load += fmt.Sprintf(" per side in %d interleaved rounds (warm-up %gs)", s.Rounds, s.WarmupSec)
	if s.DisconnectShare > 0 {
		load += fmt.Sprintf(", %g%% of clients leaving after the first delta", 100*s.DisconnectShare)
	}
	parts := []string{load}
	if s.Deltas > 0 {
		pace := fmt.Sprintf("%g ms", s.EventDelayMs)
		if s.EventJitterMs > 0 {
			pace = fmt.Sprintf("%g–%g ms (uniform)", s.EventDelayMs, s.EventDelayMs+s.EventJitterMs)
		}
		parts = append(parts, fmt.Sprintf("replies of %d deltas × %d B, %s between events", s.Deltas, s.DeltaBytes, pace))
	}
	if s.Accounts > 0 {
		parts = append(parts, describeGateway(s, sweep))
	}
	return parts
}

// describeGateway names the gateway's overrides and added environment; a
// sweep's are its baseline's, each point changing one setting from them.
func describeGateway(s Settings, sweep bool) string {
	var b strings.Builder
	b.WriteString("gateway")
	if sweep {
		b.WriteString(" baseline")
	}
	if len(s.Gateway) == 0 {
		b.WriteString(" as configured")
	}
	for i, g := range s.Gateway {
		sep := ", "
		if i == 0 {
			sep = " "
		}
		fmt.Fprintf(&b, "%s%s %s", sep, g.Key, g.Value)
	}
	if len(s.Gateway) > 0 {
		b.WriteString(" (the rest as configured)")
	}
	if len(s.GatewayEnv) > 0 {
		fmt.Fprintf(&b, ", env %s", strings.Join(s.GatewayEnv, " "))
	}
	fmt.Fprintf(&b, ", %d accounts", s.Accounts)
	if s.Cluster {
		fmt.Fprintf(&b, ", cluster mode on %d node(s) (calls spread over them in turn; costs are all nodes' added up)", s.Nodes)
	}
	return b.String()
}

// describeMachine is a one-line summary of the machine.
func describeMachine(m Machine) string {
	return fmt.Sprintf("machine: %d CPUs, %.1f GiB, %s, GOMAXPROCS %d; load average %.2f before, %.2f after",
		m.CPUs, float64(m.MemoryMiB)/1024, m.GoVersion, m.GOMAXPROCS, m.LoadBefore, m.LoadAfter)
}

// errorKinds lists error counts by kind in a stable order.
func errorKinds(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+" "+itoa(m[k]))
	}
	return strings.Join(parts, ", ")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
func f0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
func f3(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

func signed(v float64) string {
	if v >= 0 {
		return "+" + f3(v)
	}
	return f3(v)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
