package ledger

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestTopUpIdempotentAndConflicts(t *testing.T) {
	clk := newClock()
	d := openDurable(t, Config{Now: clk.Now})
	mustCreate(t, d.Ledger, "acme")
	mustCreate(t, d.Ledger, "other")
	first, created, err := d.TopUp(TopUpRequest{Account: "acme", Amount: 10 * credit, OrderID: "o1", Credit: CreditPaid})
	if err != nil || !created {
		t.Fatalf("cannot top up: created=%v err=%v", created, err)
	}
	again, created, err := d.TopUp(TopUpRequest{Account: "acme", Amount: 10 * credit, OrderID: "o1", Credit: CreditPaid})
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("repeated order must return the first entry; got %+v created=%v err=%v", again, created, err)
	}
	_, _, err = d.TopUp(TopUpRequest{Account: "acme", Amount: 11 * credit, OrderID: "o1", Credit: CreditPaid})
	wantErr(t, err, ErrOrderConflict)
	_, _, err = d.TopUp(TopUpRequest{Account: "other", Amount: 10 * credit, OrderID: "o1", Credit: CreditPaid})
	wantErr(t, err, ErrOrderConflict)
	_, _, err = d.TopUp(TopUpRequest{Account: "nobody", Amount: 10 * credit, OrderID: "o2", Credit: CreditPaid})
	wantErr(t, err, ErrUnknownAccount)
	_, _, err = d.TopUp(TopUpRequest{Account: "acme", Amount: 0, OrderID: "o3", Credit: CreditPaid})
	wantErr(t, err, ErrInvalid)
	_, _, err = d.TopUp(TopUpRequest{Account: "acme", Amount: -5, OrderID: "o3", Credit: CreditPaid})
	wantErr(t, err, ErrInvalid)
	_, _, err = d.TopUp(TopUpRequest{Account: "acme", Amount: 5, OrderID: "o3", Credit: CreditGift})
	wantErr(t, err, ErrInvalid) // gift without expiry
	_, _, err = d.TopUp(TopUpRequest{Account: "acme", Amount: 5, OrderID: "o3", Credit: CreditPaid, ExpiresAtNanos: clk.Nanos() + 1})
	wantErr(t, err, ErrInvalid) // paid with expiry
	if a := mustAccount(t, d.Ledger, "acme"); a.Available != 10*credit || a.TopUps != 10*credit {
		t.Fatalf("credited more than once: %+v", a)
	}
	d.reopen()
	again, created, err = d.TopUp(TopUpRequest{Account: "acme", Amount: 10 * credit, OrderID: "o1", Credit: CreditPaid})
	if err != nil || created || again.ID != first.ID || again.AvailableAfter != first.AvailableAfter {
		t.Fatalf("order IDs must survive a restart; got %+v created=%v err=%v", again, created, err)
	}
	mustCheck(t, d.Ledger)
}

func TestHoldSettleVoid(t *testing.T) {
	clk := newClock()
	d := openDurable(t, Config{Now: clk.Now})
	mustCreate(t, d.Ledger, "a")
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 10 * credit, OrderID: "o1", Credit: CreditPaid})

	mustHold(t, d.Ledger, "a", "r1", 4*credit)
	_, err := d.Hold("a", "r1", "k", 1)
	wantErr(t, err, ErrAlreadyHeld)
	_, err = d.Hold("a", "r2", "k", 7*credit)
	var ie *InsufficientError
	if !errors.As(err, &ie) || !errors.Is(err, ErrInsufficient) || ie.Available != 6*credit || ie.Hold != 7*credit {
		t.Fatalf("unexpected error for a hold that does not fit; got %v", err)
	}
	if a := mustAccount(t, d.Ledger, "a"); a.Available != 6*credit || a.Held != 4*credit {
		t.Fatalf("unexpected balances after hold: %+v", a)
	}
	mustSettle(t, d.Ledger, "r1", 1*credit)
	if a := mustAccount(t, d.Ledger, "a"); a.Available != 9*credit || a.Held != 0 || a.Charged != credit {
		t.Fatalf("unexpected balances after settle: %+v", a)
	}
	_, err = d.Settle("r1", 1, nil)
	wantErr(t, err, ErrNoOpenHold)
	_, err = d.Void("r1", "again", nil)
	wantErr(t, err, ErrNoOpenHold)
	_, err = d.Settle("never", 1, nil)
	wantErr(t, err, ErrNoOpenHold)

	mustHold(t, d.Ledger, "a", "r2", 2*credit)
	if c, err := d.Void("r2", "upstream_error", &CallRecord{RequestID: "r2", Outcome: OutcomeUpstreamError}); err != nil || c.Wait() != nil {
		t.Fatalf("cannot void: %v", err)
	}
	_, err = d.Settle("r2", 1, nil)
	wantErr(t, err, ErrNoOpenHold) // settle after void
	if a := mustAccount(t, d.Ledger, "a"); a.Available != 9*credit || a.Charged != credit {
		t.Fatalf("void must charge nothing: %+v", a)
	}
	_, err = d.Hold("nobody", "r3", "k", 1)
	wantErr(t, err, ErrUnknownAccount)
	_, err = d.Hold("a", "r3", "k", -1)
	wantErr(t, err, ErrInvalid)

	// Entries, newest first, with the contract's signed amounts.
	entries, more, err := d.Entries("a", 0, 100)
	if err != nil || more {
		t.Fatalf("cannot list entries: more=%v err=%v", more, err)
	}
	want := []struct {
		kind   EntryKind
		amount int64
		after  int64
	}{
		{EntryVoid, 2 * credit, 9 * credit},
		{EntryHold, -2 * credit, 7 * credit},
		{EntrySettle, 3 * credit, 9 * credit},
		{EntryHold, -4 * credit, 6 * credit},
		{EntryTopUp, 10 * credit, 10 * credit},
	}
	if len(entries) != len(want) {
		t.Fatalf("unexpected entries; got %+v", entries)
	}
	for i, w := range want {
		e := entries[i]
		if e.Kind != w.kind || e.Amount != w.amount || e.AvailableAfter != w.after {
			t.Fatalf("unexpected entry %d; got %v %d after %d; want %v %d after %d", i, e.Kind, e.Amount, e.AvailableAfter, w.kind, w.amount, w.after)
		}
	}
	if s := entries[2]; s.Held != 4*credit || s.Charged != credit {
		t.Fatalf("settle entry must carry held and charged; got %+v", s)
	}
	if c, err := d.CallByRequestID("r1"); err != nil || c == nil || c.Held != 4*credit || c.Charged != credit {
		t.Fatalf("the settlement's call record must carry held and charged; got %+v, %v", c, err)
	}
	// Pagination by cursor.
	page, more, err := d.Entries("a", entries[1].ID, 2)
	if err != nil || !more || len(page) != 2 || page[0].ID != entries[2].ID {
		t.Fatalf("unexpected page; got %+v more=%v err=%v", page, more, err)
	}
	before := fingerprint(d.Ledger)
	d.reopen()
	if after := fingerprint(d.Ledger); after != before {
		t.Fatalf("replay gives another state")
	}
	mustCheck(t, d.Ledger)
}

func TestOverrunMakesDebtRepaidFirst(t *testing.T) {
	clk := newClock()
	d := openDurable(t, Config{Now: clk.Now})
	mustCreate(t, d.Ledger, "a")
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 5 * credit, OrderID: "o1", Credit: CreditPaid})
	mustHold(t, d.Ledger, "a", "r1", 2*credit)
	mustHold(t, d.Ledger, "a", "r2", 1*credit)
	// r1 overruns by 6: 2 from its hold, 2 free, 4 owed; r2's earmark stays.
	mustSettle(t, d.Ledger, "r1", 8*credit)
	a := mustAccount(t, d.Ledger, "a")
	if a.Available != -4*credit || a.Held != credit || a.Charged != 8*credit {
		t.Fatalf("unexpected balances after overrun: %+v", a)
	}
	_, err := d.Hold("a", "r3", "k", 0)
	wantErr(t, err, ErrInsufficient) // no new calls while owing
	// r2 settles for less: its freed credit repays the debt.
	mustSettle(t, d.Ledger, "r2", 0)
	if a := mustAccount(t, d.Ledger, "a"); a.Available != -3*credit || a.Held != 0 {
		t.Fatalf("freed credit must repay debt: %+v", a)
	}
	// A top-up repays the debt first.
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 5 * credit, OrderID: "o2", Credit: CreditPaid})
	if a := mustAccount(t, d.Ledger, "a"); a.Available != 2*credit {
		t.Fatalf("top-up must repay debt first: %+v", a)
	}
	mustCheck(t, d.Ledger)
	d.reopen()
	if a := mustAccount(t, d.Ledger, "a"); a.Available != 2*credit || a.Charged != 8*credit {
		t.Fatalf("unexpected balances after replay: %+v", a)
	}
	mustCheck(t, d.Ledger)
}

func TestFrozenAccount(t *testing.T) {
	d := openDurable(t, Config{})
	mustCreate(t, d.Ledger, "a")
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 5 * credit, OrderID: "o1", Credit: CreditPaid})
	mustHold(t, d.Ledger, "a", "running", credit)
	if err := d.SetFrozen("a", true, "admin"); err != nil {
		t.Fatalf("cannot freeze: %s", err)
	}
	_, err := d.Hold("a", "r2", "k", 1)
	wantErr(t, err, ErrFrozen)
	mustSettle(t, d.Ledger, "running", credit/2) // a running call still settles
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: credit, OrderID: "o2", Credit: CreditPaid})
	d.reopen()
	_, err = d.Hold("a", "r2", "k", 1)
	wantErr(t, err, ErrFrozen)
	if err := d.SetFrozen("a", false, "admin"); err != nil {
		t.Fatalf("cannot unfreeze: %s", err)
	}
	mustHold(t, d.Ledger, "a", "r2", 1)
	wantErr(t, d.SetFrozen("nobody", true, ""), ErrUnknownAccount)
	mustCheck(t, d.Ledger)
}

func TestExpiry(t *testing.T) {
	clk := newClock()
	day := 24 * time.Hour
	d := openDurable(t, Config{Now: clk.Now})
	mustCreate(t, d.Ledger, "a")
	t0 := clk.Nanos()
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 10 * credit, OrderID: "paid1", Credit: CreditPaid})
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 3 * credit, OrderID: "gift30", Credit: CreditGift, ExpiresAtNanos: t0 + int64(30*day)})
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 2 * credit, OrderID: "gift400", Credit: CreditGift, ExpiresAtNanos: t0 + int64(400*day)})
	a := mustAccount(t, d.Ledger, "a")
	if a.ExpiresAtNanos != t0+int64(30*day) {
		t.Fatalf("expires_at must be the soonest expiry; got %d", a.ExpiresAtNanos)
	}
	// Spend order: the 30-day gift first, then paid (365 days), then the 400-day gift.
	mustHold(t, d.Ledger, "a", "r1", 4*credit)
	mustSettle(t, d.Ledger, "r1", 4*credit)
	a = mustAccount(t, d.Ledger, "a")
	if a.Credits[0].Credit != CreditPaid || a.Credits[0].Remaining != 9*credit || len(a.Credits) != 2 {
		t.Fatalf("soonest-expiring credit must go first; got %+v", a.Credits)
	}
	// A later paid top-up moves the paid expiry, not the gift's.
	clk.Advance(100 * day)
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: credit, OrderID: "paid2", Credit: CreditPaid})
	a = mustAccount(t, d.Ledger, "a")
	if a.Credits[0].ExpiresAtNanos != t0+int64(400*day) || a.Credits[1].ExpiresAtNanos != t0+int64(465*day) {
		t.Fatalf("paid credit expires 365 days after the latest paid top-up; got %+v", a.Credits)
	}
	// Day 400: the gift's 2 credits expire; day 465: the paid 10.
	clk.Advance(300 * day)
	if n, err := d.Expire(clk.Nanos()); err != nil || n != 1 {
		t.Fatalf("unexpected expiry; n=%d err=%v", n, err)
	}
	if a := mustAccount(t, d.Ledger, "a"); a.Available != 10*credit || a.Expired != 2*credit {
		t.Fatalf("unexpected balances after gift expiry: %+v", a)
	}
	// A hold earmarks paid credit; its expiry passes during the call; the
	// earmarked part expires when the hold ends, the rest at once.
	clk.Advance(64 * day)
	mustHold(t, d.Ledger, "a", "long", 6*credit)
	clk.Advance(2 * day)
	if n, err := d.Expire(clk.Nanos()); err != nil || n != 1 {
		t.Fatalf("unexpected expiry; n=%d err=%v", n, err)
	}
	if a := mustAccount(t, d.Ledger, "a"); a.Available != 0 || a.Held != 6*credit || a.Expired != 6*credit {
		t.Fatalf("only free credit expires: %+v", a)
	}
	mustSettle(t, d.Ledger, "long", 1*credit)
	if a := mustAccount(t, d.Ledger, "a"); a.Available != 0 || a.Held != 0 || a.Expired != 11*credit || a.Charged != 5*credit || len(a.Credits) != 0 {
		t.Fatalf("earmarked credit past expiry must expire when its hold ends: %+v", a)
	}
	entries, _, _ := d.Entries("a", 0, 3)
	if entries[0].Kind != EntryExpire || entries[0].Amount != -5*credit || entries[1].Kind != EntrySettle {
		t.Fatalf("expected settle then expire entries; got %+v", entries)
	}
	mustCheck(t, d.Ledger)
	before := fingerprint(d.Ledger)
	d.reopen()
	if fingerprint(d.Ledger) != before {
		t.Fatalf("replay gives another state")
	}
}

func TestLapsedPaidBucketAndNewTopUp(t *testing.T) {
	clk := newClock()
	day := 24 * time.Hour
	d := openDurable(t, Config{Now: clk.Now})
	mustCreate(t, d.Ledger, "a")
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 10 * credit, OrderID: "p1", Credit: CreditPaid})
	clk.Advance(364 * day)
	mustHold(t, d.Ledger, "a", "r", 4*credit)
	clk.Advance(2 * day)
	// The paid credit lapsed during the call; a new paid top-up must not revive it.
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 3 * credit, OrderID: "p2", Credit: CreditPaid})
	mustSettle(t, d.Ledger, "r", credit)
	a := mustAccount(t, d.Ledger, "a")
	if a.Available != 3*credit || a.Expired != 9*credit || a.Charged != credit {
		t.Fatalf("unexpected balances: %+v", a)
	}
	mustCheck(t, d.Ledger)
	before := fingerprint(d.Ledger)
	d.reopen()
	if fingerprint(d.Ledger) != before {
		t.Fatalf("replay gives another state")
	}
}

func TestHoldTimeoutSweep(t *testing.T) {
	clk := newClock()
	d := openDurable(t, Config{Now: clk.Now, HoldTimeout: time.Minute})
	mustCreate(t, d.Ledger, "a")
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 10 * credit, OrderID: "o", Credit: CreditPaid})
	mustHold(t, d.Ledger, "a", "old", credit)
	mustHold(t, d.Ledger, "a", "old-but-running", credit)
	clk.Advance(50 * time.Second)
	mustHold(t, d.Ledger, "a", "young", credit)
	clk.Advance(20 * time.Second)
	// A call still running keeps its hold whatever its age: a sweep once
	// voided a live call under tight timeouts, and its output went free.
	running := func(id string) bool { return id == "old-but-running" }
	if n, err := d.SweepHolds(clk.Nanos(), running); err != nil || n != 1 {
		t.Fatalf("unexpected sweep; n=%d err=%v", n, err)
	}
	if holds := d.OpenHolds(); len(holds) != 2 {
		t.Fatalf("unexpected open holds: %+v", holds)
	}
	entries, _, _ := d.Entries("a", 0, 1)
	if entries[0].Kind != EntryVoid || entries[0].Reason != ReasonHoldTimeout || entries[0].RequestID != "old" {
		t.Fatalf("the sweep must record its reason; got %+v", entries[0])
	}
	mustSettle(t, d.Ledger, "old-but-running", credit/2)
	mustCheck(t, d.Ledger)
}

func TestOverflowChecked(t *testing.T) {
	l, _ := NewMemory(Config{})
	mustCreate(t, l, "a")
	mustTopUp(t, l, TopUpRequest{Account: "a", Amount: math.MaxInt64 - 10, OrderID: "o1", Credit: CreditPaid})
	_, _, err := l.TopUp(TopUpRequest{Account: "a", Amount: 11, OrderID: "o2", Credit: CreditPaid})
	wantErr(t, err, ErrOverflow)
	mustHold(t, l, "a", "r1", 5)
	mustHold(t, l, "a", "r2", 5)
	mustSettle(t, l, "r1", math.MaxInt64-1)
	if _, err := l.Settle("r2", 2, nil); !errors.Is(err, ErrOverflow) {
		t.Fatalf("expected overflow; got %v", err)
	}
	// The failed settle changed nothing: the hold is still open.
	mustSettle(t, l, "r2", 1)
	_, _, err = l.Adjust(AdjustRequest{Account: "a", Amount: math.MaxInt64, Reason: "x"})
	wantErr(t, err, ErrOverflow)
	mustCheck(t, l)
}

func TestAdjust(t *testing.T) {
	d := openDurable(t, Config{})
	mustCreate(t, d.Ledger, "a")
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 2 * credit, OrderID: "o", Credit: CreditPaid})
	e, created, err := d.Adjust(AdjustRequest{Account: "a", Amount: -5 * credit, Reason: "undercharged", RequestID: "req_1", IdempotencyKey: "adj1", Actor: "ops"})
	if err != nil || !created || e.AvailableAfter != -3*credit {
		t.Fatalf("unexpected adjustment; got %+v created=%v err=%v", e, created, err)
	}
	again, created, err := d.Adjust(AdjustRequest{Account: "a", Amount: -5 * credit, Reason: "undercharged", RequestID: "req_1", IdempotencyKey: "adj1", Actor: "ops"})
	if err != nil || created || again.ID != e.ID {
		t.Fatalf("same idempotency key must return the first entry; got %+v created=%v err=%v", again, created, err)
	}
	_, _, err = d.Adjust(AdjustRequest{Account: "a", Amount: -6 * credit, Reason: "undercharged", IdempotencyKey: "adj1"})
	wantErr(t, err, ErrIdempotencyConflict)
	_, _, err = d.Adjust(AdjustRequest{Account: "a", Amount: 0, Reason: "x"})
	wantErr(t, err, ErrInvalid)
	_, _, err = d.Adjust(AdjustRequest{Account: "a", Amount: 1, Reason: ""})
	wantErr(t, err, ErrInvalid)
	// A positive adjustment repays the debt, then is spent last and never expires.
	if _, _, err := d.Adjust(AdjustRequest{Account: "a", Amount: 4 * credit, Reason: "refund"}); err != nil {
		t.Fatalf("cannot adjust: %s", err)
	}
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: credit, OrderID: "o2", Credit: CreditPaid})
	a := mustAccount(t, d.Ledger, "a")
	if a.Available != 2*credit || a.Credits[len(a.Credits)-1].ExpiresAtNanos != 0 {
		t.Fatalf("unexpected credits: %+v", a)
	}
	mustHold(t, d.Ledger, "a", "r", credit)
	mustSettle(t, d.Ledger, "r", credit)
	a = mustAccount(t, d.Ledger, "a")
	if len(a.Credits) != 1 || a.Credits[0].ExpiresAtNanos != 0 {
		t.Fatalf("paid credit must be spent before adjustment credit: %+v", a.Credits)
	}
	entries, _, _ := d.Entries("a", 0, 100)
	if entries[len(entries)-2].Kind != EntryAdjust || entries[len(entries)-2].Actor != "ops" || entries[len(entries)-2].RequestID != "req_1" {
		t.Fatalf("an adjustment is an entry with its actor and request: %+v", entries[len(entries)-2])
	}
	d.reopen()
	_, created, err = d.Adjust(AdjustRequest{Account: "a", Amount: -5 * credit, Reason: "undercharged", RequestID: "req_1", IdempotencyKey: "adj1", Actor: "ops"})
	if err != nil || created {
		t.Fatalf("idempotency keys must survive a restart; created=%v err=%v", created, err)
	}
	mustCheck(t, d.Ledger)
}

func TestKeys(t *testing.T) {
	d := openDurable(t, Config{})
	mustCreate(t, d.Ledger, "a")
	h := [32]byte{1, 2, 3}
	if _, err := d.CreateKey(Key{ID: "key_1", AccountID: "a", Hash: h, Name: "ci", Hint: "tg-…abcd", Limits: DefaultLimits, Models: []string{"claude-haiku-4-5"}}); err != nil {
		t.Fatalf("cannot create key: %s", err)
	}
	_, err := d.CreateKey(Key{ID: "key_1", AccountID: "a", Hash: [32]byte{9}})
	wantErr(t, err, ErrKeyExists)
	_, err = d.CreateKey(Key{ID: "key_2", AccountID: "a", Hash: h})
	wantErr(t, err, ErrKeyExists)
	_, err = d.CreateKey(Key{ID: "key_3", AccountID: "nobody", Hash: [32]byte{7}})
	wantErr(t, err, ErrUnknownAccount)
	name := "renamed"
	lim := Limits{RPM: 60, TPM: 0, Concurrency: 2}
	if _, err := d.UpdateKey("key_1", KeyPatch{Name: &name, Limits: &lim}); err != nil {
		t.Fatalf("cannot update key: %s", err)
	}
	d.reopen()
	k := d.KeyByHash(h)
	if k == nil || k.ID != "key_1" || k.Name != "renamed" || k.Limits != lim || k.Revoked || len(k.Models) != 1 {
		t.Fatalf("key not rebuilt from the log: %+v", k)
	}
	if err := d.RevokeKey("key_1"); err != nil {
		t.Fatalf("cannot revoke: %s", err)
	}
	wantErr(t, d.RevokeKey("key_9"), ErrUnknownKey)
	d.reopen()
	if k := d.KeyByHash(h); k == nil || !k.Revoked {
		t.Fatalf("revocation not replayed: %+v", k)
	}
	if ks := d.Keys("a"); len(ks) != 1 {
		t.Fatalf("unexpected keys: %+v", ks)
	}
}

func TestCheckpointThenReplay(t *testing.T) {
	clk := newClock()
	d := openDurable(t, Config{Now: clk.Now})
	mustCreate(t, d.Ledger, "a")
	mustCreate(t, d.Ledger, "b")
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 10 * credit, OrderID: "o1", Credit: CreditPaid})
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "b", Amount: 5 * credit, OrderID: "o2", Credit: CreditGift, ExpiresAtNanos: clk.Nanos() + int64(time.Hour)})
	mustHold(t, d.Ledger, "a", "open-across-checkpoint", 3*credit)
	if _, err := d.CreateKey(Key{ID: "k", AccountID: "a", Hash: [32]byte{5}}); err != nil {
		t.Fatalf("cannot create key: %s", err)
	}
	if _, err := d.Checkpoint(); err != nil {
		t.Fatalf("cannot checkpoint: %s", err)
	}
	if n := d.RecordsSinceCheckpoint(); n != 0 {
		t.Fatalf("unexpected records since checkpoint: %d", n)
	}
	mustSettle(t, d.Ledger, "open-across-checkpoint", credit)
	mustHold(t, d.Ledger, "b", "r2", credit)
	before := fingerprint(d.Ledger)
	d.reopen()
	if fingerprint(d.Ledger) != before {
		t.Fatalf("checkpoint + replay gives another state")
	}
	_, created, err := d.TopUp(TopUpRequest{Account: "a", Amount: 10 * credit, OrderID: "o1", Credit: CreditPaid})
	if err != nil || created {
		t.Fatalf("orders must survive a checkpoint; created=%v err=%v", created, err)
	}
	if entries, _, _ := d.Entries("a", 0, 100); len(entries) != 3 {
		t.Fatalf("entries must survive a checkpoint; got %d", len(entries))
	}
	mustCheck(t, d.Ledger)
}

func TestInvalidConfig(t *testing.T) {
	for _, n := range []int{3, -1, 1 << 17} {
		if _, err := NewMemory(Config{Shards: n}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("expected an error for %d shards; got %v", n, err)
		}
	}
}

// TestSettleSpendsSoonestExpiringFirst: a settlement spends the soonest-
// expiring credit even when another call freed it after this call's hold
// earmarked later credit: before, the hold's own marks went first and the
// freed credit was left to expire.
func TestSettleSpendsSoonestExpiringFirst(t *testing.T) {
	clk := newClock()
	d := openDurable(t, Config{Now: clk.Now})
	mustCreate(t, d.Ledger, "a")
	soon, later := clk.Now().Add(time.Hour).UnixNano(), clk.Now().Add(48*time.Hour).UnixNano()
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 5 * credit, OrderID: "g1", Credit: CreditGift, ExpiresAtNanos: soon})
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 10 * credit, OrderID: "g2", Credit: CreditGift, ExpiresAtNanos: later})
	mustHold(t, d.Ledger, "a", "b", 5*credit)  // earmarks the soon gift
	mustHold(t, d.Ledger, "a", "a", 10*credit) // earmarks the later gift
	if c, err := d.Void("b", "upstream_error", nil); err != nil || c.Wait() != nil {
		t.Fatalf("cannot void: %v", err)
	}
	mustSettle(t, d.Ledger, "a", 5*credit)
	got := map[int64]int64{}
	for _, c := range mustAccount(t, d.Ledger, "a").Credits {
		got[c.ExpiresAtNanos] = c.Remaining
	}
	if got[soon] != 0 || got[later] != 10*credit {
		t.Fatalf("unexpected credits after the settlement; got soon %d, later %d; want 0 and %d", got[soon], got[later], 10*credit)
	}
	d.reopen()
	mustCheck(t, d.Ledger)
}

// TestRetryGetsFirstResult: a retried top-up or adjustment gets its first
// result whatever changed since; a gift top-up retried after its expires_at
// passed was once refused as invalid.
func TestRetryGetsFirstResult(t *testing.T) {
	clk := newClock()
	d := openDurable(t, Config{Now: clk.Now})
	mustCreate(t, d.Ledger, "a")
	gift := TopUpRequest{Account: "a", Amount: credit, OrderID: "gift-1", Credit: CreditGift, ExpiresAtNanos: clk.Now().Add(time.Hour).UnixNano()}
	first, created, err := d.TopUp(gift)
	if err != nil || !created {
		t.Fatalf("cannot top up: %v", err)
	}
	clk.Advance(2 * time.Hour) // the gift's expires_at is in the past now
	again, created, err := d.TopUp(gift)
	if err != nil || created || again.ID != first.ID {
		t.Fatalf("unexpected retry; got %+v created=%v err=%v; want entry %d", again, created, err, first.ID)
	}
	adj := AdjustRequest{Account: "a", Amount: credit, Reason: "r", IdempotencyKey: "k"}
	firstAdj, _, err := d.Adjust(adj)
	if err != nil {
		t.Fatalf("cannot adjust: %s", err)
	}
	if e, ok := d.Adjustment("k"); !ok || e.ID != firstAdj.ID || !e.SameAdjustment(&adj) {
		t.Fatalf("unexpected lookup of the adjustment: %+v %v", e, ok)
	}
	if _, _, err := d.Adjust(AdjustRequest{Account: "a", Amount: 2 * credit, Reason: "r", IdempotencyKey: "k"}); !errors.Is(err, ErrIdempotencyConflict) {
		t.Fatalf("unexpected answer to another body under the key: %v", err)
	}
}
