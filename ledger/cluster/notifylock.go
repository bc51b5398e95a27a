package cluster

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

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
