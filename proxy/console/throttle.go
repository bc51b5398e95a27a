package console

import (
	"sync"
	"time"
)

// throttle counts sign-in attempts that did not succeed per key (an
// address, a digest of a user's email) in a fixed window; a key with max
// of them in its window is refused until the window ends.
//
// The table is bounded. When it is full, windows that ended are dropped,
// then the keys not refused yet (their counts restart): a flood of new
// keys can reset partial counts but never frees a key that is refused, so
// a guesser still gets at most max tries per window and reset. The
// addresses feeding it are throttled first (signIn), so a flood needs
// many addresses.
type throttle struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]*attempts
}

// attempts are one key's attempts in one window.
type attempts struct {
	count int
	until time.Time
}

const throttleKeys = 100_000

func newThrottle(max int, window time.Duration, now func() time.Time) *throttle {
	return &throttle{max: max, window: window, now: now, seen: map[string]*attempts{}}
}

// take counts an attempt of key, if key may make one now, and returns the
// window it was counted in (nil: refused). Attempts are counted before the
// password is checked, so parallel guesses cannot pass the limit while the
// first ones are being hashed; one that did not fail is given back with
// refund.
func (t *throttle) take(key string) *attempts {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a := t.seen[key]
	if a == nil || !now.Before(a.until) {
		if len(t.seen) >= throttleKeys {
			t.prune(now)
		}
		a = &attempts{until: now.Add(t.window)}
		t.seen[key] = a
	}
	if a.count >= t.max {
		return nil
	}
	a.count++
	return a
}

// refund gives back an attempt counted in a (a window that ended or was
// dropped since is left alone).
func (t *throttle) refund(a *attempts) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a != nil && a.count > 0 {
		a.count--
	}
}

// forget clears key's attempts after a successful sign-in.
func (t *throttle) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.seen, key)
}

func (t *throttle) prune(now time.Time) {
	for k, a := range t.seen {
		if !now.Before(a.until) {
			delete(t.seen, k)
		}
	}
	for k, a := range t.seen {
		if len(t.seen) < throttleKeys {
			return
		}
		if a.count < t.max {
			delete(t.seen, k)
		}
	}
}
