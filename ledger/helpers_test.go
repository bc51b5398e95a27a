package ledger

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/wal"
)

// clock is a test clock that only moves when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) Nanos() int64 { return c.Now().UnixNano() }

// durable is a ledger on a real Pebble log in a temp dir that tests can
// close and reopen.
type durable struct {
	t   *testing.T
	dir string
	cfg Config
	log *wal.Log
	*Ledger
}

func openDurable(t *testing.T, cfg Config) *durable {
	t.Helper()
	d := &durable{t: t, dir: t.TempDir(), cfg: cfg}
	d.reopen()
	t.Cleanup(func() {
		if d.log != nil {
			d.log.Close()
		}
	})
	return d
}

// reopen closes the log (if open) and replays it into a new ledger.
func (d *durable) reopen() {
	d.t.Helper()
	if d.log != nil {
		if err := d.log.Close(); err != nil {
			d.t.Fatalf("cannot close log: %s", err)
		}
	}
	log, err := wal.Open(d.dir, wal.Config{})
	if err != nil {
		d.t.Fatalf("cannot open log: %s", err)
	}
	l, err := Open(log, d.cfg)
	if err != nil {
		d.t.Fatalf("cannot replay: %s", err)
	}
	d.log, d.Ledger = log, l
}

func mustCheck(t *testing.T, l *Ledger) Summary {
	t.Helper()
	s, err := l.Check()
	if err != nil {
		t.Fatalf("invariants broken: %s", err)
	}
	return s
}

func mustAccount(t *testing.T, l *Ledger, id string) AccountInfo {
	t.Helper()
	a, err := l.Account(id)
	if err != nil {
		t.Fatalf("cannot read account %q: %s", id, err)
	}
	return a
}

func mustCreate(t *testing.T, l *Ledger, id string) {
	t.Helper()
	if _, err := l.CreateAccount(AccountSpec{ID: id, Limits: DefaultLimits}); err != nil {
		t.Fatalf("cannot create account %q: %s", id, err)
	}
}

func mustTopUp(t *testing.T, l *Ledger, r TopUpRequest) Entry {
	t.Helper()
	e, _, err := l.TopUp(r)
	if err != nil {
		t.Fatalf("cannot top up %+v: %s", r, err)
	}
	return e
}

func mustHold(t *testing.T, l *Ledger, acct, req string, amount int64) {
	t.Helper()
	c, err := l.Hold(acct, req, "key1", amount)
	if err != nil {
		t.Fatalf("cannot hold %d for %q: %s", amount, req, err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("cannot wait for hold: %s", err)
	}
}

func mustSettle(t *testing.T, l *Ledger, req string, actual int64) {
	t.Helper()
	c, err := l.Settle(req, actual, &CallRecord{RequestID: req, Outcome: OutcomeOK})
	if err != nil {
		t.Fatalf("cannot settle %q at %d: %s", req, actual, err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("cannot wait for settle: %s", err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("unexpected error; got %v; want %v", err, want)
	}
}

// fingerprint encodes the whole state; equal ledgers give equal bytes.
func fingerprint(l *Ledger) string {
	l.lockAll()
	defer l.unlockAll()
	return string(l.encodeStateLocked())
}

const credit = money.NanosPerCredit
