package ledger

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tollgate/tollgate/wal"
)

// TestConcurrentHoldSettle runs many goroutines holding and settling on one
// hot account and across many accounts. Settlements never exceed their holds,
// so no account may ever go negative; the totals must match exactly.
func TestConcurrentHoldSettle(t *testing.T) {
	d := openDurable(t, Config{Shards: 8})
	accounts := []string{"hot", "a1", "a2", "a3", "a4", "a5", "a6", "a7"}
	for _, id := range accounts {
		mustCreate(t, d.Ledger, id)
		mustTopUp(t, d.Ledger, TopUpRequest{Account: id, Amount: 1000, OrderID: "o-" + id, Credit: CreditPaid})
	}
	var charged [8]atomic.Int64
	var refused atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 200 {
				ai := 0
				if w%2 == 1 {
					ai = rng.IntN(len(accounts))
				}
				req := fmt.Sprintf("w%d-%d", w, i)
				amount := int64(1 + rng.IntN(40))
				c, err := d.Hold(accounts[ai], req, "k", amount)
				if errors.Is(err, ErrInsufficient) {
					refused.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("cannot hold: %s", err)
					return
				}
				if err := c.Wait(); err != nil {
					t.Errorf("cannot sync hold: %s", err)
					return
				}
				if a, _ := d.Account(accounts[ai]); a.Available < 0 {
					t.Errorf("account %s overdrawn: %+v", accounts[ai], a)
				}
				actual := rng.Int64N(amount + 1)
				if c, err = d.Settle(req, actual, nil); err != nil || c.Wait() != nil {
					t.Errorf("cannot settle: %v", err)
					return
				}
				charged[ai].Add(actual)
			}
		}()
	}
	// Concurrent identical top-ups credit once.
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := d.TopUp(TopUpRequest{Account: "hot", Amount: 500, OrderID: "same", Credit: CreditPaid}); err != nil {
				t.Errorf("cannot top up: %s", err)
			}
		}()
	}
	wg.Wait()
	sum := mustCheck(t, d.Ledger)
	if sum.OpenHolds != 0 {
		t.Fatalf("holds left open: %d", sum.OpenHolds)
	}
	for i, id := range accounts {
		a := mustAccount(t, d.Ledger, id)
		want := int64(1000)
		if id == "hot" {
			want += 500
		}
		if a.Charged != charged[i].Load() || a.Available != want-a.Charged {
			t.Fatalf("account %s: charged %d available %d; want charged %d available %d", id, a.Charged, a.Available, charged[i].Load(), want-charged[i].Load())
		}
	}
	before := fingerprint(d.Ledger)
	d.reopen()
	if fingerprint(d.Ledger) != before {
		t.Fatalf("replay after concurrent load gives another state")
	}
}

// TestCrashClones runs operations from several goroutines on a crashable
// in-memory file system, simulates a crash at a random moment (keeping all
// synced data and a random share of the rest), replays the clone and checks
// that every acknowledged operation is there, none twice, and every
// invariant holds.
func TestCrashClones(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runCrashClone(t, seed) })
	}
}

func runCrashClone(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	fs := wal.NewCrashableFS()
	log, err := wal.Open("db", wal.Config{FS: fs.FS()})
	if err != nil {
		t.Fatalf("cannot open log: %s", err)
	}
	l, err := Open(log, Config{Shards: 4})
	if err != nil {
		t.Fatalf("cannot open ledger: %s", err)
	}
	for _, id := range []string{"a", "b", "c"} {
		mustCreate(t, l, id)
	}
	var ackMu sync.Mutex
	ackedOrders := map[string]string{}  // order -> account
	ackedSettles := map[string]string{} // request -> account
	ackedHolds := map[string]string{}
	acks := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				acct := []string{"a", "b", "c"}[r.IntN(3)]
				if r.IntN(4) == 0 {
					order := fmt.Sprintf("o%d-%d", w, i)
					if _, _, err := l.TopUp(TopUpRequest{Account: acct, Amount: 100, OrderID: order, Credit: CreditPaid}); err != nil {
						return
					}
					ackMu.Lock()
					ackedOrders[order] = acct
					acks++
					ackMu.Unlock()
					continue
				}
				req := fmt.Sprintf("r%d-%d", w, i)
				c, err := l.Hold(acct, req, "k", int64(1+r.IntN(30)))
				if err != nil {
					continue
				}
				if c.Wait() != nil {
					return
				}
				ackMu.Lock()
				ackedHolds[req] = acct
				ackMu.Unlock()
				c, err = l.Settle(req, int64(r.IntN(40)), &CallRecord{RequestID: req, AccountID: acct, Outcome: OutcomeOK})
				if err != nil || c.Wait() != nil {
					return
				}
				ackMu.Lock()
				ackedSettles[req] = acct
				acks++
				ackMu.Unlock()
			}
		}()
	}
	target := 50 + rng.IntN(300)
	var crashed *wal.CrashableFS
	var orders, settles, holds map[string]string
	for crashed == nil {
		ackMu.Lock()
		if acks >= target {
			// Clone and snapshot what was acknowledged while holding ackMu:
			// acknowledgements recorded after this moment are not checked.
			crashed = fs.CrashClone(rng, rng.IntN(101))
			orders, settles, holds = maps.Clone(ackedOrders), maps.Clone(ackedSettles), maps.Clone(ackedHolds)
		}
		ackMu.Unlock()
	}
	close(stop)
	wg.Wait()
	log.Close()

	log2, err := wal.Open("db", wal.Config{FS: crashed.FS()})
	if err != nil {
		t.Fatalf("cannot reopen crashed log: %s", err)
	}
	defer log2.Close()
	l2, err := Open(log2, Config{Shards: 4})
	if err != nil {
		t.Fatalf("cannot replay crashed log: %s", err)
	}
	mustCheck(t, l2)
	for order, acct := range orders {
		_, created, err := l2.TopUp(TopUpRequest{Account: acct, Amount: 100, OrderID: order, Credit: CreditPaid})
		if err != nil || created {
			t.Fatalf("acknowledged top-up %s lost: created=%v err=%v", order, created, err)
		}
	}
	settled := map[string]int{}
	for _, acct := range []string{"a", "b", "c"} {
		entries, _, err := l2.Entries(acct, 0, 1<<30)
		if err != nil {
			t.Fatalf("cannot list entries: %s", err)
		}
		for _, e := range entries {
			if e.Kind == EntrySettle {
				settled[e.RequestID]++
			}
		}
	}
	open := map[string]bool{}
	for _, h := range l2.OpenHolds() {
		open[h.RequestID] = true
	}
	for req := range settles {
		if settled[req] != 1 || open[req] {
			t.Fatalf("acknowledged settlement %s: %d settle entries, open=%v", req, settled[req], open[req])
		}
	}
	for req := range holds {
		if settled[req] == 0 && !open[req] {
			t.Fatalf("acknowledged hold %s neither open nor settled", req)
		}
	}
	for req, n := range settled {
		if n != 1 {
			t.Fatalf("request %s settled %d times", req, n)
		}
	}
}

// TestIdempotencyIsGlobal: one order ID or idempotency key sent for several
// accounts in different shards at the same instant credits once; the others
// get the conflict. The race once credited every account, and the next
// start refused the data directory.
func TestIdempotencyIsGlobal(t *testing.T) {
	d := openDurable(t, Config{Shards: 64})
	accounts := make([]string, 16)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("acct-%d", i)
		mustCreate(t, d.Ledger, accounts[i])
	}
	for round := range 1000 {
		order, key := fmt.Sprintf("order-%d", round), fmt.Sprintf("adj-%d", round)
		var created atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, a := range accounts {
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				_, ok, err := d.TopUp(TopUpRequest{Account: a, Amount: credit, OrderID: order, Credit: CreditPaid})
				if ok {
					created.Add(1)
				} else if !errors.Is(err, ErrOrderConflict) {
					t.Errorf("unexpected answer to a repeated order: %v", err)
				}
			}()
			go func() {
				defer wg.Done()
				<-start
				_, ok, err := d.Adjust(AdjustRequest{Account: a, Amount: credit, Reason: "r", IdempotencyKey: key})
				if ok {
					created.Add(1)
				} else if !errors.Is(err, ErrIdempotencyConflict) {
					t.Errorf("unexpected answer to a repeated key: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if n := created.Load(); n != 2 {
			t.Fatalf("round %d: %d operations created; want one top-up and one adjustment", round, n)
		}
	}
	d.reopen() // replay accepts what was acknowledged
	mustCheck(t, d.Ledger)
}

// TestKeyQuotaAtOnce: keys created for one account at the same instant
// meet its quota together: of 16 creations with room for 3 active keys,
// exactly 3 succeed; a revoked key frees room but still counts as made.
func TestKeyQuotaAtOnce(t *testing.T) {
	d := openDurable(t, Config{Shards: 8})
	mustCreate(t, d.Ledger, "acme")
	q := KeyQuota{Active: 3, Made: 4}
	var made atomic.Int64
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			_, err := d.CreateKeyWithin(Key{ID: fmt.Sprintf("key_%d", i), AccountID: "acme", Hash: [32]byte{byte(i + 1)}, Limits: DefaultLimits}, q)
			switch {
			case err == nil:
				made.Add(1)
			case !errors.Is(err, ErrKeyQuota):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	keys := d.Keys("acme")
	if made.Load() != 3 || len(keys) != 3 {
		t.Fatalf("%d keys made at once, %d kept; want the quota's 3", made.Load(), len(keys))
	}
	if err := d.RevokeKey(keys[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateKeyWithin(Key{ID: "key_a", AccountID: "acme", Hash: [32]byte{100}, Limits: DefaultLimits}, q); err != nil {
		t.Fatalf("a revoked key did not free room: %v", err)
	}
	if err := d.RevokeKey("key_a"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateKeyWithin(Key{ID: "key_b", AccountID: "acme", Hash: [32]byte{101}, Limits: DefaultLimits}, q); !errors.Is(err, ErrKeyQuota) {
		t.Fatalf("a fifth key made past the quota of 4 made: %v", err)
	}
}
