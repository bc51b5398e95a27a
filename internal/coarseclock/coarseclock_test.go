package coarseclock

import (
	"testing"
	"time"
)

// TestFollowsTheTime: the clock is never ahead of time.Now and catches up
// with it.
func TestFollowsTheTime(t *testing.T) {
	for range 3 {
		before := time.Now().UnixNano()
		for deadline := time.Now().Add(5 * time.Second); Nanos() < before; time.Sleep(Period) {
			if time.Now().After(deadline) {
				t.Fatalf("the coarse clock did not reach %d within 5s; it reads %d", before, Nanos())
			}
		}
		if got, after := Nanos(), time.Now().UnixNano(); got > after {
			t.Fatalf("the coarse clock is ahead of time.Now: %d > %d", got, after)
		}
	}
}
