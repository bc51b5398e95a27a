package ledger

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/tollgate/tollgate/wal"
)

// BenchmarkCallQueries measures call-record queries over
// TOLLGATE_CALL_RECORDS records (default 200,000; BENCHMARKS.md uses
// 1,000,000), all of one account plus the same number spread over 1,000
// others: the first page and a deep page (90% down) of the account's
// list, the newest page across accounts by time, and a lookup by request ID.
func BenchmarkCallQueries(b *testing.B) {
	n := 200_000
	if s := os.Getenv("TOLLGATE_CALL_RECORDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	log, err := wal.Open(b.TempDir(), wal.Config{Mode: wal.ModeNone})
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	l, err := Open(log, Config{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := l.CreateAccount(AccountSpec{ID: "big", Limits: DefaultLimits}); err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if _, err := l.CreateAccount(AccountSpec{ID: fmt.Sprint("small", i), Limits: DefaultLimits}); err != nil {
			b.Fatal(err)
		}
	}
	var deep uint64
	call := &CallRecord{KeyID: "key_1", Model: "claude-haiku-4-5", Status: 200, Outcome: OutcomeRejected}
	for i := range 2 * n {
		call.AccountID = "big"
		if i%2 == 1 {
			call.AccountID = fmt.Sprint("small", i%1000)
		}
		call.RequestID = fmt.Sprint("req_", i)
		c, err := l.RecordCall(call)
		if err != nil {
			b.Fatal(err)
		}
		if i == 2*n/10 {
			deep = c.Seq()
		}
	}
	if err := log.WaitSynced(log.LastSeq()); err != nil {
		b.Fatal(err)
	}
	b.Run("account-first-page", func(b *testing.B) {
		for range b.N {
			if calls, _, err := l.Calls("big", CallFilter{}, 0, 100); err != nil || len(calls) != 100 {
				b.Fatal(len(calls), err)
			}
		}
	})
	b.Run("account-deep-page", func(b *testing.B) {
		for range b.N {
			if calls, _, err := l.Calls("big", CallFilter{}, deep, 100); err != nil || len(calls) != 100 {
				b.Fatal(len(calls), err)
			}
		}
	})
	b.Run("by-time-first-page", func(b *testing.B) {
		for range b.N {
			if calls, _, _, err := l.CallsByTime(0, 1<<62, CallCursor{}, 100); err != nil || len(calls) != 100 {
				b.Fatal(len(calls), err)
			}
		}
	})
	b.Run("by-request-id", func(b *testing.B) {
		for i := range b.N {
			if c, err := l.CallByRequestID(fmt.Sprint("req_", (i*7919)%(2*n))); err != nil || c == nil {
				b.Fatal(c, err)
			}
		}
	})
}
