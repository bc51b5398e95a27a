package ledger

import (
	"errors"
	"testing"
)

// TestCloseAccount: closing revokes every key and freezes the account for
// good; top-ups, new keys and unfreezing are refused, adjustments and the
// settlement of a call in flight go through; closing twice changes
// nothing; all of it survives replay and a checkpoint.
func TestCloseAccount(t *testing.T) {
	d := openDurable(t, Config{})
	mustCreateAccount(t, d.Ledger, "acme")
	if _, _, err := d.TopUp(TopUpRequest{Account: "acme", Amount: 1000, OrderID: "o1", Credit: CreditPaid, Actor: "admin"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"k1", "k2"} {
		if _, err := d.CreateKey(Key{ID: id, AccountID: "acme", Hash: [32]byte{id[1]}, Limits: DefaultLimits}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := d.Hold("acme", "req_1", "k1", 100)
	if err == nil {
		err = c.Wait()
	}
	if err != nil {
		t.Fatal(err)
	}
	info, closed, err := d.CloseAccount("acme", "admin")
	if err != nil || !closed || info.ClosedAtNanos == 0 || !info.Frozen {
		t.Fatalf("unexpected close: %+v %v %v", info, closed, err)
	}
	check := func(l *Ledger) {
		t.Helper()
		for _, id := range []string{"k1", "k2"} {
			if k := l.Key(id); k == nil || !k.Revoked {
				t.Fatalf("key %s not revoked after the close: %+v", id, k)
			}
		}
		a, _ := l.Account("acme")
		if a.ClosedAtNanos != info.ClosedAtNanos || !a.Frozen {
			t.Fatalf("unexpected account after the close: %+v", a)
		}
		if _, _, err := l.TopUp(TopUpRequest{Account: "acme", Amount: 1, OrderID: "o-late", Credit: CreditPaid, Actor: "admin"}); !errors.Is(err, ErrAccountClosed) {
			t.Fatalf("unexpected top-up of a closed account: %v", err)
		}
		if _, err := l.CreateKey(Key{ID: "k3", AccountID: "acme", Hash: [32]byte{3}, Limits: DefaultLimits}); !errors.Is(err, ErrAccountClosed) {
			t.Fatalf("unexpected new key of a closed account: %v", err)
		}
		if err := l.SetFrozen("acme", false, "admin"); !errors.Is(err, ErrAccountClosed) {
			t.Fatalf("unexpected unfreezing of a closed account: %v", err)
		}
		if _, again, err := l.CloseAccount("acme", "admin"); err != nil || again {
			t.Fatalf("unexpected second close: %v %v", again, err)
		}
	}
	check(d.Ledger)
	if c, err := d.Settle("req_1", 40, nil); err != nil || c.Wait() != nil {
		t.Fatalf("the call in flight did not settle: %v", err)
	}
	if _, _, err := d.Adjust(AdjustRequest{Account: "acme", Amount: -960, Reason: "account closed", IdempotencyKey: "close:acme", Actor: "admin"}); err != nil {
		t.Fatalf("unexpected adjustment of a closed account: %v", err)
	}
	d.reopen()
	check(d.Ledger)
	if _, err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	d.reopen()
	check(d.Ledger)
	if a, _ := d.Account("acme"); a.Available != 0 || a.Charged != 40 {
		t.Fatalf("unexpected balance after the forfeit: %+v", a)
	}
}

func mustCreateAccount(t *testing.T, l *Ledger, id string) {
	t.Helper()
	if _, err := l.CreateAccount(AccountSpec{ID: id, Limits: DefaultLimits}); err != nil {
		t.Fatal(err)
	}
}
