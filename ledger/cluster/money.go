package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/tollgate/tollgate/ledger"
)

// TopUp credits an account once per order ID, as the ledger's TopUp: order
// IDs are unique in the journal (a unique index), so two nodes taking one
// order ID for two accounts at once cannot both credit.
func (a *Authority) TopUp(r ledger.TopUpRequest) (ledger.Entry, bool, error) {
	if err := errors.Join(ledger.ValidID("order_id", r.OrderID), ledger.ValidText("actor", r.Actor)); err != nil {
		return ledger.Entry{}, false, err
	}
	return a.idempotent("order_id", r.OrderID, func(prev ledger.Entry) error {
		if prev.Account != r.Account || prev.Amount != r.Amount || prev.Credit != r.Credit ||
			(r.Credit == ledger.CreditGift && prev.ExpiresAtNanos != r.ExpiresAtNanos) {
			return fmt.Errorf("%w: order %q", ledger.ErrOrderConflict, r.OrderID)
		}
		return nil
	}, func(ctx context.Context, tx pgx.Tx) (*book, error) {
		b, err := lockBook(ctx, tx, r.Account)
		if err != nil {
			return nil, err
		}
		if b.closedAt != 0 {
			return nil, fmt.Errorf("%w: %q takes no top-ups", ledger.ErrAccountClosed, r.Account)
		}
		if err := r.Check(b.now, a.paidLifetime); err != nil {
			return nil, err
		}
		if err := b.checkTopUp(r.Amount); err != nil {
			return nil, err
		}
		b.expireDue()
		expiresAt := r.ExpiresAtNanos
		if r.Credit == ledger.CreditPaid {
			expiresAt = b.now + int64(a.paidLifetime)
		} else if b.giftsFull(expiresAt) {
			return nil, fmt.Errorf("%w: %q has %d", ledger.ErrTooManyBuckets, r.Account, maxGiftBuckets)
		}
		b.add(r.Amount, r.Credit, expiresAt)
		b.toppedUp += r.Amount
		b.record(ledger.Entry{Kind: ledger.EntryTopUp, Amount: r.Amount, OrderID: r.OrderID, Actor: r.Actor,
			Credit: r.Credit, ExpiresAtNanos: expiresAt}, "")
		return b, nil
	})
}

// Adjust applies a billing correction once per idempotency key, as the
// ledger's Adjust.
func (a *Authority) Adjust(r ledger.AdjustRequest) (ledger.Entry, bool, error) {
	if r.IdempotencyKey != "" {
		if err := ledger.ValidID("idempotency_key", r.IdempotencyKey); err != nil {
			return ledger.Entry{}, false, err
		}
	}
	return a.idempotent("idempotency_key", r.IdempotencyKey, func(prev ledger.Entry) error {
		if !prev.SameAdjustment(&r) {
			return fmt.Errorf("%w: %q", ledger.ErrIdempotencyConflict, r.IdempotencyKey)
		}
		return nil
	}, func(ctx context.Context, tx pgx.Tx) (*book, error) { return adjustBook(ctx, tx, &r) })
}

// adjustBook applies r to its account's book inside tx (saved by the
// caller).
func adjustBook(ctx context.Context, tx pgx.Tx, r *ledger.AdjustRequest) (*book, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	b, err := lockBook(ctx, tx, r.Account)
	if err != nil {
		return nil, err
	}
	if err := b.checkAdjust(r.Amount); err != nil {
		return nil, err
	}
	b.expireDue()
	if r.Amount > 0 {
		b.add(r.Amount, ledger.CreditAdjust, never)
	} else {
		b.take(-r.Amount)
	}
	b.adjusted += r.Amount
	b.record(ledger.Entry{Kind: ledger.EntryAdjust, Amount: r.Amount, RequestID: r.RequestID, Reason: r.Reason,
		Actor: r.Actor, IdempotencyKey: r.IdempotencyKey}, "")
	return b, nil
}

// idempotent runs a write keyed by column = key ("" for none): a repeat
// gets the first entry (or same's error), a new key runs change and saves
// its book. Two transactions racing on one key: the loser's insert finds
// the unique index taken, and it looks again.
func (a *Authority) idempotent(column, key string, same func(prev ledger.Entry) error,
	change func(ctx context.Context, tx pgx.Tx) (*book, error)) (ledger.Entry, bool, error) {
	for attempt := 0; ; attempt++ {
		e, created, err := a.idempotentOnce(column, key, same, change)
		if errors.Is(err, errDuplicate) && attempt == 0 {
			continue
		}
		return e, created, err
	}
}

func (a *Authority) idempotentOnce(column, key string, same func(prev ledger.Entry) error,
	change func(ctx context.Context, tx pgx.Tx) (*book, error)) (e ledger.Entry, created bool, err error) {
	ctx, cancel := a.ctx()
	defer cancel()
	err = pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if key != "" {
			prev, found, err := entryBy(ctx, tx, column, key)
			if err != nil || found {
				e = prev
				return errors.Join(err, same(prev))
			}
		}
		b, err := change(ctx, tx)
		if err != nil {
			return err
		}
		entries, err := b.save(ctx, tx)
		if err != nil {
			return err
		}
		e, created = entries[len(entries)-1], true
		return nil
	})
	return e, created, err
}

// Adjustment returns the adjustment made under an idempotency key, if any.
func (a *Authority) Adjustment(idempotencyKey string) (ledger.Entry, bool) {
	if idempotencyKey == "" {
		return ledger.Entry{}, false
	}
	ctx, cancel := a.ctx()
	defer cancel()
	e, found, err := entryBy(ctx, a.pool, "idempotency_key", idempotencyKey)
	return e, found && err == nil
}

// Entries lists an account's journal, newest first: top-ups, adjustments,
// expiries and the nodes' usage reports.
func (a *Authority) Entries(account string, before uint64, limit int) ([]ledger.Entry, bool, error) {
	ctx, cancel := a.ctx()
	defer cancel()
	if before == 0 {
		before = math.MaxInt64
	}
	rows, err := a.pool.Query(ctx, `SELECT `+entryColumns+` FROM tg_journal WHERE account = $1 AND id < $2
		ORDER BY id DESC LIMIT $3`, account, int64(min(before, math.MaxInt64)), limit+1)
	if err != nil {
		return nil, false, err
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Entry, error) { return scanEntry(r) })
	if err != nil {
		return nil, false, err
	}
	if len(entries) > limit {
		return entries[:limit], true, nil
	}
	return entries, false, nil
}

// querier is a transaction or the pool.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const entryColumns = `id, account, time, kind, amount, available_after, coalesce(order_id, ''), coalesce(idempotency_key, ''),
	request_id, reason, actor, credit, expires_at`

// entryBy finds the entry whose column (order_id or idempotency_key) is key.
func entryBy(ctx context.Context, q querier, column, key string) (ledger.Entry, bool, error) {
	rows := q.QueryRow(ctx, `SELECT `+entryColumns+` FROM tg_journal WHERE `+column+` = $1`, key)
	e, err := scanEntry(rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, false, nil
	}
	return e, err == nil, err
}

func scanEntry(r pgx.Row) (ledger.Entry, error) {
	var e ledger.Entry
	var id int64
	var kind string
	var credit int16
	err := r.Scan(&id, &e.Account, &e.TimeNanos, &kind, &e.Amount, &e.AvailableAfter, &e.OrderID, &e.IdempotencyKey,
		&e.RequestID, &e.Reason, &e.Actor, &credit, &e.ExpiresAtNanos)
	e.ID, e.Kind, e.Credit = uint64(id), kindNamed(kind), ledger.Credit(credit)
	return e, err
}

// kindNamed is the entry kind the journal names kind.
func kindNamed(kind string) ledger.EntryKind {
	for _, k := range []ledger.EntryKind{ledger.EntryTopUp, ledger.EntryAdjust, ledger.EntryExpire, ledger.EntryUsage} {
		if k.String() == kind {
			return k
		}
	}
	return 0
}
