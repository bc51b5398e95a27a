package console

import (
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/proxy/views"
)

// daySpend is one day's charges by catalogue model.
type daySpend struct {
	Day     time.Time
	ByModel map[string]int64
}

func (d daySpend) total() int64 {
	var t int64
	for _, v := range d.ByModel {
		t += v
	}
	return t
}

// dailySpend is account's spend on each of the n days up to and including
// today (UTC), oldest first, from the ledger's statements (so it matches
// them to the nano-credit).
func dailySpend(l views.StatementSource, account string, now time.Time, n int) ([]daySpend, error) {
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	days := make([]daySpend, n)
	for i := range days {
		day := today.AddDate(0, 0, i-n+1)
		s, err := l.Statement(account, day.UnixNano(), day.AddDate(0, 0, 1).UnixNano())
		if err != nil {
			return nil, err
		}
		days[i] = daySpend{Day: day, ByModel: map[string]int64{}}
		for model, m := range s.ByModel {
			if model == "" {
				model = "unknown"
			}
			days[i].ByModel[model] += m.Amount
		}
	}
	return days, nil
}

// chartColours are the series' fills, cycled.
var chartColours = []string{"#3b6fd6", "#d9822b", "#2f9e6e", "#a24fbf", "#c94052", "#6b7a8f", "#b59a1b"}

// Chart geometry, in SVG user units.
const (
	chartWidth, chartHeight = 720, 220
	chartLeft, chartBottom  = 64, 24
	chartRight              = 24 // room for the last day's label
)

// spendChart draws days as stacked bars by model, with a legend and each
// bar's figures in its tooltip. Every text is escaped: model IDs come from
// the catalogue, but the chart does not rely on that.
func spendChart(days []daySpend) template.HTML {
	var models []string
	var max int64
	for _, d := range days {
		for m := range d.ByModel {
			if !slices.Contains(models, m) {
				models = append(models, m)
			}
		}
		max = maxOf(max, d.total())
	}
	slices.Sort(models)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="Daily spend by model, last %d days">`, chartWidth, chartHeight+40, len(days))
	plotH := float64(chartHeight - chartBottom)
	fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" class="axis"/>`, chartLeft, plotH, chartWidth-chartRight, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="12" class="tick">%s</text><text x="%d" y="%.0f" class="tick">0</text>`,
		chartLeft-6, template.HTMLEscapeString(money.Format(max)), chartLeft-6, plotH)
	slot := float64(chartWidth-chartLeft-chartRight) / float64(len(days))
	for i, d := range days {
		x, y := float64(chartLeft)+float64(i)*slot+2, plotH
		for j, m := range models {
			v := d.ByModel[m]
			if v == 0 || max == 0 {
				continue
			}
			h := plotH * float64(v) / float64(max)
			y -= h
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
				x, y, slot-4, h, chartColours[j%len(chartColours)], d.Day.Format("Jan 2"), template.HTMLEscapeString(m), money.Format(v))
		}
		if i%5 == 4 || i == len(days)-1 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" class="tick day">%s</text>`, x+slot/2, plotH+16, d.Day.Format("Jan 2"))
		}
	}
	for j, m := range models {
		x := chartLeft + j*140
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" class="legend">%s</text>`,
			x, chartHeight+14, chartColours[j%len(chartColours)], x+14, chartHeight+23, template.HTMLEscapeString(m))
	}
	if len(models) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" class="legend">No spend in these days.</text>`, chartLeft+8, plotH/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func maxOf(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
