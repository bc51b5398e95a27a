package ledger

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckFindsViolations: Check passes a consistent ledger and names each
// kind of broken invariant when the state is corrupted behind its back.
func TestCheckFindsViolations(t *testing.T) {
	for _, c := range []struct {
		name    string
		corrupt func(a *account, h *hold)
		want    string
	}{
		{"conservation", func(a *account, _ *hold) { a.charged++ }, "but available"},
		{"held against holds", func(a *account, _ *hold) { a.openHolds++ }, "but its open holds sum to"},
		{"bucket earmark", func(a *account, _ *hold) { a.buckets[0].earmarked++ }, "but holds mark"},
		{"negative bucket", func(a *account, _ *hold) { a.buckets[0].remaining = -1 }, "remaining -1"},
		{"hold marks", func(_ *account, h *hold) { h.amount++ }, "earmarks"},
		{"debt beside credit", func(a *account, _ *hold) { a.debt = 1 }, "debt 1 while"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := NewMemory(Config{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.CreateAccount(AccountSpec{ID: "acme", Limits: DefaultLimits}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := l.TopUp(TopUpRequest{Account: "acme", Amount: 1000, OrderID: "o", Credit: CreditPaid}); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Hold("acme", "req_1", "key_1", 100); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Check(); err != nil {
				t.Fatalf("unexpected violation of a consistent ledger: %s", err)
			}
			s := l.shardOf("acme")
			s.lock()
			a := s.mu.accounts["acme"]
			hs := l.holdShardOf("req_1")
			hs.mu.Lock()
			c.corrupt(a, hs.mu.holds["req_1"])
			hs.mu.Unlock()
			s.mu.Unlock()
			_, err = l.Check()
			if !errors.Is(err, ErrViolation) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("unexpected Check result; got %v; want a violation saying %q", err, c.want)
			}
		})
	}
}
