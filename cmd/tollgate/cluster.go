package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger/cluster"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/access/pgusers"
	"github.com/tollgate/tollgate/proxy/console"
	"github.com/tollgate/tollgate/wal"
)

// clusterConfig is the file's cluster section (docs/cluster.md).
type clusterConfig struct {
	// DSN turns cluster mode on: PostgreSQL's URL or keyword string,
	// without a password (PGPASSWORD or ~/.pgpass carries it).
	DSN               string   `yaml:"dsn"`
	LeaseTTL          duration `yaml:"lease_ttl"`
	RenewInterval     duration `yaml:"renew_interval"`
	LeaseMargin       duration `yaml:"lease_margin"`
	LeaseSharePercent int64    `yaml:"lease_share_percent"`
	MinLease          string   `yaml:"min_lease"`
	GrantWait         duration `yaml:"grant_wait"`
	// ConnectTimeout bounds the wait for PostgreSQL at start.
	ConnectTimeout duration `yaml:"connect_timeout"`
	// FailOpenBudget is the credit a cut-off node may give an account
	// whose lease lapsed, once per outage ("0": fail closed).
	FailOpenBudget string `yaml:"fail_open_budget"`
}

// connectTimeout bounds the wait for PostgreSQL at start (default 30 s).
func (c clusterConfig) connectTimeout() time.Duration {
	return time.Duration(cmpDuration(c.ConnectTimeout, 30*time.Second))
}

// defaultPoolConns is how many connections a node keeps to PostgreSQL at
// most, unless its DSN says (pool_max_conns): renewals run 16 at a time.
const defaultPoolConns = 20

// clusterCredit is the gateway's credit source in cluster mode: the node's
// leases (Ensure) and the books every node shares (PostgreSQL's).
type clusterCredit struct {
	*cluster.Node
	*cluster.Authority
}

// clusterParts is what cluster mode adds to a process.
type clusterParts struct {
	pool    *pgxpool.Pool
	auth    *cluster.Authority
	mirror  *cluster.Mirror
	node    *cluster.Node
	shipper *cluster.Shipper
	users   *pgusers.Users // nil when the consoles are off
	claim   *cluster.Claim
	id      string
}

// openCluster connects to PostgreSQL, creates the schema when missing and
// copies accounts and keys into the ledger, before the first call is
// served. Notifications stay off in cluster mode: their outbox is still per
// node (docs/cluster.md).
func (p *process) openCluster() error {
	c := p.fc.Cluster
	pc, err := pgxpool.ParseConfig(c.DSN)
	if err != nil {
		return fmt.Errorf("cluster.dsn: %w", err)
	}
	if dsnHasPassword(c.DSN) {
		return errors.New("cluster.dsn carries a password: put it in PGPASSWORD (or ~/.pgpass) instead, out of the file")
	}
	cluster.ShortKeepalives(pc.ConnConfig.RuntimeParams)
	if !strings.Contains(c.DSN, "pool_max_conns") {
		// pgxpool's default (the CPUs, at least 4) would queue the first
		// grants of many accounts at once (a restart under load) behind a
		// handful of connections; pool_max_conns in the DSN overrides it.
		pc.MaxConns = max(pc.MaxConns, defaultPoolConns)
	}
	leases, err := c.leaseConfig()
	if err != nil {
		return err
	}
	id, err := nodeID(p.wlog)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.connectTimeout())
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	parts := &clusterParts{pool: pool, id: id}
	p.cluster = parts
	if err := retryUntil(ctx, func() error { return cluster.Migrate(ctx, pool) }); err != nil {
		return fmt.Errorf("cluster: PostgreSQL at %s: %w", pc.ConnConfig.Host, err)
	}
	if parts.claim, err = cluster.ClaimNode(ctx, pool, id, p.logger); err != nil {
		return err
	}
	p.warnUnlessSynchronous(ctx)
	parts.mirror = cluster.NewMirror(pool, p.ledger, p.logger)
	parts.auth = cluster.NewAuthority(pool, time.Duration(p.fc.Ledger.PaidCreditLifetime), func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := parts.mirror.Sync(sctx); err != nil {
			p.logger.Printf("cluster: mirror: %v", err)
		}
	})
	if err := parts.mirror.Sync(ctx); err != nil {
		return fmt.Errorf("cluster: copying accounts and keys: %w", err)
	}
	parts.node = cluster.NewNode(id, parts.auth, p.ledger, leases, p.logger)
	if parts.shipper, err = cluster.NewShipper(ctx, pool, p.ledger, id, p.logger); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	p.wlog.SetRetention(parts.shipper.Cursor) // the WAL is the settlements' outbox
	p.logger.Printf("cluster: node %s; leases of %s renewed every %s", id, parts.node.Config().TTL, parts.node.Config().Renew)
	return nil
}

// startClusterJobs runs the mirror, the leases, the shipper and the
// pruning of PostgreSQL's call records (every node prunes; a delete is
// idempotent).
func (p *process) startClusterJobs() {
	c, fc := p.cluster, p.fc
	p.jobs.run(c.claim.Run)
	p.jobs.run(c.mirror.Run)
	p.jobs.run(c.node.Run)
	p.jobs.run(c.shipper.Run)
	p.jobs.every(time.Duration(fc.Ledger.SweepInterval), func() {
		if fc.CallRetention <= 0 {
			return
		}
		if n, err := c.auth.PruneCalls(time.Now().Add(-time.Duration(fc.CallRetention)).UnixNano()); err != nil {
			p.logger.Printf("cluster: call pruning: %s", err)
		} else if n > 0 {
			p.logger.Printf("cluster: call pruning: %d call records older than %s removed", n, time.Duration(fc.CallRetention))
		}
	})
	p.jobs.every(time.Duration(fc.Ledger.SweepInterval), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := cluster.PruneOutbox(ctx, c.pool, time.Now().Add(-keptOutbox)); err != nil {
			p.logger.Printf("cluster: pruning the notifications' outbox: %s", err)
		}
	})
	if c.users != nil {
		p.jobs.every(time.Duration(fc.Ledger.SweepInterval), func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := c.users.DropExpired(ctx, time.Now().Add(-keptInvitations)); err != nil {
				p.logger.Printf("cluster: dropping expired sessions and invitations: %s", err)
			}
		})
	}
}

// keptOutbox is how long a change waits in the notifications' outbox for
// a notifier (none runs when every node has notifications off).
const keptOutbox = 7 * 24 * time.Hour

// keptInvitations is how long an expired invitation stays listed in the
// consoles (cluster mode) before it is deleted.
const keptInvitations = 30 * 24 * time.Hour

// openOperators opens the operators and their API tokens: from the WAL's
// state area, or in cluster mode from PostgreSQL, where every node's admin
// API reads them (each node reloads them when another changed them).
func (p *process) openOperators() (*access.Store, error) {
	if p.cluster == nil {
		return access.Open(p.wlog.States, p.wlog.SetState)
	}
	states := cluster.NewStates(p.cluster.pool)
	ops, err := access.Open(states.Load, states.Save)
	if err != nil {
		return nil, fmt.Errorf("cluster: the operators: %w", err)
	}
	ops.Share(states.Create, states.Change)
	p.cluster.mirror.StatesChanged = func() {
		if err := ops.Reload(); err != nil {
			p.logger.Printf("cluster: reloading the operators: %v", err)
		}
	}
	return ops, nil
}

// openUsers opens the consoles' users, invitations and sessions: from the
// WAL's state area, or in cluster mode from PostgreSQL, so a person signs
// in on any node.
func (p *process) openUsers() (access.UserStore, error) {
	if p.cluster == nil {
		return access.OpenUsers(p.wlog)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.fc.Cluster.connectTimeout())
	defer cancel()
	users, err := pgusers.Open(ctx, p.cluster.pool)
	if err != nil {
		return nil, fmt.Errorf("cluster: the consoles' users: %w", err)
	}
	p.cluster.users = users
	return users, nil
}

// signInAttempts counts realm's failed sign-ins for the whole cluster
// (nil in single-node mode: each console counts them itself).
func (p *process) signInAttempts(realm access.Realm) access.Attempts {
	if p.cluster == nil || p.cluster.users == nil {
		return nil
	}
	return p.cluster.users.Attempts(realm, console.FailuresPerUser, console.ThrottleWindow)
}

// books are where accounts, keys and money are decided: the ledger, or in
// cluster mode PostgreSQL's authority.
func (p *process) books() console.Books {
	if p.cluster != nil {
		return p.cluster.auth
	}
	return p.ledger
}

// verifyCluster is `tollgate verify --cluster-dsn`: PostgreSQL's books
// checked (conservation per account, the journal against the totals, the
// leases' reports against the charges), while the nodes run.
func verifyCluster(dsn string, out io.Writer) error {
	if dsnHasPassword(dsn) {
		return errors.New("--cluster-dsn carries a password: put it in PGPASSWORD (or ~/.pgpass) instead")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := cluster.NewAuthority(pool, 0, nil).Check(ctx); err != nil {
		fmt.Fprintln(out, "FAILED")
		return err
	}
	fmt.Fprintln(out, "OK: conservation holds in PostgreSQL, the journal and the leases' reports agree with the totals")
	return nil
}

// resumeCluster takes back the credit the ledger still holds from the
// previous run's leases and reports it (after the crash's open holds were
// recovered, before any call is served).
func (p *process) resumeCluster() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.fc.Cluster.connectTimeout())
	defer cancel()
	return p.cluster.node.Resume(ctx)
}

// leaseConfig is the lease settings of the file (defaults left to the
// cluster package).
func (c *clusterConfig) leaseConfig() (cluster.LeaseConfig, error) {
	lc := cluster.LeaseConfig{TTL: time.Duration(c.LeaseTTL), Renew: time.Duration(c.RenewInterval),
		Margin: time.Duration(c.LeaseMargin), SharePercent: c.LeaseSharePercent, Wait: time.Duration(c.GrantWait)}
	if c.MinLease != "" {
		v, err := money.Parse(c.MinLease)
		if err != nil || v <= 0 {
			return lc, fmt.Errorf("cluster.min_lease: want a positive amount of credits, got %q", c.MinLease)
		}
		lc.Min = v
	}
	if c.FailOpenBudget != "" {
		v, err := money.Parse(c.FailOpenBudget)
		if err != nil || v < 0 {
			return lc, fmt.Errorf("cluster.fail_open_budget: want an amount of credits (0 to fail closed), got %q", c.FailOpenBudget)
		}
		lc.FailOpen = v
	}
	return lc, lc.Check()
}

// dsnHasPassword reports whether a DSN (URL or keyword form) names a
// password itself; PGPASSWORD and ~/.pgpass are where it belongs.
func dsnHasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		_, set := u.User.Password()
		return set || u.Query().Has("password")
	}
	for _, field := range strings.Fields(dsn) {
		if k, _, ok := strings.Cut(field, "="); ok && strings.TrimSpace(k) == "password" {
			return true
		}
	}
	return false
}

// warnUnlessSynchronous says at start when PostgreSQL would acknowledge a
// grant or top-up that a failover could lose (docs/cluster.md).
func (p *process) warnUnlessSynchronous(ctx context.Context) {
	var commit, standbys string
	err := p.cluster.pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit'), current_setting('synchronous_standby_names')`).Scan(&commit, &standbys)
	switch {
	case err != nil:
		p.logger.Printf("cluster: cannot read PostgreSQL's replication settings: %v", err)
	case strings.TrimSpace(standbys) == "" || commit == "off" || commit == "local":
		p.logger.Printf("WARNING: cluster: PostgreSQL commits without a synchronous standby (synchronous_commit=%s, synchronous_standby_names=%q): a failover can lose acknowledged top-ups and leases; see docs/cluster.md", commit, standbys)
	default:
		p.logger.Printf("cluster: commits wait for a synchronous standby (synchronous_commit=%s, synchronous_standby_names=%q)", commit, standbys)
	}
}

// nodeID is this data directory's node identity, made on first start and
// kept in the WAL's state area: a lease belongs to a node, and a node is
// its WAL. A fresh data directory is a new node (its predecessor's leases
// simply expire); one restored from a backup is the same node, behind its
// own reports, and Resume refuses it (cluster.ErrStaleNode).
func nodeID(log *wal.Log) (string, error) {
	const name = "cluster/node-id"
	var id string
	err := log.States(name, func(_ string, v []byte) error { id = string(v); return nil })
	if err != nil || id != "" {
		return id, err
	}
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	id = "node-" + hex.EncodeToString(r[:])
	return id, log.SetState(name, []byte(id))
}

// retryUntil retries fn until it succeeds or ctx ends (PostgreSQL may still be
// starting, or failing over).
func retryUntil(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func cmpDuration(d duration, def time.Duration) time.Duration {
	if d > 0 {
		return time.Duration(d)
	}
	return def
}
