package bench

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// Chart geometry in SVG user units.
const (
	chartWidth  = 960
	chartHeight = 480
	chartLeft   = 80 // room for the throughput axis labels
	chartRight  = 80 // room for the latency axis labels
	chartTop    = 60 // title and legend
	chartBottom = 80 // point labels
	chartTicks  = 5
	// chartNoteLines is how many lines of settings fit under the labels.
	chartNoteLines = 3
	colorGateway   = "#2b6cb0"
	colorDirect    = "#a0aec0"
	colorTTFB      = "#dd6b20"
	colorTotal     = "#c53030"
)

// WriteSweepSVG draws a sweep as an SVG chart: for each point, bars of
// the gateway's and the direct throughput (left axis, calls/s), and lines
// of the gateway's p99 time to first byte and total time (right axis, ms),
// so the knee where more shards or workers stop paying shows at a glance.
// It is hand-written SVG: a plotting dependency would be the biggest
// module in the tool for one chart.
func WriteSweepSVG(w io.Writer, res *SweepResult) error {
	bw := bufio.NewWriter(w)
	type pt struct {
		label             string
		gw, direct        float64
		ttfbP99, totalP99 float64
		hasReport         bool
	}
	pts := make([]pt, 0, len(res.Rows))
	var maxRate, maxMs float64
	var notes []string
	for _, row := range res.Rows {
		p := pt{label: row.SweepPoint.String()}
		if rep := row.Report; rep != nil {
			p.hasReport = true
			p.gw, p.direct = rep.Gateway.RequestsPerSec, rep.Direct.RequestsPerSec
			p.ttfbP99, p.totalP99 = rep.Gateway.TTFB.P99Ms, rep.Gateway.Total.P99Ms
			maxRate = max(maxRate, p.gw, p.direct)
			maxMs = max(maxMs, p.ttfbP99, p.totalP99)
			notes = settingsParts(rep.Settings, true)
		}
		pts = append(pts, p)
	}
	rateTop, msTop := niceCeil(maxRate), niceCeil(maxMs)
	plotW := float64(chartWidth - chartLeft - chartRight)
	plotH := float64(chartHeight - chartTop - chartBottom)
	bottom := float64(chartHeight - chartBottom)
	yRate := func(v float64) float64 { return bottom - v/rateTop*plotH }
	yMs := func(v float64) float64 { return bottom - v/msTop*plotH }
	slot := plotW / float64(max(1, len(pts)))
	xCenter := func(i int) float64 { return chartLeft + slot*(float64(i)+0.5) }

	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(bw, `<text x="%d" y="20" font-size="14">tollbench sweep: throughput and p99 latency at each point</text>`+"\n", chartLeft)
	// What was measured, under the point labels, one part a line.
	for i, n := range notes[:min(len(notes), chartNoteLines)] {
		fmt.Fprintf(bw, `<text x="%d" y="%.1f" font-size="11" fill="#4a5568">%s</text>`+"\n", chartLeft, bottom+36+14*float64(i), esc(truncate(n, 150)))
	}

	// Axes, grid and tick labels.
	for i := 0; i <= chartTicks; i++ {
		frac := float64(i) / chartTicks
		y := bottom - frac*plotH
		fmt.Fprintf(bw, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e2e8f0"/>`+"\n", chartLeft, y, chartWidth-chartRight, y)
		fmt.Fprintf(bw, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", chartLeft-6, y+4, esc(tickLabel(frac*rateTop)))
		fmt.Fprintf(bw, `<text x="%d" y="%.1f">%s</text>`+"\n", chartWidth-chartRight+6, y+4, esc(tickLabel(frac*msTop)))
	}
	fmt.Fprintf(bw, `<line x1="%d" y1="%d" x2="%d" y2="%.1f" stroke="black"/>`+"\n", chartLeft, chartTop, chartLeft, bottom)
	fmt.Fprintf(bw, `<line x1="%d" y1="%d" x2="%d" y2="%.1f" stroke="black"/>`+"\n", chartWidth-chartRight, chartTop, chartWidth-chartRight, bottom)
	fmt.Fprintf(bw, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black"/>`+"\n", chartLeft, bottom, chartWidth-chartRight, bottom)
	fmt.Fprintf(bw, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">calls/s</text>`+"\n", chartTop+plotH/2)
	fmt.Fprintf(bw, `<text transform="translate(%d %.1f) rotate(90)" text-anchor="middle">p99 ms (gateway)</text>`+"\n", chartWidth-16, chartTop+plotH/2)

	// Legend.
	legend := []struct{ color, text string }{
		{colorGateway, "gateway calls/s"}, {colorDirect, "direct calls/s"},
		{colorTTFB, "gateway TTFB p99"}, {colorTotal, "gateway total p99"},
	}
	for i, l := range legend {
		x := chartLeft + i*170
		fmt.Fprintf(bw, `<rect x="%d" y="34" width="12" height="12" fill="%s"/><text x="%d" y="44">%s</text>`+"\n", x, l.color, x+16, esc(l.text))
	}

	// Bars and point labels.
	barW := min(40, slot*0.35)
	for i, p := range pts {
		x := xCenter(i)
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11">%s</text>`+"\n", x, bottom+18, esc(p.label))
		if !p.hasReport {
			fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">failed</text>`+"\n", x, bottom-10, colorTotal)
			continue
		}
		fmt.Fprintf(bw, `<rect class="gateway" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>gateway %s calls/s</title></rect>`+"\n",
			x-barW, yRate(p.gw), barW, bottom-yRate(p.gw), colorGateway, f1(p.gw))
		fmt.Fprintf(bw, `<rect class="direct" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>direct %s calls/s</title></rect>`+"\n",
			x, yRate(p.direct), barW, bottom-yRate(p.direct), colorDirect, f1(p.direct))
	}

	// Latency lines, broken at failed points.
	for _, series := range []struct {
		color string
		v     func(pt) float64
	}{{colorTTFB, func(p pt) float64 { return p.ttfbP99 }}, {colorTotal, func(p pt) float64 { return p.totalP99 }}} {
		var path strings.Builder
		move := true
		for i, p := range pts {
			if !p.hasReport {
				move = true
				continue
			}
			cmd := "L"
			if move {
				cmd, move = "M", false
			}
			fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, xCenter(i), yMs(series.v(p)))
		}
		if path.Len() > 0 {
			fmt.Fprintf(bw, `<path d="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.TrimSpace(path.String()), series.color)
		}
		for i, p := range pts {
			if p.hasReport {
				fmt.Fprintf(bw, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s ms</title></circle>`+"\n", xCenter(i), yMs(series.v(p)), series.color, f3(series.v(p)))
			}
		}
	}
	fmt.Fprintf(bw, "</svg>\n")
	return bw.Flush()
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

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// truncate cuts s to n runes.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
