package ledger

import (
	"sync"
	"sync/atomic"
	"time"
)

// coarseClockPeriod is the resolution of the default clock: fine enough for
// entry times, hold ages and expiry, coarse enough that an idle gateway does
// not wake a thousand times a second (1 ms cost 4% of a core when idle).
const coarseClockPeriod = 10 * time.Millisecond

// coarseClock is the ledger's default clock: the time, refreshed every
// coarseClockPeriod by a goroutine. Reading it is one atomic load, where
// time.Now costs over 100 ns on some virtual machines (measured: a fifth of
// a hold+settle pair). Entry times and hold ages need no finer resolution.
type coarseClock struct {
	now  atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startCoarseClock() *coarseClock {
	c := &coarseClock{stop: make(chan struct{})}
	c.now.Store(time.Now().UnixNano())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(coarseClockPeriod)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case now := <-t.C:
				c.now.Store(now.UnixNano())
			}
		}
	}()
	return c
}

func (c *coarseClock) Now() time.Time { return time.Unix(0, c.now.Load()) }

func (c *coarseClock) nanos() int64 { return c.now.Load() }

func (c *coarseClock) close() {
	close(c.stop)
	c.wg.Wait()
}
