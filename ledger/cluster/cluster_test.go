package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/internal/pgtest"
	"github.com/tollgate/tollgate/ledger"
)

const oneCredit = money.NanosPerCredit

// testDB starts a PostgreSQL primary with the schema and returns a pool.
func testDB(t *testing.T) (*pgtest.Server, *pgxpool.Pool) {
	t.Helper()
	pg := pgtest.StartPrimary(t)
	return pg, connectTB(t, pg)
}

// connectTB is a pool on pg's database tollgate, the schema made.
func connectTB(t testing.TB, pg *pgtest.Server) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Password = pgtest.Password
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

func mustCheck(t *testing.T, a *Authority) {
	t.Helper()
	if err := a.Check(context.Background()); err != nil {
		t.Fatalf("the books do not balance: %v", err)
	}
}

func TestAuthorityMoney(t *testing.T) {
	_, pool := testDB(t)
	a := NewAuthority(pool, 365*24*time.Hour, nil)
	if _, err := a.CreateAccount(ledger.AccountSpec{ID: "acct_1", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateAccount(ledger.AccountSpec{ID: "acct_1", Limits: ledger.DefaultLimits}); !errors.Is(err, ledger.ErrAccountExists) {
		t.Fatalf("a second create: %v, want ErrAccountExists", err)
	}
	if _, err := a.CreateAccount(ledger.AccountSpec{ID: "bad\nid"}); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatalf("a hostile ID: %v, want ErrInvalid", err)
	}
	e, created, err := a.TopUp(ledger.TopUpRequest{Account: "acct_1", Amount: 10 * oneCredit, OrderID: "ord_1", Credit: ledger.CreditPaid})
	if err != nil || !created || e.Amount != 10*oneCredit || e.AvailableAfter != 10*oneCredit {
		t.Fatalf("top-up: %+v created=%v err=%v", e, created, err)
	}
	again, created, err := a.TopUp(ledger.TopUpRequest{Account: "acct_1", Amount: 10 * oneCredit, OrderID: "ord_1", Credit: ledger.CreditPaid})
	if err != nil || created || again.ID != e.ID {
		t.Fatalf("a repeated order: %+v created=%v err=%v, want the first entry", again, created, err)
	}
	if _, _, err := a.TopUp(ledger.TopUpRequest{Account: "acct_1", Amount: 5 * oneCredit, OrderID: "ord_1", Credit: ledger.CreditPaid}); !errors.Is(err, ledger.ErrOrderConflict) {
		t.Fatalf("the order with another amount: %v, want ErrOrderConflict", err)
	}
	if _, _, err := a.Adjust(ledger.AdjustRequest{Account: "acct_1", Amount: -12 * oneCredit, Reason: "write-off", IdempotencyKey: "adj_1"}); err != nil {
		t.Fatal(err)
	}
	if _, created, _ := a.Adjust(ledger.AdjustRequest{Account: "acct_1", Amount: -12 * oneCredit, Reason: "write-off", IdempotencyKey: "adj_1"}); created {
		t.Fatal("a repeated adjustment was applied twice")
	}
	info, err := a.Account("acct_1")
	if err != nil || info.Available != -2*oneCredit {
		t.Fatalf("after a write-off beyond the oneCredit: available %d (%v), want -2 credits of debt", info.Available, err)
	}
	if _, _, err := a.TopUp(ledger.TopUpRequest{Account: "acct_1", Amount: 5 * oneCredit, OrderID: "ord_2", Credit: ledger.CreditGift,
		ExpiresAtNanos: time.Now().Add(time.Hour).UnixNano()}); err != nil {
		t.Fatal(err)
	}
	if info, _ = a.Account("acct_1"); info.Available != 3*oneCredit || info.ExpiresAtNanos == 0 {
		t.Fatalf("a gift repays the debt first: available %d expires %d, want 3 credits with an expiry", info.Available, info.ExpiresAtNanos)
	}
	entries, more, err := a.Entries("acct_1", 0, 10)
	if err != nil || more || len(entries) != 3 || entries[0].Kind != ledger.EntryTopUp || entries[1].Kind != ledger.EntryAdjust {
		t.Fatalf("entries: %+v more=%v err=%v", entries, more, err)
	}
	mustCheck(t, a)
}

// TestOrderIDsAcrossAccountsAtOnce: one order ID sent for eight accounts
// by 32 clients at once credits exactly once (the fault the outside found
// in single-node mode, here across nodes).
func TestOrderIDsAcrossAccountsAtOnce(t *testing.T) {
	_, pool := testDB(t)
	a := NewAuthority(pool, 365*24*time.Hour, nil)
	for i := range 8 {
		if _, err := a.CreateAccount(ledger.AccountSpec{ID: fmt.Sprintf("acct_%d", i), Limits: ledger.DefaultLimits}); err != nil {
			t.Fatal(err)
		}
	}
	var credited, conflicts, repeats atomic.Int64
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			_, created, err := a.TopUp(ledger.TopUpRequest{Account: fmt.Sprintf("acct_%d", i%8), Amount: oneCredit, OrderID: "ord_shared", Credit: ledger.CreditPaid})
			switch {
			case created:
				credited.Add(1)
			case errors.Is(err, ledger.ErrOrderConflict):
				conflicts.Add(1)
			case err == nil:
				repeats.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if credited.Load() != 1 || conflicts.Load()+repeats.Load() != 31 {
		t.Fatalf("credited %d, conflicts %d, repeats %d: want exactly one oneCredit", credited.Load(), conflicts.Load(), repeats.Load())
	}
	mustCheck(t, a)
}

// testNode is one node in the test's process: a ledger in memory, its
// mirror and its lease keeper, all on one database.
type testNode struct {
	ledger *ledger.Ledger
	node   *Node
	mirror *Mirror
}

func newTestNode(t *testing.T, id string, pool *pgxpool.Pool, cfg LeaseConfig) *testNode {
	t.Helper()
	l, err := ledger.NewMemory(ledger.Config{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(testWriter{t}, id+" ", 0)
	}
	m := NewMirror(pool, l, logger)
	auth := NewAuthority(pool, 365*24*time.Hour, func() { _ = m.Sync(context.Background()) })
	return &testNode{ledger: l, node: NewNode(id, auth, l, cfg, logger), mirror: m}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// call holds hold on the node, asking for a lease when it does not fit,
// and settles charge; it reports whether the call was served.
func (n *testNode) call(t *testing.T, account, requestID string, hold, charge int64) bool {
	_, err := n.ledger.Hold(account, requestID, "", hold)
	var ie *ledger.InsufficientError
	if errors.As(err, &ie) {
		if err := n.node.Ensure(account, hold); err != nil {
			return false
		}
		_, err = n.ledger.Hold(account, requestID, "", hold)
	}
	if err != nil {
		return false
	}
	if _, err := n.ledger.Settle(requestID, charge, nil); err != nil {
		t.Error(err)
	}
	return true
}

// TestLeasesNeverOverspend: three nodes serve one account of 10 credits
// from eight clients each until it runs out: together they charge no more
// than the oneCredit, PostgreSQL's books equal the sum of the nodes' ledgers,
// and every node reads the same balance.
func TestLeasesNeverOverspend(t *testing.T) {
	_, pool := testDB(t)
	cfg := LeaseConfig{TTL: 2 * time.Second, Renew: 200 * time.Millisecond}
	nodes := []*testNode{newTestNode(t, "n1", pool, cfg), newTestNode(t, "n2", pool, cfg), newTestNode(t, "n3", pool, cfg)}
	admin := nodes[0].node.auth
	if _, err := admin.CreateAccount(ledger.AccountSpec{ID: "acct", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.TopUp(ledger.TopUpRequest{Account: "acct", Amount: 10 * oneCredit, OrderID: "o1", Credit: ledger.CreditPaid}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	for _, n := range nodes {
		if err := n.mirror.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		running.Go(func() { n.node.Run(ctx) })
	}
	const hold, charge = oneCredit / 10, oneCredit / 20 // 0.1 held, 0.05 charged: 200 calls' worth
	var served atomic.Int64
	var clients sync.WaitGroup
	for i, n := range nodes {
		for c := range 8 {
			clients.Go(func() {
				// A refused client tries again a little later, as real
				// ones do, and gives up after a second of refusals.
				for k, refused := 0, 0; refused < 10; k++ {
					if n.call(t, "acct", fmt.Sprintf("req_%d_%d_%d", i, c, k), hold, charge) {
						served.Add(1)
						refused = 0
						continue
					}
					refused++
					time.Sleep(100 * time.Millisecond)
				}
			})
		}
	}
	clients.Wait()
	cancel()
	running.Wait() // each node returns its leases as it stops
	var localCharged int64
	for _, n := range nodes {
		info, _ := n.ledger.Account("acct")
		localCharged += info.Charged
	}
	info, err := admin.Account("acct")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d calls served; charged %s of 10 credits; renewals %d", served.Load(), money.Format(info.Charged), renewals(t, pool))
	switch {
	case served.Load()*charge != localCharged:
		t.Fatalf("the nodes charged %d for %d calls", localCharged, served.Load())
	case info.Charged != localCharged:
		t.Fatalf("PostgreSQL has %d charged, the nodes %d", info.Charged, localCharged)
	case info.Charged > 10*oneCredit || info.Available < 0:
		t.Fatalf("overspent: charged %d of 10 credits, available %d", info.Charged, info.Available)
	case info.Held != 0 || info.Available+info.Charged != 10*oneCredit:
		t.Fatalf("after every node stopped: held %d, available %d + charged %d != 10 credits", info.Held, info.Available, info.Charged)
	case served.Load() < 190:
		t.Fatalf("only %d of 200 calls served: oneCredit was stranded", served.Load())
	}
	mustCheck(t, admin)
}

func renewals(t *testing.T, pool *pgxpool.Pool) int64 {
	var n int64
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(sum(renewals), 0)::bigint FROM tg_leases`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMirror: accounts and keys written in PostgreSQL reach a node's
// ledger (created, changed, frozen, revoked, closed), and a row the ledger
// refuses (written by hand, with a line break in its ID) is passed over
// without holding back the changes after it.
func TestMirror(t *testing.T) {
	pg, pool := testDB(t)
	n := newTestNode(t, "n1", pool, LeaseConfig{})
	a, l, ctx := n.node.auth, n.ledger, context.Background()
	if _, err := a.CreateAccount(ledger.AccountSpec{ID: "acct", Email: "a@example.com", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	key, err := a.CreateKey(ledger.Key{ID: "key_1", AccountID: "acct", Hash: [32]byte{1}, Name: "first", Limits: ledger.DefaultLimits})
	if err != nil || key.CreatedAtNanos == 0 {
		t.Fatalf("key %+v: %v", key, err)
	}
	pg.Psql("tollgate", `INSERT INTO tg_accounts (id, email, multiplier, rpm, tpm, concurrency, created_at, version)
		VALUES (E'bad\nid', '', 1000000000, -1, -1, -1, 0, nextval('tg_version'))`)
	name := "renamed"
	if _, err := a.UpdateKey("key_1", ledger.KeyPatch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetFrozen("acct", true, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := n.mirror.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := l.Account("acct")
	if err != nil || !info.Frozen || info.Email != "a@example.com" {
		t.Fatalf("the mirrored account: %+v %v", info, err)
	}
	if k := l.KeyByHash([32]byte{1}); k == nil || k.Name != "renamed" || k.Revoked {
		t.Fatalf("the mirrored key: %+v", k)
	}
	if err := a.RevokeKey("key_1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.CloseAccount("acct", "admin"); err != nil {
		t.Fatal(err)
	}
	if err := n.mirror.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if k := l.Key("key_1"); k == nil || !k.Revoked {
		t.Fatalf("the revoked key: %+v", k)
	}
	if info, _ := l.Account("acct"); info.ClosedAtNanos == 0 {
		t.Fatal("the closed account is open on the node")
	}
	if _, err := a.CreateKey(ledger.Key{ID: "key_2", AccountID: "acct", Hash: [32]byte{2}, Limits: ledger.DefaultLimits}); !errors.Is(err, ledger.ErrAccountClosed) {
		t.Fatalf("a key for a closed account: %v", err)
	}
}

// TestCloseForfeitsLeasedCredit: closing an account whose credit is partly
// leased to a node forfeits the leased part too (it comes back when the
// node returns it), and the account ends at zero, not with the lease's
// credit reappearing.
func TestCloseForfeitsLeasedCredit(t *testing.T) {
	_, pool := testDB(t)
	a := NewAuthority(pool, 365*24*time.Hour, nil)
	if _, err := a.CreateAccount(ledger.AccountSpec{ID: "acct", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.TopUp(ledger.TopUpRequest{Account: "acct", Amount: 10 * oneCredit, OrderID: "o", Credit: ledger.CreditPaid}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := leaseReport{node: "n", account: "acct", want: 2 * oneCredit, floor: 1, ttl: time.Minute, sharePercent: 25}
	if g, err := a.renew(ctx, r); err != nil || g.granted != 2*oneCredit {
		t.Fatalf("grant %+v: %v", g, err)
	}
	info, _, err := a.CloseAccount("acct", "admin")
	if err != nil || info.Available != 10*oneCredit {
		t.Fatalf("closing: available %d (%v), want the leased credit counted", info.Available, err)
	}
	if _, _, err := a.Adjust(ledger.AdjustRequest{Account: "acct", Amount: -info.Available, Reason: "account closed"}); err != nil {
		t.Fatal(err)
	}
	r.net, r.charged, r.want = 2*oneCredit-oneCredit/2, oneCredit/2, 0 // the node spent 0.5, returns 1.5
	if _, err := a.renew(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.net = oneCredit / 2 // the return, taken locally, reported
	g, err := a.renew(ctx, r)
	if err != nil || !g.stopped || g.granted != 0 {
		t.Fatalf("a closed account's renewal: %+v %v", g, err)
	}
	if info, _ = a.Account("acct"); info.Available != -oneCredit/2 || info.Held != 0 {
		t.Fatalf("after the lease came back: available %d held %d, want the call in flight's 0.5 as debt", info.Available, info.Held)
	}
	mustCheck(t, a)
}

func TestGiftCreditsBounded(t *testing.T) {
	_, pool := testDB(t)
	a := NewAuthority(pool, 365*24*time.Hour, nil)
	if _, err := a.CreateAccount(ledger.AccountSpec{ID: "acct", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(time.Hour).UnixNano()
	for i := range maxGiftBuckets + 1 {
		_, _, err := a.TopUp(ledger.TopUpRequest{Account: "acct", Amount: 1, OrderID: fmt.Sprintf("o%d", i), Credit: ledger.CreditGift, ExpiresAtNanos: base + int64(i)})
		if i < maxGiftBuckets && err != nil || i == maxGiftBuckets && !errors.Is(err, ledger.ErrTooManyBuckets) {
			t.Fatalf("gift %d: %v", i, err)
		}
	}
	if _, _, err := a.TopUp(ledger.TopUpRequest{Account: "acct", Amount: 1, OrderID: "same", Credit: ledger.CreditGift, ExpiresAtNanos: base}); err != nil {
		t.Fatalf("a gift joining an existing expiry: %v", err)
	}
}

func TestLeaseConfigCheck(t *testing.T) {
	for _, c := range []struct {
		cfg LeaseConfig
		ok  bool
	}{
		{LeaseConfig{}, true},
		{LeaseConfig{TTL: time.Second, Renew: 250 * time.Millisecond, Margin: 300 * time.Millisecond}, true},
		{LeaseConfig{TTL: time.Second, Margin: time.Second}, false},
		{LeaseConfig{TTL: time.Second, Renew: 800 * time.Millisecond, Margin: 300 * time.Millisecond}, false},
		{LeaseConfig{TTL: time.Second, Renew: 100 * time.Millisecond, Margin: time.Millisecond}, false},
	} {
		if err := c.cfg.Check(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.cfg, err)
		}
	}
}

// TestDisputes: the ledger's dispute rules, in PostgreSQL: one dispute per
// call, a repeat answered with the first, an acceptance's refund posted
// with it (once), a resolved dispute not resolved otherwise.
func TestDisputes(t *testing.T) {
	_, pool := testDB(t)
	a := NewAuthority(pool, 365*24*time.Hour, nil)
	if _, err := a.CreateAccount(ledger.AccountSpec{ID: "acct", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	d := ledger.Dispute{ID: "dsp_1", AccountID: "acct", RequestID: "req_1", Reason: "wrong"}
	if _, created, err := a.FileDispute(d); err != nil || !created {
		t.Fatalf("filing: %v %v", created, err)
	}
	if again, created, err := a.FileDispute(d); err != nil || created || again.State != ledger.DisputeOpen {
		t.Fatalf("a repeat: %+v %v %v", again, created, err)
	}
	if _, _, err := a.FileDispute(ledger.Dispute{ID: "dsp_2", AccountID: "acct", RequestID: "req_1", Reason: "again"}); !errors.Is(err, ledger.ErrDisputeExists) {
		t.Fatalf("a second dispute of one call: %v", err)
	}
	if _, _, err := a.FileDispute(ledger.Dispute{ID: "dsp_3", AccountID: "nobody", RequestID: "req_3", Reason: "x"}); !errors.Is(err, ledger.ErrUnknownAccount) {
		t.Fatalf("an unknown account: %v", err)
	}
	got, err := a.AcceptDispute("dsp_1", oneCredit, "sorry", "op:support")
	if err != nil || got.State != ledger.DisputeAccepted || got.Refund != oneCredit || got.AdjustmentID == 0 || got.ResolvedBy != "op:support" {
		t.Fatalf("accepting: %+v %v", got, err)
	}
	if again, err := a.AcceptDispute("dsp_1", oneCredit, "sorry", "op:support"); err != nil || again.AdjustmentID != got.AdjustmentID {
		t.Fatalf("accepting again: %+v %v", again, err)
	}
	if _, err := a.RejectDispute("dsp_1", "no", "admin"); !errors.Is(err, ledger.ErrDisputeResolved) {
		t.Fatalf("rejecting an accepted dispute: %v", err)
	}
	if _, err := a.RejectDispute("dsp_9", "no", "admin"); !errors.Is(err, ledger.ErrUnknownDispute) {
		t.Fatalf("an unknown dispute: %v", err)
	}
	if info, _ := a.Account("acct"); info.Available != oneCredit {
		t.Fatalf("after the refund: available %d, want one credit, once", info.Available)
	}
	open := ledger.DisputeOpen
	if list := a.Disputes("acct", &open); len(list) != 0 {
		t.Fatalf("open disputes: %+v", list)
	}
	mustCheck(t, a)
}

// TestStaleNodeRefused: a node stating less usage than it reported before
// (its data directory restored from an older copy) is refused, not
// believed: its charges up to the difference would go unreported.
func TestStaleNodeRefused(t *testing.T) {
	_, pool := testDB(t)
	a := NewAuthority(pool, 365*24*time.Hour, nil)
	if _, err := a.CreateAccount(ledger.AccountSpec{ID: "acct", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := leaseReport{node: "n", account: "acct", net: 0, charged: 5, ttl: time.Minute, sharePercent: 25}
	if _, err := a.renew(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.charged = 3
	if _, err := a.renew(ctx, r); !errors.Is(err, ErrStaleNode) {
		t.Fatalf("a node behind its own reports: %v, want ErrStaleNode", err)
	}
	mustCheck(t, a)
}

// TestKeyQuotaAcrossNodes: keys created for one account through two nodes
// at the same instant meet its quota together.
func TestKeyQuotaAcrossNodes(t *testing.T) {
	pg, pool := testDB(t)
	nodes := []*Authority{NewAuthority(pool, 365*24*time.Hour, nil), NewAuthority(connectTB(t, pg), 365*24*time.Hour, nil)}
	if _, err := nodes[0].CreateAccount(ledger.AccountSpec{ID: "acme", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	made := 0
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			_, err := nodes[i%2].CreateKeyWithin(ledger.Key{ID: fmt.Sprintf("key_%d", i), AccountID: "acme", Hash: [32]byte{byte(i + 1)},
				Limits: ledger.DefaultLimits}, ledger.KeyQuota{Active: 3})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				made++
			case !errors.Is(err, ledger.ErrKeyQuota):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if made != 3 || len(nodes[1].Keys("acme")) != 3 {
		t.Fatalf("%d keys made through two nodes at once; want the quota's 3", made)
	}
}
