package console

import (
	"sync"
	"time"
)

// throttle counts sign-in attempts that did not succeed per key (an
// address, a digest of a user's email) in a fixed window; a key with max
// of them in its window is refused until the window ends. The table is bounded: when it is full, windows that
// ended are dropped, and if none had, everything is (a flood of distinct
// keys resets counts, but each key still needs max failures of its own
// within one window to be refused, so the reset only ever helps legitimate
// users).
type throttle struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]*failures
}

type failures struct {
	count int
	until time.Time
}

const throttleKeys = 100_000

func newThrottle(max int, window time.Duration, now func() time.Time) *throttle {
	return &throttle{max: max, window: window, now: now, seen: map[string]*failures{}}
}

// take counts an attempt of key, if key may make one now: attempts are
// counted before the password is checked, so parallel guesses cannot pass
// the limit while the first ones are being hashed. A successful sign-in
// gives its attempt back (forget, refund).
func (t *throttle) take(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f := t.seen[key]
	if f == nil || !now.Before(f.until) {
		if len(t.seen) >= throttleKeys {
			t.prune(now)
		}
		f = &failures{until: now.Add(t.window)}
		t.seen[key] = f
	}
	if f.count >= t.max {
		return false
	}
	f.count++
	return true
}

// refund gives back an attempt that did not fail.
func (t *throttle) refund(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.seen[key]; f != nil && f.count > 0 {
		f.count--
	}
}

// forget clears key's failures after a successful sign-in.
func (t *throttle) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.seen, key)
}

func (t *throttle) prune(now time.Time) {
	for k, f := range t.seen {
		if !now.Before(f.until) {
			delete(t.seen, k)
		}
	}
	if len(t.seen) >= throttleKeys {
		clear(t.seen)
	}
}
