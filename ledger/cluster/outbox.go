package cluster

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bytedance/sonic"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tollgate/tollgate/ledger"
)

// The notifications' outbox in cluster mode. Every transaction of the
// Authority that notifications tell of (journal entries, freezes and
// closures, keys made and revoked, disputes filed and resolved) inserts a
// row holding the change, in the same transaction: the row exists exactly
// when the change does.
//
// Rows get their place in the outbox (seq) when the notifier first sees
// them, not when they are inserted: an id handed out at insert is not
// commit order (a transaction that took a smaller id may commit after one
// with a larger id has been read), so a cursor over ids could pass a row
// that commits later. The single notifier of the cluster (it works under
// notifyLock) stamps every committed row still without a seq, in id
// order, and reads by seq: a row committed late is stamped late, never
// skipped. A transaction that locks an account row inserts its outbox row
// after the lock, so one account's changes keep their commit order.

// queueChange queues c's outbox row on batch.
func queueChange(batch *pgx.Batch, c ledger.Change) error {
	b, err := sonic.Marshal(c)
	if err != nil {
		return err
	}
	batch.Queue(`INSERT INTO tg_outbox (change) VALUES ($1)`, b)
	return nil
}

// insertChange inserts c's outbox row in tx.
func insertChange(ctx context.Context, tx pgx.Tx, c ledger.Change) error {
	b, err := sonic.Marshal(c)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO tg_outbox (change) VALUES ($1)`, b)
	return err
}

// Outbox is the notifier's source in cluster mode (notify.Source): the
// outbox's changes in order, and the accounts from the Authority.
type Outbox struct {
	pool *pgxpool.Pool
	auth *Authority
}

// NewOutbox returns the outbox on pool.
func NewOutbox(pool *pgxpool.Pool, auth *Authority) *Outbox { return &Outbox{pool: pool, auth: auth} }

// outboxBatch bounds the rows one Changes call reads.
const outboxBatch = 1000

// Changes stamps the rows committed since the last call and calls fn with
// those after seq, in order; rows at or before seq (the notifier has
// recorded what they told) are deleted.
func (o *Outbox) Changes(after uint64, fn func(ledger.Change) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := o.stamp(ctx); err != nil {
		return err
	}
	if _, err := o.pool.Exec(ctx, `DELETE FROM tg_outbox WHERE seq <= $1`, int64(after)); err != nil {
		return err
	}
	rows, err := o.pool.Query(ctx, `SELECT seq, change FROM tg_outbox WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(after), outboxBatch)
	if err != nil {
		return err
	}
	var seq int64
	var raw []byte
	_, err = pgx.ForEachRow(rows, []any{&seq, &raw}, func() error {
		var c ledger.Change
		if err := sonic.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("cluster: outbox row %d: %w", seq, err)
		}
		c.Seq = uint64(seq)
		return fn(c)
	})
	return err
}

// stamp gives the committed rows without a place the next places, in id
// order, and returns the last place.
func (o *Outbox) stamp(ctx context.Context) (last int64, err error) {
	err = pgx.BeginFunc(ctx, o.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT value FROM tg_outbox_seq FOR UPDATE`).Scan(&last); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE tg_outbox o SET seq = $1 + t.n FROM
			(SELECT id, row_number() OVER (ORDER BY id) AS n FROM tg_outbox WHERE seq IS NULL) t WHERE o.id = t.id`, last)
		if err != nil {
			return err
		}
		last += tag.RowsAffected()
		// The last place outlives its row (pruned), so places never repeat.
		_, err = tx.Exec(ctx, `UPDATE tg_outbox_seq SET value = $1`, last)
		return err
	})
	return last, err
}

// Last is the outbox's last place: where a new notifier starts.
func (o *Outbox) Last() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	last, err := o.stamp(ctx)
	return uint64(last), err
}

// Accounts calls fn with every account and its credit (credit reminders).
func (o *Outbox) Accounts(fn func(ledger.AccountInfo)) error { return o.auth.Accounts(fn) }

// PruneOutbox deletes outbox rows older than before that no notifier read
// (notifications off in the whole cluster); any node may run it.
func PruneOutbox(ctx context.Context, pool *pgxpool.Pool, before time.Time) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM tg_outbox WHERE added_at < $1`, before.UnixNano())
	return tag.RowsAffected(), err
}

// NotifyLock makes the nodes' notifiers one (notify.Lock): a session
// advisory lock held while one changes the outbox's state, and a version
// bumped in the transaction of each write of that state (Write), so the
// next holder knows to read it again, even when the writer died before it
// unlocked.
type NotifyLock struct {
	pool *pgxpool.Pool
	// seen is the version of the state this process holds (-1: none,
	// or not read); only the lock's holder changes it.
	seen atomic.Int64
}

// NewNotifyLock returns the lock on pool.
func NewNotifyLock(pool *pgxpool.Pool) *NotifyLock {
	l := &NotifyLock{pool: pool}
	l.seen.Store(-1)
	return l
}

// Write stores the notifier's states (nil deletes) and bumps the version,
// in one transaction; the lock's holder calls it.
func (l *NotifyLock) Write(names []string, values [][]byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	batch := &pgx.Batch{}
	for i, name := range names {
		if values[i] == nil {
			batch.Queue(`DELETE FROM tg_states WHERE name = $1`, name)
		} else {
			batch.Queue(`INSERT INTO tg_states (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`, name, values[i])
		}
	}
	var version int64
	batch.Queue(`UPDATE tg_notify_version SET value = value + 1 RETURNING value`).QueryRow(func(r pgx.Row) error { return r.Scan(&version) })
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, batch).Close() })
	if err == nil {
		l.seen.Store(version) // this process's own write: nothing to read again
	} else {
		l.seen.Store(-1) // whether it committed is unknown: read again
	}
	return err
}

// notifyLockKey is the notifiers' advisory lock.
const notifyLockKey = 0x7467_0004

// Lock waits for the lock (at most opTimeout).
func (l *NotifyLock) Lock(ctx context.Context) (bool, func(wrote bool), error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return false, nil, err
	}
	var version int64
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, notifyLockKey)
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT value FROM tg_notify_version`).Scan(&version)
	}
	if err != nil {
		conn.Hijack().Close(context.Background()) //nolint:errcheck // a session that may hold the lock must end
		return false, nil, err
	}
	changed := version != l.seen.Load()
	return changed, func(current bool) {
		if !current {
			l.seen.Store(-1) // read again next time
		} else if l.seen.Load() < version {
			l.seen.Store(version) // read now (writes meanwhile moved it further)
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, notifyLockKey); err != nil {
			conn.Hijack().Close(context.Background()) //nolint:errcheck // ending the session releases the lock
			return
		}
		conn.Release()
	}, nil
}

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
