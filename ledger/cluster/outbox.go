package cluster

import (
	"context"
	"fmt"
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
