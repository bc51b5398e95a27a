//go:build invariants

package ledger

import (
	"strings"
	"testing"
)

// TestInvariantsChecked: with the invariants tag (make test) every operation
// checks its account; a broken account stops the next one with a BUG panic.
func TestInvariantsChecked(t *testing.T) {
	l, err := NewMemory(Config{})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, l, "a")
	mustTopUp(t, l, TopUpRequest{Account: "a", Amount: credit, OrderID: "o1", Credit: CreditPaid})
	s := l.shardOf("a")
	s.mu.Lock()
	s.mu.accounts["a"].charged++ // money from nowhere
	s.mu.Unlock()
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "BUG: account \"a\"") {
			t.Fatalf("unexpected panic %v; want the conservation check's", p)
		}
	}()
	_, _, _ = l.TopUp(TopUpRequest{Account: "a", Amount: credit, OrderID: "o2", Credit: CreditPaid})
	t.Fatalf("an operation on a broken account did not panic")
}
