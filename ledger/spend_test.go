package ledger

import (
	"errors"
	"testing"
	"time"
)

func TestKeySpendLimit(t *testing.T) {
	clk := newClock()
	d := openDurable(t, Config{Now: clk.Now})
	mustCreate(t, d.Ledger, "a")
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 100 * credit, OrderID: "o", Credit: CreditPaid})
	k, err := d.CreateKey(Key{ID: "k1", AccountID: "a", Hash: [32]byte{1}, SpendLimit: 5 * credit, SpendPeriod: 24 * time.Hour, Limits: DefaultLimits})
	if err != nil {
		t.Fatal(err)
	}
	sl := SpendLimit{Limit: k.SpendLimit, Period: k.SpendPeriod, Anchor: k.CreatedAtNanos}
	hold := func(req string, amount int64) error {
		c, err := d.HoldForKey("a", req, "k1", amount, sl)
		if err == nil {
			err = c.Wait()
		}
		return err
	}
	if err := hold("r1", 3*credit); err != nil {
		t.Fatal(err)
	}
	// 3 held + 3 more would exceed 5.
	err = hold("r2", 3*credit)
	var se *SpendLimitError
	if !errors.As(err, &se) || !errors.Is(err, ErrSpendLimit) || se.Spent != 3*credit {
		t.Fatalf("unexpected error over the spend limit: %v", err)
	}
	if a := mustAccount(t, d.Ledger, "a"); a.Held != 3*credit {
		t.Fatalf("a refused hold must leave nothing held: %+v", a)
	}
	mustSettle(t, d.Ledger, "r1", credit) // 1 spent, nothing held
	if err := hold("r2", 4*credit); err != nil {
		t.Fatalf("1 spent + 4 fits in 5: %v", err)
	}
	mustSettle(t, d.Ledger, "r2", 4*credit) // 5 spent
	if err := hold("r3", 1); !errors.Is(err, ErrSpendLimit) {
		t.Fatalf("expected the limit to be reached; got %v", err)
	}
	// Other keys are not limited by it.
	if _, err := d.Hold("a", "r4", "k2", credit); err != nil {
		t.Fatal(err)
	}
	// The state survives a restart, and the next window starts afresh.
	before := fingerprint(d.Ledger)
	d.reopen()
	if fingerprint(d.Ledger) != before {
		t.Fatalf("replay gives another spend state")
	}
	if _, err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	d.reopen()
	if err := hold("r5", 1); !errors.Is(err, ErrSpendLimit) {
		t.Fatalf("the spend limit must survive a checkpoint and a restart; got %v", err)
	}
	clk.Advance(24 * time.Hour)
	if err := hold("r6", 5*credit); err != nil {
		t.Fatalf("a new window must start afresh: %v", err)
	}
	mustCheck(t, d.Ledger)
}
