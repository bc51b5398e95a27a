package bench

import (
	"bufio"
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Chart geometry in SVG user units: a title and legend, three panels
// stacked over one horizontal axis, the axis's values, notes.
const (
	chartWidth  = 800
	chartLeft   = 80  // room for the tick labels
	chartRight  = 120 // room for the default lines' labels
	chartTop    = 64  // title and legend
	panelHeight = 140
	panelGap    = 40 // above each panel: its title
	// chartTicks divides a panel's height: with tops of 1, 2 or 5 times a
	// power of ten (niceCeil), fifths give round tick labels.
	chartTicks = 5
	// chartLabels is the room for the values under the last panel.
	chartLabels = 36
	// chartNoteLines is how many lines of settings fit under the labels,
	// chartNoteWidth how many characters a line holds.
	chartNoteLines = 4
	chartNoteLine  = 14
	chartNoteWidth = 115
	chartHeight    = chartTop + 3*(panelGap+panelHeight) + chartLabels + chartNoteLines*chartNoteLine + 8
	colorGateway   = "#2b6cb0"
	colorDirect    = "#a0aec0"
	colorDefault   = "#dd6b20"
	colorFailed    = "#c53030"
)

// chartSeries is one line of a panel: value is NaN where a report lacks
// the figure.
type chartSeries struct {
	name, color string
	value       func(*Report) float64
}

// chartPanel is one of an axis chart's panels; its first series is the
// gateway's, which the default line repeats.
type chartPanel struct {
	title  string
	series []chartSeries
}

// axisPanels are the figures an axis chart shows: what a setting buys
// (throughput), what it costs (CPU per call), and what a client feels
// (p99 time to first byte), direct's as the reference where it has one.
var axisPanels = []chartPanel{
	{"throughput, calls/s", []chartSeries{
		{"gateway", colorGateway, func(r *Report) float64 { return r.Gateway.RequestsPerSec }},
		{"direct", colorDirect, func(r *Report) float64 { return r.Direct.RequestsPerSec }},
	}},
	{"gateway CPU per call, ms", []chartSeries{
		{"gateway", colorGateway, func(r *Report) float64 {
			if r.GatewayCost == nil {
				return math.NaN()
			}
			return r.GatewayCost.CPUMsPerCall
		}},
	}},
	{"p99 time to first byte, ms", []chartSeries{
		{"gateway", colorGateway, func(r *Report) float64 { return r.Gateway.TTFB.P99Ms }},
		{"direct", colorDirect, func(r *Report) float64 { return r.Direct.TTFB.P99Ms }},
	}},
}

// chartPoint is one position along an axis chart.
type chartPoint struct {
	value     int
	label     string
	rep       *Report // nil when the point failed
	isDefault bool    // the base configuration's value
}

// WriteAxisSVG draws one axis of a sweep as an SVG chart: three panels
// stacked over the axis's values, in increasing order, showing the
// gateway's throughput (with direct's), its CPU per call and its p99 time
// to first byte (with direct's). The baseline's figures are drawn across
// each panel as a dashed line marked "default"; when the base
// configuration's value lies on the axis, that value is labelled
// "(default)", and the baseline is placed there if the axis did not run
// it. It is hand-written SVG: a plotting dependency would be the biggest
// module in the tool for three kinds of line.
func WriteAxisSVG(w io.Writer, res *SweepResult, axis string) error {
	bw := bufio.NewWriter(w)
	pts, baseline := axisChartPoints(res, axis)
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := "tollbench sweep: " + axis
	if a, ok := LookupSweepAxis(axis); ok {
		title += " (" + truncate(a.Doc, 80) + ")"
	}
	fmt.Fprintf(bw, `<text x="%d" y="20" font-size="14">%s</text>`+"\n", chartLeft, esc(title))
	writeLegend(bw)
	plotW := float64(chartWidth - chartLeft - chartRight)
	slot := plotW / float64(max(1, len(pts)))
	x := func(i int) float64 { return chartLeft + slot*(float64(i)+0.5) }
	top := float64(chartTop)
	for _, p := range axisPanels {
		writePanel(bw, p, pts, baseline, top+panelGap, x)
		top += panelGap + panelHeight
	}
	for i, p := range pts {
		weight := "normal"
		if p.isDefault {
			weight = "bold"
		}
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="middle" font-weight="%s">%s</text>`+"\n", x(i), top+18, weight, esc(p.label))
	}
	if baseline != nil {
		var notes []string
		for _, part := range settingsParts(baseline.Settings, true) {
			notes = append(notes, wrap(part, chartNoteWidth)...)
		}
		for i, n := range notes[:min(chartNoteLines, len(notes))] {
			fmt.Fprintf(bw, `<text x="%d" y="%.1f" font-size="11" fill="#4a5568">%s</text>`+"\n",
				chartLeft, top+chartLabels+chartNoteLine*float64(i), esc(truncate(n, chartNoteWidth)))
		}
	}
	fmt.Fprintf(bw, "</svg>\n")
	return bw.Flush()
}

// axisChartPoints are the axis's points in increasing order of value,
// the base configuration's value marked, with the baseline placed at it
// when it is on the axis (positive) and the axis did not run it; and the
// baseline's report (nil when there is none).
func axisChartPoints(res *SweepResult, axis string) ([]chartPoint, *Report) {
	var baseline *Report
	if b := res.Baseline(); b != nil {
		baseline = b.Report
	}
	var pts []chartPoint
	def := 0
	for _, row := range res.Rows {
		if row.IsBaseline() || row.Axis != axis {
			continue
		}
		pts = append(pts, chartPoint{value: row.Value, rep: row.Report})
		if row.Report != nil && row.Report.Settings.AxisDefault > 0 {
			def = row.Report.Settings.AxisDefault
		}
	}
	if def > 0 && baseline != nil && !slices.ContainsFunc(pts, func(p chartPoint) bool { return p.value == def }) {
		pts = append(pts, chartPoint{value: def, rep: baseline})
	}
	slices.SortStableFunc(pts, func(a, b chartPoint) int { return cmp.Compare(a.value, b.value) })
	for i := range pts {
		p := &pts[i]
		p.label, p.isDefault = strconv.Itoa(p.value), p.value == def
		if p.isDefault {
			p.label += " (default)"
		}
	}
	return pts, baseline
}

// writeLegend writes the series' colours and the default line's.
func writeLegend(w io.Writer) {
	x := chartLeft
	for _, l := range []struct{ color, text string }{{colorGateway, "gateway"}, {colorDirect, "direct (reference)"}} {
		fmt.Fprintf(w, `<rect x="%d" y="34" width="12" height="12" fill="%s"/><text x="%d" y="44">%s</text>`+"\n", x, l.color, x+16, esc(l.text))
		x += 170
	}
	fmt.Fprintf(w, `<line x1="%d" y1="40" x2="%d" y2="40" stroke="%s" stroke-width="2" stroke-dasharray="6 4"/><text x="%d" y="44">default (the baseline)</text>`+"\n",
		x, x+24, colorDefault, x+30)
}

// writePanel draws one panel with its plot's top at top: grid, ticks,
// each series as a line broken at failed points, the baseline's gateway
// figure as a dashed "default" line, and "failed" where a point failed.
func writePanel(w io.Writer, p chartPanel, pts []chartPoint, baseline *Report, top float64, x func(int) float64) {
	bottom := top + panelHeight
	right := float64(chartWidth - chartRight)
	vmax := 0.0
	for _, s := range p.series {
		for _, pt := range pts {
			if pt.rep != nil {
				vmax = max(vmax, finite(s.value(pt.rep)))
			}
		}
		if baseline != nil {
			vmax = max(vmax, finite(s.value(baseline)))
		}
	}
	vtop := niceCeil(vmax)
	y := func(v float64) float64 { return bottom - v/vtop*panelHeight }
	fmt.Fprintf(w, `<text x="%d" y="%.1f" font-size="13">%s</text>`+"\n", chartLeft, top-12, esc(p.title))
	for i := 0; i <= chartTicks; i++ {
		v := vtop * float64(i) / chartTicks
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e2e8f0"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			chartLeft, y(v), right, y(v), chartLeft-6, y(v)+4, esc(tickLabel(v)))
	}
	fmt.Fprintf(w, `<path d="M%d %.1f V%.1f H%.1f" fill="none" stroke="black"/>`+"\n", chartLeft, top, bottom, right)
	for _, s := range slices.Backward(p.series) { // the gateway's on top
		writeSeries(w, s, pts, x, y)
	}
	if baseline != nil {
		if v := p.series[0].value(baseline); !math.IsNaN(v) {
			fmt.Fprintf(w, `<line class="default" x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n",
				chartLeft, y(v), right, y(v), colorDefault)
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" fill="%s">default %s</text>`+"\n", right+6, y(v)+4, colorDefault, esc(valueLabel(v)))
		}
	}
	for i, pt := range pts {
		if pt.rep == nil {
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">failed</text>`+"\n", x(i), bottom-8, colorFailed)
		}
	}
}

// writeSeries draws one series as a line with a dot per point, broken
// where a point failed or lacks the figure.
func writeSeries(w io.Writer, s chartSeries, pts []chartPoint, x func(int) float64, y func(float64) float64) {
	var path strings.Builder
	move := true
	for i, pt := range pts {
		if pt.rep == nil || math.IsNaN(s.value(pt.rep)) {
			move = true
			continue
		}
		cmd := "L"
		if move {
			cmd, move = "M", false
		}
		fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, x(i), y(s.value(pt.rep)))
	}
	if path.Len() > 0 {
		fmt.Fprintf(w, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.TrimSpace(path.String()), s.color)
	}
	for i, pt := range pts {
		if pt.rep == nil || math.IsNaN(s.value(pt.rep)) {
			continue
		}
		v := s.value(pt.rep)
		fmt.Fprintf(w, `<circle class="%s" cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s %s: %s</title></circle>`+"\n",
			s.name, x(i), y(v), s.color, esc(s.name), esc(pt.label), esc(valueLabel(v)))
	}
}

// finite is v, or 0 when v is NaN or infinite (a missing figure).
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, for an axis top;
// 1 for v <= 0 so that an empty chart still has a scale.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func tickLabel(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// valueLabel writes a figure with three significant digits or more.
func valueLabel(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// wrap breaks s into lines of at most width runes at spaces (a longer
// word gets a line of its own).
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len([]rune(line))+1+len([]rune(word)) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// truncate cuts s to n runes.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
