package bench

import (
	"math"
	"time"
)

// pacer is the open-loop schedule: call seq is meant to start at
// start + seq/rate, whatever happened to the calls before it. Latency is
// measured from that intended start, so a target that stalls is charged
// for the whole stall by every call that should have started during it,
// instead of the stall delaying the next sends and hiding itself
// ("coordinated omission").
//
// A pacer is a value; it has no clock of its own, which keeps it testable.
type pacer struct {
	start time.Time
	// intervalNs is 1e9/rate, kept in float64 so that rates that do not
	// divide a second (3 calls/s) do not drift.
	intervalNs float64
}

func newPacer(start time.Time, ratePerSec float64) pacer {
	return pacer{start: start, intervalNs: 1e9 / ratePerSec}
}

// at is the intended start of call seq (0-based).
func (p pacer) at(seq int64) time.Time {
	return p.start.Add(time.Duration(math.Round(float64(seq) * p.intervalNs)))
}

// dueBy is how many calls are meant to have started by t (inclusive): the
// number of seq with at(seq) <= t.
func (p pacer) dueBy(t time.Time) int64 {
	elapsed := t.Sub(p.start)
	if elapsed < 0 {
		return 0
	}
	n := int64(math.Floor(float64(elapsed)/p.intervalNs)) + 1
	// Rounding in at() may put call n-1 a nanosecond after t, or call n
	// on t (one step at most either way); settle it against at() itself.
	if n > 0 && p.at(n-1).After(t) {
		n--
	} else if !p.at(n).After(t) {
		n++
	}
	return n
}
