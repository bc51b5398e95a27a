package console

import (
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/proxy/notify"
	"github.com/tollgate/tollgate/proxy/views"
)

// funcs are the templates' helpers: money as the contract's decimal
// credits, times in UTC, counts with thousands separators.
func funcs() template.FuncMap {
	return template.FuncMap{
		"credits": func(n int64) string { return money.Format(n) },
		"when":    whenOf,
		"date": func(n int64) string {
			if n == 0 {
				return "never"
			}
			return dateOf(n)
		},
		"count": countOf,
		"limit": func(n int64) string {
			switch {
			case n < 0:
				return "default"
			case n == 0:
				return "none"
			}
			return countOf(n)
		},
		"outcomes": func() []string { return outcomes },
		"has":      func(list []string, s string) bool { return slices.Contains(list, s) },
		// lastAttempt is a destination's latest attempt (nil for none).
		"lastAttempt": func(log []notify.Attempt) *notify.Attempt {
			if len(log) == 0 {
				return nil
			}
			return &log[len(log)-1]
		},
		// int64 turns the views' Amount into nano-credits for credits.
		"int64": func(a views.Amount) int64 { return int64(a) },
	}
}

func whenOf(n int64) string {
	if n == 0 {
		return "—"
	}
	return time.Unix(0, n).UTC().Format("2006-01-02 15:04:05 UTC")
}

// countOf writes n with thousands separators (12,345).
func countOf(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// writeJSONFile answers v as a JSON download.
func writeJSONFile(w http.ResponseWriter, v any) {
	b, err := sonic.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "cannot encode", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
