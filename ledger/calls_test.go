package ledger

import (
	"reflect"
	"strings"

	"github.com/tollgate/tollgate/internal/tokens"

	"fmt"
	"testing"
	"time"
)

func TestCallRecords(t *testing.T) {
	clk := newClock()
	d := openDurable(t, Config{Now: clk.Now})
	mustCreate(t, d.Ledger, "a")
	mustCreate(t, d.Ledger, "b")
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 100 * credit, OrderID: "o1", Credit: CreditPaid})
	start := clk.Nanos()
	for i := range 5 {
		req := fmt.Sprint("req_a", i)
		mustHold(t, d.Ledger, "a", req, credit)
		call := &CallRecord{RequestID: req, AccountID: "a", KeyID: "key_1", TimeNanos: clk.Nanos(), Model: "claude-haiku-4-5", Status: 200,
			Outcome: OutcomeOK, Counts: tokens.Counts{InputTokens: 10, OutputTokens: int64(i)}, SourceIPDigest: "abcd", Upstream: "anthropic",
			Attempts: []Attempt{{Upstream: "anthropic", Status: 200, DurationMs: 5}}}
		c, err := d.Settle(req, int64(i)*1000, call)
		if err != nil || c.Wait() != nil {
			t.Fatalf("cannot settle: %v", err)
		}
		clk.Advance(time.Minute)
	}
	mustHold(t, d.Ledger, "a", "req_void", credit)
	if c, err := d.Void("req_void", "upstream_error", &CallRecord{RequestID: "req_void", AccountID: "a", TimeNanos: clk.Nanos(), Status: 529, Outcome: OutcomeUpstreamError}); err != nil || c.Wait() != nil {
		t.Fatalf("cannot void: %v", err)
	}
	if c, err := d.RecordCall(&CallRecord{RequestID: "req_rejected", AccountID: "b", TimeNanos: clk.Nanos(), Status: 402, Outcome: OutcomeRejected}); err != nil || c.Wait() != nil {
		t.Fatalf("cannot record call: %v", err)
	}
	if _, err := d.RecordCall(&CallRecord{RequestID: "req_x", AccountID: "nobody"}); err == nil {
		t.Fatalf("a call of an unknown account must be refused")
	}

	calls, next, err := d.Calls("a", CallFilter{}, 0, 4)
	if err != nil || len(calls) != 4 || next == 0 || calls[0].RequestID != "req_void" || calls[1].RequestID != "req_a4" {
		t.Fatalf("unexpected first page; got %d calls next=%d err=%v", len(calls), next, err)
	}
	if calls[1].Held != credit || calls[1].Charged != 4000 || len(calls[1].Attempts) != 1 || calls[1].Attempts[0].Upstream != "anthropic" {
		t.Fatalf("call record not stored whole: %+v", calls[1])
	}
	calls, next, err = d.Calls("a", CallFilter{}, next, 4)
	if err != nil || len(calls) != 2 || next != 0 || calls[1].RequestID != "req_a0" {
		t.Fatalf("unexpected last page; got %d calls next=%d err=%v", len(calls), next, err)
	}
	calls, _, _ = d.Calls("a", CallFilter{SinceNanos: start + int64(time.Minute), UntilNanos: start + int64(3*time.Minute)}, 0, 100)
	if len(calls) != 2 || calls[0].RequestID != "req_a2" {
		t.Fatalf("unexpected time-filtered calls: %d", len(calls))
	}
	if c, err := d.CallByRequestID("req_rejected"); err != nil || c == nil || c.Outcome != OutcomeRejected || c.AccountID != "b" {
		t.Fatalf("unexpected call by request ID: %+v err=%v", c, err)
	}
	if c, err := d.CallByRequestID("req_none"); err != nil || c != nil {
		t.Fatalf("unexpected call for an unknown request: %+v err=%v", c, err)
	}

	// Calls survive a checkpoint and a restart.
	if _, err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	d.reopen()
	all, _, more, err := d.CallsByTime(0, clk.Nanos()+1, CallCursor{}, 100)
	if err != nil || more || len(all) != 7 {
		t.Fatalf("unexpected calls by time after restart; got %d more=%v err=%v", len(all), more, err)
	}
	page, cur, more, err := d.CallsByTime(0, clk.Nanos()+1, CallCursor{}, 3)
	if err != nil || !more || len(page) != 3 {
		t.Fatalf("unexpected first page by time: %d more=%v err=%v", len(page), more, err)
	}
	rest, _, more, err := d.CallsByTime(0, clk.Nanos()+1, cur, 100)
	if err != nil || more || len(rest) != 4 || rest[0].RequestID == page[2].RequestID {
		t.Fatalf("unexpected second page by time: %d more=%v err=%v", len(rest), more, err)
	}

	// Pruning removes the old call records, never the entries.
	entriesBefore, _, _ := d.Entries("a", 0, 1000)
	n, err := d.PruneCalls(start + int64(2*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("unexpected pruning; n=%d err=%v", n, err)
	}
	if c, _ := d.CallByRequestID("req_a0"); c != nil {
		t.Fatalf("pruned call still found")
	}
	if c, _ := d.CallByRequestID("req_a2"); c == nil {
		t.Fatalf("young call pruned")
	}
	entriesAfter, _, _ := d.Entries("a", 0, 1000)
	if len(entriesAfter) != len(entriesBefore) {
		t.Fatalf("pruning removed entries: %d -> %d", len(entriesBefore), len(entriesAfter))
	}
	mustCheck(t, d.Ledger)
}

// TestPruningLeavesNoClientData: a settle or void entry keeps what a
// statement needs (request ID, amounts, catalogue model, token counts) and
// nothing the client sent; pruning the call record removes the rest
// everywhere, and the entries read the same before and after.
func TestPruningLeavesNoClientData(t *testing.T) {
	clk := newClock()
	d := openDurable(t, Config{Now: clk.Now})
	mustCreate(t, d.Ledger, "a")
	mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: 10 * credit, OrderID: "o1", Credit: CreditPaid})
	const secret = "client-secret-string"
	call := func(id string) *CallRecord {
		return &CallRecord{RequestID: id, AccountID: "a", KeyID: "key_1", Model: secret + "-model", ModelID: "claude-haiku-4-5",
			Outcome: OutcomeOK, SourceIPDigest: secret + "-digest", Upstream: secret + "-upstream", UpstreamRequestID: secret + "-upid",
			Attempts: []Attempt{{Upstream: secret + "-attempt", Status: 200}}, Counts: tokens.Counts{InputTokens: 7, OutputTokens: 9}}
	}
	mustHold(t, d.Ledger, "a", "r1", credit)
	if c, err := d.Settle("r1", credit/2, call("r1")); err != nil || c.Wait() != nil {
		t.Fatalf("cannot settle: %v", err)
	}
	mustHold(t, d.Ledger, "a", "r2", credit)
	if c, err := d.Void("r2", "upstream_error", call("r2")); err != nil || c.Wait() != nil {
		t.Fatalf("cannot void: %v", err)
	}
	before, _, err := d.Entries("a", 0, 100)
	if err != nil {
		t.Fatalf("cannot list entries: %s", err)
	}
	if s := before[2]; s.Kind != EntrySettle || s.ModelID != "claude-haiku-4-5" || s.Tokens.InputTokens != 7 || s.Tokens.OutputTokens != 9 {
		t.Fatalf("unexpected settle entry; got %+v; want the catalogue model and the token counts", s)
	}
	clk.Advance(time.Hour)
	if n, err := d.PruneCalls(clk.Now().UnixNano()); err != nil || n != 2 {
		t.Fatalf("unexpected pruning; got %d, %v; want 2 records", n, err)
	}
	if _, err := d.Checkpoint(); err != nil {
		t.Fatalf("cannot checkpoint: %s", err)
	}
	after, _, err := d.Entries("a", 0, 100)
	if err != nil || !reflect.DeepEqual(before, after) {
		t.Fatalf("entries changed by pruning;\nbefore %+v\nafter  %+v", before, after)
	}
	if c, _ := d.CallByRequestID("r1"); c != nil {
		t.Fatalf("a pruned call record is still found: %+v", c)
	}
	if cs, _, err := d.Calls("a", CallFilter{}, 0, 100); err != nil || len(cs) != 0 {
		t.Fatalf("pruned call records are still listed: %+v, %v", cs, err)
	}
	for _, e := range after {
		if strings.Contains(fmt.Sprintf("%+v", e), secret) {
			t.Fatalf("an entry keeps client data: %+v", e)
		}
	}
	d.reopen() // the records after the checkpoint replay as well
}
