package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/ledger"
)

// TestOutbox: every change the Authority commits on any node reaches the
// outbox once, in a transaction with it (a refused top-up leaves no row);
// one account's changes keep their commit order; a transaction that took
// a smaller id but commits after a larger one was read is read later, not
// skipped; rows the notifier has passed are deleted.
func TestOutbox(t *testing.T) {
	pg, pool := testDB(t)
	other := connectTB(t, pg)
	nodes := []*Authority{NewAuthority(pool, 365*24*time.Hour, nil), NewAuthority(other, 365*24*time.Hour, nil)}
	a := nodes[0]
	for i := range 4 {
		if _, err := a.CreateAccount(ledger.AccountSpec{ID: fmt.Sprintf("acct_%d", i), Limits: ledger.DefaultLimits}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if _, _, err := nodes[i%2].TopUp(ledger.TopUpRequest{Account: fmt.Sprintf("acct_%d", i%4), Amount: oneCredit,
				OrderID: fmt.Sprintf("ord_%d", i), Credit: ledger.CreditPaid}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, _, err := a.TopUp(ledger.TopUpRequest{Account: "acct_0", Amount: oneCredit, OrderID: "ord_1", Credit: ledger.CreditPaid}); err == nil {
		t.Fatal("an order ID of another account was accepted")
	}
	if err := nodes[1].SetFrozen("acct_1", true, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].SetFrozen("acct_1", true, "admin"); err != nil { // no change, no row
		t.Fatal(err)
	}
	k, err := a.CreateKey(ledger.Key{ID: "key_1", AccountID: "acct_2", Hash: [32]byte{2}, Name: "ci", Limits: ledger.DefaultLimits})
	if err != nil || a.RevokeKey(k.ID) != nil || a.RevokeKey(k.ID) != nil {
		t.Fatalf("key: %v", err)
	}

	o := NewOutbox(pool, a)
	got := readOutbox(t, o, 0)
	kinds := map[ledger.ChangeKind]int{}
	last := map[string]int64{}
	for _, c := range got {
		kinds[c.Kind]++
		if c.Kind == ledger.ChangeEntry {
			if c.Entry.AvailableAfter <= last[c.Account] {
				t.Fatalf("%s's top-ups out of order: available %d after %d", c.Account, c.Entry.AvailableAfter, last[c.Account])
			}
			last[c.Account] = c.Entry.AvailableAfter
		}
	}
	if kinds[ledger.ChangeEntry] != 40 || kinds[ledger.ChangeFreeze] != 1 || kinds[ledger.ChangeKeyCreate] != 1 || kinds[ledger.ChangeKeyRevoke] != 1 || len(got) != 43 {
		t.Fatalf("outbox: %v (%d rows), want 40 top-ups, a freeze, a key made and revoked", kinds, len(got))
	}
	for i, c := range got {
		if c.Seq != uint64(i+1) {
			t.Fatalf("row %d has place %d", i, c.Seq)
		}
	}

	// A slow transaction holds a smaller id while a later one commits.
	ctx := context.Background()
	slow, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx) //nolint:errcheck // committed below
	if _, err := slow.Exec(ctx, `INSERT INTO tg_outbox (change) VALUES ($1)`, []byte(`{"Kind":2,"Account":"acct_3"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.TopUp(ledger.TopUpRequest{Account: "acct_3", Amount: oneCredit, OrderID: "ord_late", Credit: ledger.CreditPaid}); err != nil {
		t.Fatal(err)
	}
	if more := readOutbox(t, o, 43); len(more) != 1 || more[0].Kind != ledger.ChangeEntry {
		t.Fatalf("after the fast commit: %+v", more)
	}
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if late := readOutbox(t, o, 44); len(late) != 1 || late[0].Kind != ledger.ChangeFreeze || late[0].Seq != 45 {
		t.Fatalf("the slow transaction's row after it committed: %+v", late)
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM tg_outbox`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d rows left after the notifier passed 44 (%v), want 1 (the one after it)", rows, err)
	}
}

// readOutbox reads the outbox's changes after seq.
func readOutbox(t *testing.T, o *Outbox, after uint64) []ledger.Change {
	t.Helper()
	var out []ledger.Change
	if err := o.Changes(after, func(c ledger.Change) error { out = append(out, c); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNotifyLock: a holder learns that another process wrote the
// notifier's state (also one that died before it unlocked), not its own
// writes, and reads again after a failed read.
func TestNotifyLock(t *testing.T) {
	pg, pool := testDB(t)
	a, b := NewNotifyLock(pool), NewNotifyLock(connectTB(t, pg))
	ctx := context.Background()
	hold := func(l *NotifyLock, current bool, write func()) bool {
		t.Helper()
		changed, unlock, err := l.Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if write != nil {
			write()
		}
		unlock(current)
		return changed
	}
	write := func(l *NotifyLock) func() {
		return func() {
			if err := l.Write([]string{"notify/x"}, [][]byte{[]byte("1")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !hold(a, true, nil) || !hold(b, true, nil) {
		t.Fatal("a first lock does not read the state")
	}
	if hold(a, true, write(a)) {
		t.Fatal("nobody wrote, yet a reads again")
	}
	if hold(a, true, nil) {
		t.Fatal("a reads its own write again")
	}
	if !hold(b, false, nil) || !hold(b, true, nil) {
		t.Fatal("b missed a's write, or did not read again after a failed read")
	}
	if hold(b, true, nil) {
		t.Fatal("b reads again with nothing new")
	}
	// A writer that dies before it unlocks: its write still counts.
	c := NewNotifyLock(connectTB(t, pg))
	_, unlockC, err := c.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	write(c)()
	pg.Psql("tollgate", fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = %d`, notifyLockKey))
	if !hold(a, true, nil) {
		t.Fatal("a missed the write of a process that died holding the lock")
	}
	unlockC(true) // its session is gone: this only gives its connection up
}
