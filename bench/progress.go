package bench

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// ProgressPrinter returns a LoadConfig.Progress function that keeps one
// status line up to date on w, a terminal: the load's label, calls done,
// the rate over the last interval, errors and elapsed time. A final
// snapshot ends the line. Only give it a terminal: it redraws with a
// carriage return and an erase-line escape, which would litter a log.
// The returned function is safe for concurrent use.
func ProgressPrinter(w io.Writer) func(ProgressSnapshot) {
	var mu sync.Mutex
	var last ProgressSnapshot
	return func(s ProgressSnapshot) {
		mu.Lock()
		defer mu.Unlock()
		if s.Label != last.Label || s.Elapsed < last.Elapsed {
			last = ProgressSnapshot{Label: s.Label}
		}
		end := ""
		if s.Final {
			end = "\n" // keep the load's summary; the next load starts a new line
		}
		fmt.Fprintf(w, "\r\x1b[K%s%s", progressLine(s, last), end)
		last = s
	}
}

// progressLine formats a snapshot; prev is the one before it (zero at the
// start of a load), for the current rate.
func progressLine(s, prev ProgressSnapshot) string {
	rate := 0.0
	if dt := s.Elapsed - prev.Elapsed; dt > 0 {
		rate = float64(s.Done-prev.Done) / dt.Seconds()
	}
	if s.Final && s.Elapsed > 0 {
		rate = float64(s.Done) / s.Elapsed.Seconds()
		return fmt.Sprintf("%s: %d calls, %.0f/s mean, %d errors, %s", s.Label, s.Done, rate, s.Errors, s.Elapsed.Round(10*time.Millisecond))
	}
	return fmt.Sprintf("%s: %d calls, %.0f/s now, %d errors, %s", s.Label, s.Done, rate, s.Errors, s.Elapsed.Round(100*time.Millisecond))
}
