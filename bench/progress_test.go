package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	f := func(s, prev ProgressSnapshot, want string) {
		t.Helper()
		if got := progressLine(s, prev); got != want {
			t.Fatalf("unexpected line; got %q; want %q", got, want)
		}
	}
	f(ProgressSnapshot{Label: "gateway 1/2", Done: 1500, Errors: 2, Elapsed: 1500 * time.Millisecond},
		ProgressSnapshot{Done: 1000, Elapsed: time.Second},
		"gateway 1/2: 1500 calls, 1000/s now, 2 errors, 1.5s")
	f(ProgressSnapshot{Label: "direct", Done: 0, Elapsed: 0}, ProgressSnapshot{}, "direct: 0 calls, 0/s now, 0 errors, 0s")
	f(ProgressSnapshot{Label: "direct", Done: 3000, Elapsed: 2 * time.Second, Final: true},
		ProgressSnapshot{Done: 2900, Elapsed: 1900 * time.Millisecond},
		"direct: 3000 calls, 1500/s mean, 0 errors, 2s")
}

func TestProgressPrinter(t *testing.T) {
	var b bytes.Buffer
	p := ProgressPrinter(&b)
	p(ProgressSnapshot{Label: "a", Done: 10, Elapsed: time.Second})
	p(ProgressSnapshot{Label: "a", Done: 30, Elapsed: 2 * time.Second})
	p(ProgressSnapshot{Label: "a", Done: 40, Elapsed: 2 * time.Second, Final: true})
	p(ProgressSnapshot{Label: "b", Done: 5, Elapsed: time.Second})
	out := b.String()
	lines := strings.Split(out, "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "a: 30 calls, 20/s now") || !strings.HasSuffix(lines[0], "a: 40 calls, 20/s mean, 0 errors, 2s") {
		t.Fatalf("unexpected output %q", out)
	}
	// A new label starts its rate afresh.
	if !strings.HasSuffix(lines[1], "\r\x1b[Kb: 5 calls, 5/s now, 0 errors, 1s") {
		t.Fatalf("unexpected second load's line %q", lines[1])
	}
}
