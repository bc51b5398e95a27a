package cluster

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
)

// LeaseConfig tunes a node's leases.
type LeaseConfig struct {
	// TTL is how long a lease lasts in PostgreSQL after each renewal.
	// Default 10s.
	TTL time.Duration
	// Renew is how often a node renews its leases (reporting its usage).
	// Default TTL/4.
	Renew time.Duration
	// Margin is how much sooner than TTL a node stops spending a lease it
	// could not renew, measured from before the renewal was sent, so that
	// it stops before PostgreSQL hands the credit to others. Default TTL/4.
	Margin time.Duration
	// SharePercent caps a grant at this share of the account's available
	// credit (at least the call's hold). Default 25.
	SharePercent int64
	// Min is the smallest grant a node asks for. Default 1 credit.
	Min int64
	// Wait bounds how long a call waits for a grant. Default 2s.
	Wait time.Duration
	// FailOpen is the credit a node may give an account itself, once per
	// outage, when its lease has lapsed and PostgreSQL cannot be reached
	// (nano-credits; 0, the default: fail closed with 503). It is metered
	// (tollgate_cluster_fail_open_nanos_total, an ALERT log line) and its
	// usage charged at the next report, into debt if need be: it widens
	// the overspend bound by FailOpen per cut-off node and account.
	FailOpen int64
}

func (c *LeaseConfig) fill() {
	if c.TTL <= 0 {
		c.TTL = 10 * time.Second
	}
	if c.Renew <= 0 {
		c.Renew = c.TTL / 4
	}
	if c.Margin <= 0 {
		c.Margin = c.TTL / 4
	}
	if c.SharePercent <= 0 || c.SharePercent > 100 {
		c.SharePercent = 25
	}
	if c.Min <= 0 {
		c.Min = money.NanosPerCredit
	}
	if c.Wait <= 0 {
		c.Wait = 2 * time.Second
	}
}

// Check refuses settings under which leases could not work: a margin
// that leaves no time to spend a lease, renewals too rare to keep one.
func (c LeaseConfig) Check() error {
	c.fill()
	switch {
	case c.Margin >= c.TTL:
		return fmt.Errorf("cluster: lease_margin (%s) must be shorter than lease_ttl (%s)", c.Margin, c.TTL)
	case c.Renew >= c.TTL-c.Margin:
		return fmt.Errorf("cluster: renew_interval (%s) must be shorter than lease_ttl - lease_margin (%s), or leases lapse between renewals", c.Renew, c.TTL-c.Margin)
	case c.Margin < 10*time.Millisecond:
		return fmt.Errorf("cluster: lease_margin (%s) must be at least 10ms", c.Margin)
	}
	return nil
}

// ErrUnavailable: the node cannot reach PostgreSQL to lease credit for an
// account whose lease has run out; the call gets 503.
var ErrUnavailable = errors.New("cluster: the credit authority (PostgreSQL) cannot be reached")

// Node keeps this node's leases: it asks for credit when a hold does not
// fit (Ensure), renews every lease on a timer with its usage, returns the
// credit of accounts gone idle, frozen or closed, and stops spending a
// lease it could not renew before PostgreSQL's expiry.
type Node struct {
	id     string
	auth   *Authority
	ledger *ledger.Ledger
	cfg    LeaseConfig
	logger *log.Logger

	mu     sync.Mutex
	leases map[string]*lease

	// NodesChanged, when set before Run, hears how many nodes are live
	// (seen within three renewal intervals), after each renewal round.
	NodesChanged func(nodes int64)
}

// lease is the node's side of one account's lease. Whoever renews it holds
// mu, and checks (lockLease) that it is still the account's lease: one
// dropped meanwhile is never renewed, so two renewals of one account never
// run at once.
type lease struct {
	mu sync.Mutex
	// deadline is when the node stops spending the lease unless renewed
	// (Unix nanoseconds by the node's clock; 0: never granted).
	deadline atomic.Int64
	// lapsed is set once the deadline passed, until the next renewal.
	lapsed atomic.Bool
	// lastCharged is the account's charged total at the previous renewal;
	// perRenewal the charges between the last two.
	lastCharged, perRenewal int64
	// idle counts renewals in a row with no charge and no open hold.
	idle int
	// scarce: at the last renewal the account had less than Min available
	// across the cluster; the node then keeps no credit beyond its open
	// holds (each call is granted its own hold), so none is stranded here
	// while another node's calls are refused.
	scarce bool
	// quietUntil (Unix nanoseconds) answers calls at once after a failed
	// or refused grant, for a moment, instead of each asking PostgreSQL in
	// turn: an outage does not queue every call for Wait, and an empty
	// account's refusals do not each write to PostgreSQL. quietErr is the
	// answer.
	quietUntil int64
	quietErr   error
	// failOpen is the fail-open credit given during the current outage
	// (zeroed by the next renewal that reaches PostgreSQL); while it is
	// positive, lapses leave the account's credit alone.
	failOpen atomic.Int64
}

// Lease metrics.
var (
	renewalsOK     = metrics.NewCounter(`tollgate_cluster_renewals_total{result="ok"}`)
	renewalsFailed = metrics.NewCounter(`tollgate_cluster_renewals_total{result="failed"}`)
	grantsOnDemand = metrics.NewCounter(`tollgate_cluster_grants_on_demand_total`)
	leaseLapses    = metrics.NewCounter(`tollgate_cluster_lease_lapses_total`)
	failOpenNanos  = metrics.NewCounter(`tollgate_cluster_fail_open_nanos_total`)
	renewSeconds   = metrics.NewHistogram(`tollgate_cluster_renewal_seconds`)
)

// renewWorkers bounds the renewals a node runs at once: a round over many
// accounts takes their round trips divided by this, not their sum.
const renewWorkers = 16

// NewNode returns node id's lease keeper.
func NewNode(id string, auth *Authority, l *ledger.Ledger, cfg LeaseConfig, logger *log.Logger) *Node {
	cfg.fill()
	return &Node{id: id, auth: auth, ledger: l, cfg: cfg, logger: logger, leases: map[string]*lease{}}
}

// Config returns the lease settings in force (defaults filled in).
func (n *Node) Config() LeaseConfig { return n.cfg }

// lockLease returns account's lease, locked, made if there is none.
func (n *Node) lockLease(account string) *lease {
	for {
		n.mu.Lock()
		l := n.leases[account]
		if l == nil {
			l = &lease{}
			n.leases[account] = l
		}
		n.mu.Unlock()
		l.mu.Lock()
		if n.current(account, l) {
			return l
		}
		l.mu.Unlock() // dropped while we waited: take the new one
	}
}

func (n *Node) current(account string, l *lease) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leases[account] == l
}

// Ensure makes at least need nano-credits available to account in this
// node's ledger by a grant, when PostgreSQL has them: the gateway calls it
// when a hold does not fit. It returns a *ledger.InsufficientError with the
// cluster's available balance when the account has not enough, and
// ErrUnavailable when PostgreSQL cannot be reached in time.
func (n *Node) Ensure(account string, need int64) error {
	l := n.lockLease(account)
	defer l.mu.Unlock()
	info, err := n.ledger.Account(account)
	if err != nil {
		return err
	}
	if info.Available >= need && l.live() {
		return nil // another call's grant came meanwhile
	}
	if time.Now().UnixNano() < l.quietUntil {
		return l.quietErr
	}
	if l.deadline.Load() == 0 {
		l.lastCharged = info.Charged // the first grant: the rate is measured from here
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Wait)
	defer cancel()
	grantsOnDemand.Inc()
	g, err := n.renewLocked(ctx, account, l, need, true)
	if err != nil && l.lapsed.Load() && !errors.Is(err, ErrStaleNode) && n.failOpen(account, l, need, info) {
		return nil // an outage: the lease lapsed, and PostgreSQL still cannot be reached
	}
	if err != nil {
		return l.quiet(fmt.Errorf("%w: %v", ErrUnavailable, err), n.cfg.Renew)
	}
	if info, err = n.ledger.Account(account); err == nil && info.Available < need {
		return l.quiet(&ledger.InsufficientError{Hold: need, Available: g.available}, n.cfg.Renew/4)
	}
	return err
}

// failOpen gives account the rest of its fail-open budget for this outage
// (l.mu held), and reports whether need then fits.
func (n *Node) failOpen(account string, l *lease, need int64, info ledger.AccountInfo) bool {
	rest := n.cfg.FailOpen - l.failOpen.Load()
	if rest <= 0 || info.Available+rest < need {
		return false
	}
	l.failOpen.Add(rest) // first: lapses leave the account alone from now on
	if _, _, err := n.ledger.Adjust(ledger.AdjustRequest{Account: account, Amount: rest, Reason: "cluster fail-open credit", Actor: "node:" + n.id}); err != nil {
		l.failOpen.Add(-rest)
		n.logger.Printf("cluster: fail-open credit for account %q: %v", account, err)
		return false
	}
	failOpenNanos.AddInt64(rest)
	n.logger.Printf("ALERT cluster: PostgreSQL cannot be reached and account %q's lease has lapsed: serving it on %s fail-open credits, charged when PostgreSQL is back",
		account, money.Format(rest))
	return true
}

// quiet makes err the answer to calls for d, and returns it.
func (l *lease) quiet(err error, d time.Duration) error {
	l.quietUntil, l.quietErr = time.Now().Add(min(d, time.Second)).UnixNano(), err
	return err
}

// live reports whether the lease may still be spent.
func (l *lease) live() bool { return time.Now().UnixNano() < l.deadline.Load() }

// renewLocked renews account's lease (l.mu held): it states the node's
// usage and asks for enough credit to bring the local balance to what the
// account spends in two renewal intervals (at least Min, and at least need
// for the call waiting), then credits the grant locally. Without ask it
// only reports.
//
// What it states is durable first: a report of a settlement that a crash
// then undid would charge the account for a call the node voided.
func (n *Node) renewLocked(ctx context.Context, account string, l *lease, need int64, ask bool) (leaseGrant, error) {
	info, err := n.ledger.Account(account)
	if err == nil {
		_, err = n.ledger.Durable()
	}
	if err != nil {
		return leaseGrant{}, err
	}
	target := max(need, n.cfg.Min, 2*l.perRenewal)
	r := leaseReport{node: n.id, account: account, net: info.Adjusted, charged: info.Charged,
		want: target - info.Available, floor: max(need-info.Available, 0), ttl: n.cfg.TTL, sharePercent: n.cfg.SharePercent}
	if !ask || need == 0 && info.Available > target/2 {
		r.want = 0 // enough for now (or returning): just report and extend
	}
	sent := time.Now()
	g, err := n.auth.renew(ctx, r)
	renewSeconds.UpdateDuration(sent)
	if err != nil {
		renewalsFailed.Inc()
		return g, err
	}
	renewalsOK.Inc()
	l.failOpen.Store(0) // the outage is over: its fail-open credit is reported as the lease's
	l.scarce = g.available < n.cfg.Min
	l.deadline.Store(sent.Add(n.cfg.TTL - n.cfg.Margin).UnixNano())
	l.lapsed.Store(false)
	switch {
	case g.expired || g.stopped:
		// The lease had expired (its credit may be another node's by now)
		// or the account is frozen or closed: give back what the ledger
		// still holds, then (expired) ask afresh.
		// What is given back is reported by the next renewal.
		if _, err := n.ledger.Withdraw(account, "cluster lease returned"); err != nil {
			return g, err
		}
		if g.expired && ask { // this renewal extended the lease: no recursion
			return n.renewLocked(ctx, account, l, need, ask)
		}
		return g, nil
	case g.granted > 0:
		_, _, err = n.ledger.Adjust(ledger.AdjustRequest{Account: account, Amount: g.granted, Reason: "cluster lease granted", Actor: "node:" + n.id})
	}
	return g, err
}

// returnLocked gives the lease's unused credit back: taken locally first,
// then reported (so PostgreSQL never counts less than the node holds).
// Holds still open keep their credit; it is reported as they settle.
func (n *Node) returnLocked(ctx context.Context, account string, l *lease) error {
	if _, err := n.ledger.Withdraw(account, "cluster lease returned"); err != nil {
		return err
	}
	_, err := n.renewLocked(ctx, account, l, 0, false)
	return err
}

// Run renews and returns leases until ctx ends, then returns every lease's
// unused credit (a clean shutdown leaves nothing leased). Lapses run on a
// goroutine of their own, so that renewals waiting on an unreachable
// PostgreSQL never delay them. Resume comes first.
func (n *Node) Run(ctx context.Context) {
	var lapses sync.WaitGroup
	lapses.Go(func() { n.lapseLoop(ctx) })
	renew := time.NewTicker(n.cfg.Renew)
	defer renew.Stop()
	for {
		select {
		case <-ctx.Done():
			lapses.Wait()
			n.returnAll()
			return
		case <-renew.C:
			n.renewAll(ctx)
			n.heartbeat(ctx)
		}
	}
}

// lapseInterval is how often lapses are looked for.
func (n *Node) lapseInterval() time.Duration {
	return max(min(n.cfg.Margin/4, 100*time.Millisecond), time.Millisecond)
}

func (n *Node) lapseLoop(ctx context.Context) {
	t := time.NewTicker(n.lapseInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.lapseDue()
		}
	}
}

// Resume, at start and before any call is served, takes back the credit
// the ledger holds from leases of a previous run and reports it with the
// usage made since the last report (late, if its lease expired meanwhile);
// calls then lease afresh. Reports PostgreSQL cannot take now are made by
// the next renewals. It fails (ErrStaleNode) when the data directory is
// behind what it reported: the node must not serve from it.
func (n *Node) Resume(ctx context.Context) error {
	if err := n.checkNotStale(ctx); err != nil {
		return err
	}
	var stale atomic.Pointer[error]
	var accounts []string
	n.ledger.Accounts(func(a ledger.AccountInfo) {
		if a.Adjusted != 0 || a.Charged != 0 {
			accounts = append(accounts, a.ID)
		}
	})
	n.eachAccount(accounts, func(account string) {
		l := n.lockLease(account)
		defer l.mu.Unlock()
		if info, err := n.ledger.Account(account); err == nil {
			l.lastCharged = info.Charged // spending is measured from now
		}
		err := n.returnLocked(ctx, account, l)
		switch {
		case errors.Is(err, ErrStaleNode):
			stale.Store(&err)
		case err != nil && ctx.Err() == nil:
			n.logger.Printf("cluster: reporting account %q's earlier usage: %v (retried at the next renewal)", account, err)
		}
	})
	if err := stale.Load(); err != nil {
		return *err
	}
	return nil
}

// checkNotStale refuses a ledger that charged an account less than this
// node reported of it (a data directory restored from a backup), when
// PostgreSQL can say.
func (n *Node) checkNotStale(ctx context.Context) error {
	reported, err := n.auth.reported(ctx, n.id)
	if err != nil {
		return nil // PostgreSQL away: every renewal checks it again
	}
	for account, r := range reported {
		info, _ := n.ledger.Account(account)
		if info.Charged < r {
			return fmt.Errorf("%w: account %q: %d charged here, %d reported before", ErrStaleNode, account, info.Charged, r)
		}
	}
	return nil
}

// eachAccount runs fn for every account, renewWorkers at a time.
func (n *Node) eachAccount(accounts []string, fn func(account string)) {
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(renewWorkers, len(accounts)) {
		wg.Go(func() {
			for account := range work {
				fn(account)
			}
		})
	}
	for _, account := range accounts {
		work <- account
	}
	close(work)
	wg.Wait()
}

// heartbeat records that the node is live and tells NodesChanged how many
// are.
func (n *Node) heartbeat(ctx context.Context) {
	hctx, cancel := context.WithTimeout(ctx, n.cfg.Renew)
	defer cancel()
	live, err := n.auth.heartbeat(hctx, n.id, 3*n.cfg.Renew)
	if err != nil {
		return // renewals log PostgreSQL's absence already
	}
	if n.NodesChanged != nil {
		n.NodesChanged(live)
	}
}

// renewAll renews every lease: an account with no charge and no open hold
// for two renewals in a row returns its credit and is dropped; one that is
// scarce returns what its holds do not use.
func (n *Node) renewAll(ctx context.Context) {
	n.eachAccount(n.accounts(), func(account string) {
		n.mu.Lock()
		l := n.leases[account]
		n.mu.Unlock()
		if l == nil || !l.mu.TryLock() {
			return // dropped, or a call is renewing it right now
		}
		defer l.mu.Unlock()
		if n.current(account, l) {
			n.renewOne(ctx, account, l)
		}
	})
}

func (n *Node) renewOne(ctx context.Context, account string, l *lease) {
	info, err := n.ledger.Account(account)
	if err != nil {
		n.drop(account, l)
		return
	}
	l.perRenewal, l.lastCharged = info.Charged-l.lastCharged, info.Charged
	if l.perRenewal == 0 && info.OpenHolds == 0 {
		l.idle++
	} else {
		l.idle = 0
	}
	rctx, cancel := context.WithTimeout(ctx, n.cfg.Renew)
	defer cancel()
	if l.failOpen.Load() > 0 {
		// Serving on fail-open credit: only report (once PostgreSQL answers,
		// the outage is over and the credit is the lease's like any other).
		_, err = n.renewLocked(rctx, account, l, 0, false)
	} else if l.idle >= 2 || info.Frozen || l.scarce {
		err = n.returnLocked(rctx, account, l)
		if err == nil && info.OpenHolds == 0 && !l.scarce {
			n.drop(account, l)
		}
	} else {
		_, err = n.renewLocked(rctx, account, l, 0, true)
	}
	if err != nil && ctx.Err() == nil {
		n.logger.Printf("cluster: renewing account %q's lease: %v", account, err)
	}
}

// lapseDue stops spending the leases past their local deadline: their
// unused credit is taken out of the ledger (it is reported when PostgreSQL
// is back), so the account's next call asks PostgreSQL, and gets 503 while
// it cannot be reached. A lapsed lease is emptied again at each tick, as
// settling calls free the rest of their holds.
func (n *Node) lapseDue() {
	now := time.Now().UnixNano()
	for account, l := range n.snapshot() {
		d := l.deadline.Load()
		if d == 0 || now < d || l.failOpen.Load() > 0 {
			continue // unexpired, or serving on fail-open credit
		}
		if _, err := n.ledger.Withdraw(account, "cluster lease lapsed"); err != nil {
			n.logger.Printf("cluster: lapsing account %q's lease: %v", account, err)
			continue
		}
		if !l.lapsed.Swap(true) {
			leaseLapses.Inc()
		}
	}
}

// returnAll returns every lease's credit, for a clean shutdown.
func (n *Node) returnAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.eachAccount(n.accounts(), func(account string) {
		l := n.lockLease(account)
		defer l.mu.Unlock()
		if err := n.returnLocked(ctx, account, l); err != nil {
			n.logger.Printf("cluster: returning account %q's lease at shutdown: %v (it expires by itself)", account, err)
		}
	})
}

func (n *Node) snapshot() map[string]*lease {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := make(map[string]*lease, len(n.leases))
	for k, v := range n.leases {
		m[k] = v
	}
	return m
}

func (n *Node) accounts() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	accounts := make([]string, 0, len(n.leases))
	for account := range n.leases {
		accounts = append(accounts, account)
	}
	return accounts
}

// drop forgets account's lease l (its lock held), unless it was replaced.
func (n *Node) drop(account string, l *lease) {
	n.mu.Lock()
	if n.leases[account] == l {
		delete(n.leases, account)
	}
	n.mu.Unlock()
}
