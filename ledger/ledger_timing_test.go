package ledger

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/wal"
)

const benchAccounts = 1024

func benchLedger(b *testing.B, l *Ledger) []string {
	accounts := make([]string, benchAccounts)
	for i := range accounts {
		accounts[i] = fmt.Sprint("acct_", i)
		if _, err := l.CreateAccount(AccountSpec{ID: accounts[i], Limits: DefaultLimits}); err != nil {
			b.Fatal(err)
		}
		if _, _, err := l.TopUp(TopUpRequest{Account: accounts[i], Amount: 1 << 60, OrderID: "o" + accounts[i], Credit: CreditPaid}); err != nil {
			b.Fatal(err)
		}
	}
	return accounts
}

var benchWorker atomic.Int64

// requestIDs gives each benchmark goroutine its own ring of request IDs.
func requestIDs() []string {
	w := benchWorker.Add(1)
	ids := make([]string, 256)
	for i := range ids {
		ids[i] = fmt.Sprintf("w%d-r%d", w, i)
	}
	return ids
}

// BenchmarkHoldSettle measures in-memory hold+settle pairs from parallel
// goroutines over 1,024 accounts, across shard counts. One op is one pair.
func BenchmarkHoldSettle(b *testing.B) {
	for _, shards := range []int{1, 4, 16, 64, 256} {
		b.Run(fmt.Sprint("shards=", shards), func(b *testing.B) {
			l, err := NewMemory(Config{Shards: shards})
			if err != nil {
				b.Fatal(err)
			}
			accounts := benchLedger(b, l)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ids := requestIDs()
				call := &CallRecord{Model: "claude-haiku-4-5", Status: 200, Outcome: OutcomeOK}
				for i := 0; pb.Next(); i++ {
					acct := accounts[i%len(accounts)]
					id := ids[i%len(ids)]
					if _, err := l.Hold(acct, id, "key", 1000); err != nil {
						b.Fatal(err)
					}
					call.RequestID = id
					if _, err := l.Settle(id, 700, call); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
		})
	}
}

// BenchmarkHoldSettleBaseline is the naive design for comparison: one mutex
// around a map of balances and a map of holds.
func BenchmarkHoldSettleBaseline(b *testing.B) {
	var mu sync.Mutex
	balances := map[string]int64{}
	holds := map[string]int64{}
	accounts := make([]string, benchAccounts)
	for i := range accounts {
		accounts[i] = fmt.Sprint("acct_", i)
		balances[accounts[i]] = 1 << 60
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ids := requestIDs()
		for i := 0; pb.Next(); i++ {
			acct, id := accounts[i%len(accounts)], ids[i%len(ids)]
			mu.Lock()
			balances[acct] -= 1000
			holds[id] = 1000
			mu.Unlock()
			mu.Lock()
			balances[acct] += holds[id] - 700
			delete(holds, id)
			mu.Unlock()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkDurableHoldSettle measures hold+settle pairs in sync mode on the
// real disk, with 1, 16 and 256 concurrent callers, each waiting for its hold
// and its settlement to be synced. It reports WAL records per second, records
// per sync and the p99 latency of one durable operation.
func BenchmarkDurableHoldSettle(b *testing.B) {
	for _, callers := range []int{1, 16, 256} {
		b.Run(fmt.Sprint("callers=", callers), func(b *testing.B) {
			log, err := wal.Open(b.TempDir(), wal.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer log.Close()
			l, err := Open(log, Config{Shards: 64})
			if err != nil {
				b.Fatal(err)
			}
			accounts := benchLedger(b, l)
			start := log.Stats()
			var next atomic.Int64
			lat := make([][]time.Duration, callers)
			b.ResetTimer()
			var wg sync.WaitGroup
			for c := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ids := requestIDs()
					for i := 0; next.Add(1) <= int64(b.N); i++ {
						acct, id := accounts[(c*7+i)%len(accounts)], ids[i%len(ids)]
						t0 := time.Now()
						cm, err := l.Hold(acct, id, "key", 1000)
						if err == nil {
							err = cm.Wait()
						}
						t1 := time.Now()
						if err == nil {
							cm, err = l.Settle(id, 700, nil)
						}
						if err == nil {
							err = cm.Wait()
						}
						if err != nil {
							b.Error(err)
							return
						}
						lat[c] = append(lat[c], t1.Sub(t0), time.Since(t1))
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			st := log.Stats()
			records := st.Records - start.Records
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(records)/float64(max(1, st.Commits-start.Commits)), "records/sync")
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}

// BenchmarkReplay measures the start-up replay of TOLLGATE_REPLAY_RECORDS
// records (default 1,000,000; BENCHMARKS.md uses 10,000,000): hold and
// settle records over 1,024 accounts, written in ModeNone to save time.
func BenchmarkReplay(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("TOLLGATE_REPLAY_RECORDS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	log, err := wal.Open(dir, wal.Config{Mode: wal.ModeNone})
	if err != nil {
		b.Fatal(err)
	}
	l, err := Open(log, Config{})
	if err != nil {
		b.Fatal(err)
	}
	accounts := benchLedger(b, l)
	ids := requestIDs()
	for i := 0; i < n/2; i++ {
		acct, id := accounts[i%len(accounts)], ids[i%len(ids)]
		if _, err := l.Hold(acct, id, "key", 1000); err != nil {
			b.Fatal(err)
		}
		if _, err := l.Settle(id, 700, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := log.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		log, err := wal.Open(dir, wal.Config{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Open(log, Config{}); err != nil {
			b.Fatal(err)
		}
		log.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
