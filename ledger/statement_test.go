package ledger

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// TestStatementFromSnapshots: statements computed from daily snapshots
// equal statements summed over the account's whole history, for random
// periods, before and after a restart (snapshots are kept in the log).
func TestStatementFromSnapshots(t *testing.T) {
	clk := newClock()
	d := openDurable(t, Config{Now: clk.Now})
	mustCreate(t, d.Ledger, "a")
	rng := rand.New(rand.NewPCG(3, 5))
	start := clk.Nanos()
	order, req := 0, 0
	for day := range 30 {
		for range 1 + rng.IntN(6) {
			switch rng.IntN(4) {
			case 0:
				order++
				mustTopUp(t, d.Ledger, TopUpRequest{Account: "a", Amount: int64(1+rng.IntN(9)) * credit, OrderID: "o" + strconv.Itoa(order), Credit: CreditPaid})
			case 1:
				if _, _, err := d.Adjust(AdjustRequest{Account: "a", Amount: int64(rng.IntN(5)-2)*credit + 1, Reason: "r"}); err != nil {
					t.Fatal(err)
				}
			default:
				if a := mustAccount(t, d.Ledger, "a"); a.Available > credit {
					req++
					mustHold(t, d.Ledger, "a", "r"+strconv.Itoa(req), credit)
					mustSettle(t, d.Ledger, "r"+strconv.Itoa(req), int64(rng.IntN(int(credit))))
				}
			}
			clk.Advance(time.Duration(rng.IntN(3)) * time.Hour)
		}
		if day%3 == 0 {
			if _, err := d.SnapshotStatements(clk.Nanos()); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(24 * time.Hour)
	}
	end := clk.Nanos()
	if snap, ok, err := d.log.LatestSnapshot("a", end); err != nil || !ok || snap.TimeNanos <= start {
		t.Fatalf("no statement snapshot was stored: %+v %v %v", snap, ok, err)
	}
	check := func() {
		t.Helper()
		for range 200 {
			from := start + rng.Int64N(end-start)
			to := from + rng.Int64N(end-from+1)
			got, err := d.Statement("a", from, to)
			if err != nil {
				t.Fatal(err)
			}
			want := wholeHistoryStatement(t, d, from, to)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("statement of [%d, %d) from snapshots differs;\ngot  %+v\nwant %+v", from, to, got, want)
			}
		}
	}
	check()
	d.reopen()
	check()
}

// wholeHistoryStatement is the statement summed over every entry.
func wholeHistoryStatement(t *testing.T, d *durable, from, to int64) Statement {
	t.Helper()
	s := Statement{ByModel: map[string]*ModelCharges{}}
	entries, _, err := d.Entries("a", 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(entries) - 1; i >= 0; i-- {
		s.add(&entries[i], from, to)
	}
	return s
}
