package bench

import (
	"testing"
	"time"
)

func TestPacerAt(t *testing.T) {
	start := time.Unix(1000, 0)
	f := func(rate float64, seq int64, want time.Duration) {
		t.Helper()
		if got := newPacer(start, rate).at(seq).Sub(start); got != want {
			t.Fatalf("unexpected offset of call %d at %g/s; got %s; want %s", seq, rate, got, want)
		}
	}
	f(1000, 0, 0)
	f(1000, 1, time.Millisecond)
	f(1000, 2500, 2500*time.Millisecond)
	f(2000, 3, 1500*time.Microsecond)
	// A rate that does not divide a second does not drift: call 3n is at n s.
	f(3, 3, time.Second)
	f(3, 3000, 1000*time.Second)
	f(3, 1, 333333333*time.Nanosecond)
	f(0.5, 1, 2*time.Second)
}

func TestPacerDueBy(t *testing.T) {
	start := time.Unix(1000, 0)
	f := func(rate float64, offset time.Duration, want int64) {
		t.Helper()
		if got := newPacer(start, rate).dueBy(start.Add(offset)); got != want {
			t.Fatalf("unexpected calls due by +%s at %g/s; got %d; want %d", offset, rate, got, want)
		}
	}
	f(1000, -time.Millisecond, 0)
	// Call 0 is due at the start itself.
	f(1000, 0, 1)
	f(1000, time.Millisecond-1, 1)
	f(1000, time.Millisecond, 2)
	// A run of one second at 2000/s plans 2000 calls: those before its end.
	f(2000, time.Second-1, 2000)
	f(3, time.Second-1, 3)
	f(3, time.Second, 4)
	f(0.5, 10*time.Second, 6)
}

// TestPacerCatchUp: a dispatcher that wakes late finds every call due in
// the meantime and sends them at once, each with its own intended start,
// so the arrival rate over the run is kept and each call's latency counts
// its lateness.
func TestPacerCatchUp(t *testing.T) {
	start := time.Unix(1000, 0)
	p := newPacer(start, 1000)
	late := start.Add(50 * time.Millisecond)
	due := p.dueBy(late)
	if due != 51 {
		t.Fatalf("unexpected calls due after a 50 ms stall; got %d; want 51", due)
	}
	for seq := range due {
		if at := p.at(seq); at.After(late) {
			t.Fatalf("call %d is due but intended after the wake-up: %s", seq, at.Sub(start))
		}
	}
	if lateness := late.Sub(p.at(10)); lateness != 40*time.Millisecond {
		t.Fatalf("unexpected lateness of call 10; got %s; want 40ms", lateness)
	}
}

// TestPacerConsistency checks dueBy against at for many rates and times.
func TestPacerConsistency(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, rate := range []float64{1, 3, 7, 999, 1000, 2000, 33333, 1e6} {
		p := newPacer(start, rate)
		for seq := int64(0); seq < 2000; seq += 7 {
			at := p.at(seq)
			if got := p.dueBy(at); got != seq+1 {
				t.Fatalf("rate %g: unexpected dueBy(at(%d)); got %d; want %d", rate, seq, got, seq+1)
			}
			if got := p.dueBy(at.Add(-1)); got > seq {
				t.Fatalf("rate %g: call %d counted due before its time (dueBy %d)", rate, seq, got)
			}
		}
	}
}
