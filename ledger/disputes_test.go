package ledger

import (
	"errors"
	"sync"
	"testing"
)

// TestDisputes: a dispute is filed once per call (a repeat returns it, a
// second one is refused); accepting credits the refund once, by an
// adjustment keyed by the dispute's ID, however many operators accept it
// at the same time; a rejection needs a reason and cannot follow an
// acceptance; all of it survives replay and a checkpoint.
func TestDisputes(t *testing.T) {
	d := openDurable(t, Config{})
	mustCreateAccount(t, d.Ledger, "acme")
	if _, _, err := d.TopUp(TopUpRequest{Account: "acme", Amount: 1000, OrderID: "o1", Credit: CreditPaid, Actor: "admin"}); err != nil {
		t.Fatal(err)
	}
	file := func(id, req string) (Dispute, bool, error) {
		return d.FileDispute(Dispute{ID: id, AccountID: "acme", RequestID: req, Reason: "wrong answer"})
	}
	first, created, err := file("dsp_1", "req_1")
	if err != nil || !created || first.State != DisputeOpen || first.FiledAt == 0 {
		t.Fatalf("unexpected filing: %+v %v %v", first, created, err)
	}
	if again, created, err := file("dsp_1", "req_1"); err != nil || created || again != first {
		t.Fatalf("unexpected repeat: %+v %v %v", again, created, err)
	}
	if _, _, err := file("dsp_2", "req_1"); !errors.Is(err, ErrDisputeExists) {
		t.Fatalf("unexpected second dispute of one call: %v", err)
	}
	if _, _, err := file("dsp_3", "req_2"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := d.AcceptDispute("dsp_1", 250, "fair", "op:alice"); err != nil {
				t.Errorf("unexpected accept: %v", err)
			}
		})
	}
	wg.Wait()
	if _, err := d.RejectDispute("dsp_1", "too late", "op:bob"); !errors.Is(err, ErrDisputeResolved) {
		t.Fatalf("unexpected rejection of an accepted dispute: %v", err)
	}
	if _, err := d.RejectDispute("dsp_3", "", "op:bob"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unexpected rejection without a reason: %v", err)
	}
	if _, err := d.RejectDispute("dsp_3", "the answer was right", "op:bob"); err != nil {
		t.Fatal(err)
	}
	check := func(l *Ledger) {
		t.Helper()
		acc, _ := l.Dispute("dsp_1")
		if acc.State != DisputeAccepted || acc.Refund != 250 || acc.AdjustmentID == 0 || acc.ResolvedBy != "op:alice" {
			t.Fatalf("unexpected accepted dispute: %+v", acc)
		}
		if a, _ := l.Account("acme"); a.Available != 1250 {
			t.Fatalf("the refund was not credited exactly once: available %d", a.Available)
		}
		open := DisputeOpen
		if got := l.Disputes("acme", &open); len(got) != 0 {
			t.Fatalf("unexpected open disputes: %+v", got)
		}
		if all := l.Disputes("", nil); len(all) != 2 || all[1].State != DisputeRejected || all[1].Resolution != "the answer was right" {
			t.Fatalf("unexpected disputes: %+v", all)
		}
	}
	check(d.Ledger)
	d.reopen()
	check(d.Ledger)
	if _, err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	d.reopen()
	check(d.Ledger)
}
