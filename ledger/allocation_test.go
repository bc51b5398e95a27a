//go:build !race

package ledger

import (
	"github.com/tollgate/tollgate/internal/tokens"

	"fmt"
	"testing"
)

// TestAllocationHoldSettle asserts that a hold and its settlement, with a
// call record, allocate nothing in steady state.
func TestAllocationHoldSettle(t *testing.T) {
	l, err := NewMemory(Config{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, l, "a")
	mustTopUp(t, l, TopUpRequest{Account: "a", Amount: 1 << 60, OrderID: "o", Credit: CreditPaid})
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = fmt.Sprint("req_", i)
	}
	call := &CallRecord{AccountID: "a", KeyID: "key_1", Model: "claude-haiku-4-5", Status: 200, Outcome: OutcomeOK, Counts: tokens.Counts{InputTokens: 100, OutputTokens: 20}}
	i := 0
	n := testing.AllocsPerRun(1000, func() {
		id := ids[i%len(ids)]
		i++
		call.RequestID = id
		if _, err := l.Hold("a", id, "key_1", 1000); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Settle(id, 700, call); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("unexpected allocations per hold+settle; got %v; want 0", n)
	}
}
