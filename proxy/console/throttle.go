package console

import (
	"sync"
	"time"

	"github.com/tollgate/tollgate/proxy/access"
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

// Take counts an attempt of key, if key may make one now. Attempts are
// counted before the password is checked, so parallel guesses cannot pass
// the limit while the first ones are being hashed; one that did not fail
// is given back with Refund.
func (t *throttle) Take(key string) (access.Ticket, bool, error) {
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
		return access.Ticket{}, false, nil
	}
	a.count++
	return access.Ticket{Key: key, Until: a.until}, true, nil
}

// Refund gives back an attempt (a window that ended or was dropped since
// is left alone).
func (t *throttle) Refund(x access.Ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a := t.seen[x.Key]; a != nil && a.until.Equal(x.Until) && a.count > 0 {
		a.count--
	}
}

// Forget clears key's attempts after a successful sign-in.
func (t *throttle) Forget(key string) {
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
