package cluster

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNodeTaken: another process serves as this node. A node is its data
// directory, so two processes started from copies of one would report over
// each other's usage; the second is refused.
var ErrNodeTaken = errors.New("cluster: another process is serving as this node (a copy of its data directory?): give each node its own data directory")

// nodeLockClass is the first key of the node identities' advisory locks
// (the two-key form, a key space apart from schemaLock and versionLock).
const nodeLockClass = 0x7467

// Claim is a node's hold on its identity: a session advisory lock in
// PostgreSQL, on a connection of its own, kept while the process runs.
type Claim struct {
	pool   *pgxpool.Pool
	node   string
	logger *log.Logger

	mu   sync.Mutex
	conn *pgx.Conn // nil once closed
}

// ClaimNode takes node's identity, or answers ErrNodeTaken when another
// process holds it for longer than claimWait: a node restarted at once may
// find its previous session not yet ended by PostgreSQL (at once when the
// process died, within about 6 s when its machine did: ShortKeepalives).
func ClaimNode(ctx context.Context, pool *pgxpool.Pool, node string, logger *log.Logger) (*Claim, error) {
	c := &Claim{pool: pool, node: node, logger: logger}
	deadline := time.Now().Add(claimWait)
	for {
		err := c.take(ctx)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, ErrNodeTaken) || time.Now().After(deadline) {
			return nil, err
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// claimWait is how long ClaimNode waits for an identity held elsewhere:
// longer than PostgreSQL takes to end the session of a machine gone away.
const claimWait = 10 * time.Second

// take locks the identity (lockSession).
func (c *Claim) take(ctx context.Context) error {
	conn, err := lockSession(ctx, c.pool, nodeLockClass, c.node)
	if errors.Is(err, errLockTaken) {
		return ErrNodeTaken
	}
	if err != nil {
		return fmt.Errorf("cluster: claiming the node's identity: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
	return nil
}

var errLockTaken = errors.New("cluster: the lock is held by another session")

// lockSession takes the advisory lock (class, name) and returns its
// connection, taken out of the pool for good (a session lock lives as long
// as its connection; ShortKeepalives makes PostgreSQL end the session of a
// machine gone away within seconds); errLockTaken when another
// session holds it.
func lockSession(ctx context.Context, pool *pgxpool.Pool, class int32, name string) (*pgx.Conn, error) {
	pooled, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var taken bool
	if err := pooled.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, class, name).Scan(&taken); err != nil {
		pooled.Hijack().Close(context.Background()) //nolint:errcheck // it may hold the lock: end its session
		return nil, err
	}
	if !taken {
		pooled.Release()
		return nil, errLockTaken
	}
	return pooled.Hijack(), nil
}

// ShortKeepalives asks PostgreSQL for TCP keepalives on a pool's sessions
// (the first probe after 3 s of silence, three probes 1 s apart) that end
// a session about 6 s after its machine went away (the system default
// waits two hours), unless the DSN says otherwise: a dead node's locks
// (its identity, the notifier's role and lock, rows it locked) pass on
// within seconds.
func ShortKeepalives(params map[string]string) {
	for k, v := range map[string]string{"tcp_keepalives_idle": "3", "tcp_keepalives_interval": "1", "tcp_keepalives_count": "3"} {
		if _, set := params[k]; !set {
			params[k] = v
		}
	}
}

// Run keeps the claim until ctx ends: a lost connection (a failover) loses
// the lock, so it is taken again on a new one; a process found holding it
// meanwhile is logged, since both would then report as this node.
func (c *Claim) Run(ctx context.Context) {
	for {
		sleep(ctx, claimCheck)
		if ctx.Err() != nil {
			return
		}
		if c.alive(ctx) {
			continue
		}
		for ctx.Err() == nil {
			err := c.take(ctx)
			if err == nil {
				break
			}
			c.logger.Printf("cluster: cannot take node %q's identity again after a lost connection: %v", c.node, err)
			sleep(ctx, claimCheck)
		}
	}
}

// alive pings the claim's connection, and closes it when it is broken.
func (c *Claim) alive(ctx context.Context) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return true // closed: nothing to keep
	}
	ctx, cancel := context.WithTimeout(ctx, claimCheck)
	defer cancel()
	if c.conn.Ping(ctx) == nil {
		return true
	}
	c.conn.Close(context.Background()) //nolint:errcheck // it is broken
	c.conn = nil
	return false
}

// Close gives the identity up (at shutdown, or when the start failed).
func (c *Claim) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close(context.Background()) //nolint:errcheck // ending the session is what gives the lock up
		c.conn = nil
	}
}

// claimCheck is how often a claim's connection is checked.
const claimCheck = 2 * time.Second

// Lead runs fn while this process holds the cluster-wide role name (a
// session advisory lock, on a connection of its own with short keepalives:
// a dead holder's role passes on within seconds). It tries every
// claimCheck until ctx ends; fn's context ends when the role is lost.
func Lead(ctx context.Context, pool *pgxpool.Pool, name string, fn func(ctx context.Context)) {
	for ctx.Err() == nil {
		conn, err := lockSession(ctx, pool, leadLockClass, name)
		if err != nil {
			sleep(ctx, claimCheck)
			continue
		}
		lead(ctx, conn, fn)
		conn.Close(context.Background()) //nolint:errcheck // ending the session gives the role up
	}
}

// leadLockClass is the first key of the roles' advisory locks.
const leadLockClass = 0x7468

// lead runs fn until ctx ends or conn stops answering.
func lead(ctx context.Context, conn *pgx.Conn, fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	for ctx.Err() == nil {
		sleep(ctx, claimCheck)
		pctx, pcancel := context.WithTimeout(ctx, claimCheck)
		err := conn.Ping(pctx)
		pcancel()
		if err != nil && ctx.Err() == nil {
			break
		}
	}
	cancel()
	<-done
}
