package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/tollgate/tollgate/ledger"
)

// never is the expiry of credit that never expires (adjustment credit).
const never = math.MaxInt64

// book is one account's money as PostgreSQL holds it, read inside a
// transaction that locked the account's row, changed in Go, and written
// back by save. Conservation, as in the ledger:
// toppedUp + adjusted - expired == free credit - debt + charged, and the
// account's available balance is free credit - debt - held, where held is
// what its unexpired leases still grant.
type book struct {
	id                                string
	frozen                            bool
	closedAt                          int64
	debt, toppedUp, adjusted, expired int64
	charged                           int64
	credits                           []credit
	held                              int64
	now                               int64
	journal                           []journalRow
}

// credit is one bucket of an account's credit (tg_credits); id 0 until it
// is inserted.
type credit struct {
	id        int64
	kind      ledger.Credit
	expiresAt int64
	remaining int64
	changed   bool
}

// journalRow is an entry to insert when the book is saved.
type journalRow struct {
	entry ledger.Entry
	node  string
}

// lockBook locks account id's row and reads its money; it returns
// ledger.ErrUnknownAccount for an unknown account.
func lockBook(ctx context.Context, tx pgx.Tx, id string) (*book, error) {
	return readBook(ctx, tx, id, "FOR UPDATE")
}

// readBook reads account id's money; lock is "FOR UPDATE" or "".
func readBook(ctx context.Context, tx pgx.Tx, id, lock string) (*book, error) {
	b := &book{id: id}
	err := tx.QueryRow(ctx, `SELECT frozen, closed_at, debt, topped_up, adjusted, expired, charged, tg_now()
		FROM tg_accounts WHERE id = $1 `+lock, id).
		Scan(&b.frozen, &b.closedAt, &b.debt, &b.toppedUp, &b.adjusted, &b.expired, &b.charged, &b.now)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", ledger.ErrUnknownAccount, id)
	}
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT id, credit, expires_at, remaining FROM tg_credits
		WHERE account = $1 AND remaining > 0`, id)
	if err != nil {
		return nil, err
	}
	b.credits, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (credit, error) {
		var c credit
		var kind int16
		err := r.Scan(&c.id, &kind, &c.expiresAt, &c.remaining)
		c.kind = ledger.Credit(kind)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	b.sortCredits()
	err = tx.QueryRow(ctx, `SELECT coalesce(sum(greatest(granted - reported, 0)), 0)::bigint
		FROM tg_leases WHERE account = $1 AND expires_at > $2`, id, b.now).Scan(&b.held)
	return b, err
}

// sortCredits keeps the spend order: soonest expiry first.
func (b *book) sortCredits() {
	sort.SliceStable(b.credits, func(i, j int) bool { return b.credits[i].expiresAt < b.credits[j].expiresAt })
}

// free is the unexpired credit left.
func (b *book) free() int64 {
	var s int64
	for _, c := range b.credits {
		if c.expiresAt > b.now {
			s += c.remaining
		}
	}
	return s
}

// available is what holds and leases may still take.
func (b *book) available() int64 { return b.free() - b.debt - b.held }

// expiresAt is the soonest expiry among credits with a remainder (0: none).
func (b *book) expiresAt() int64 {
	for _, c := range b.credits {
		if c.remaining > 0 && c.expiresAt > b.now && c.expiresAt != never {
			return c.expiresAt
		}
	}
	return 0
}

// expireDue expires the credit whose time has come, one expire entry each.
func (b *book) expireDue() {
	for i := range b.credits {
		c := &b.credits[i]
		if c.remaining > 0 && c.expiresAt <= b.now {
			x := c.remaining
			c.remaining, c.changed = 0, true
			b.expired += x
			b.record(ledger.Entry{Kind: ledger.EntryExpire, Amount: -x, Credit: c.kind, ExpiresAtNanos: c.expiresAt}, "")
		}
	}
}

// add puts amount of kind expiring at expiresAt into the book: debt is
// repaid first; paid credit joins the live paid bucket (whose expiry moves
// to expiresAt), gift credit the bucket of its expiry.
func (b *book) add(amount int64, kind ledger.Credit, expiresAt int64) {
	repay := min(amount, b.debt)
	b.debt -= repay
	amount -= repay
	for i := range b.credits {
		c := &b.credits[i]
		if c.kind == kind && c.expiresAt > b.now && (kind == ledger.CreditPaid || c.expiresAt == expiresAt) {
			c.remaining += amount
			c.expiresAt, c.changed = expiresAt, true
			b.sortCredits()
			return
		}
	}
	b.credits = append(b.credits, credit{kind: kind, expiresAt: expiresAt, remaining: amount, changed: true})
	b.sortCredits()
}

// checkTopUp and checkAdjust refuse credit that would take the account's
// totals out of int64's range (the ledger's rule: its total credit bounds
// every other sum).
func (b *book) checkTopUp(amount int64) error {
	return b.checkTotals(b.toppedUp, amount)
}

func (b *book) checkAdjust(amount int64) error {
	if amount < 0 {
		if b.adjusted < math.MinInt64-amount || b.debt > math.MaxInt64+amount {
			return fmt.Errorf("%w: the account's adjustments would overflow", ledger.ErrInvalid)
		}
		return nil
	}
	return b.checkTotals(b.adjusted, amount)
}

func (b *book) checkTotals(total, amount int64) error {
	credit := b.toppedUp + b.adjusted // within range: checked as it grew
	if total > math.MaxInt64-amount || credit > math.MaxInt64-amount {
		return fmt.Errorf("%w: the account's credit would overflow", ledger.ErrInvalid)
	}
	return nil
}

// maxGiftBuckets is the ledger's default bound on the gift credits with
// distinct expiry times one account may hold (ledger.Config.MaxGiftBuckets).
const maxGiftBuckets = 256

// giftsFull reports whether a gift expiring at expiresAt would need a
// bucket beyond maxGiftBuckets.
func (b *book) giftsFull(expiresAt int64) bool {
	n := 0
	for _, c := range b.credits {
		if c.kind == ledger.CreditGift && c.expiresAt > b.now {
			if c.expiresAt == expiresAt {
				return false
			}
			n++
		}
	}
	return n >= maxGiftBuckets
}

// take spends amount from the soonest-expiring credit; what the credit does
// not cover becomes debt.
func (b *book) take(amount int64) {
	for i := range b.credits {
		c := &b.credits[i]
		if amount == 0 {
			return
		}
		if c.expiresAt <= b.now || c.remaining == 0 {
			continue
		}
		t := min(amount, c.remaining)
		c.remaining -= t
		c.changed = true
		amount -= t
	}
	b.debt += amount
}

// record queues e (its time, account and available balance filled in) to
// be inserted when the book is saved.
func (b *book) record(e ledger.Entry, node string) {
	e.TimeNanos, e.Account, e.AvailableAfter = b.now, b.id, b.available()
	b.journal = append(b.journal, journalRow{entry: e, node: node})
}

// save writes the book's totals, changed credits and new entries (each
// with its outbox row) in one round trip, and returns the entries with
// their IDs. An order ID or
// idempotency key another transaction has just used is errDuplicate.
func (b *book) save(ctx context.Context, tx pgx.Tx) ([]ledger.Entry, error) {
	batch := &pgx.Batch{}
	batch.Queue(`UPDATE tg_accounts SET debt = $2, topped_up = $3, adjusted = $4, expired = $5, charged = $6 WHERE id = $1`,
		b.id, b.debt, b.toppedUp, b.adjusted, b.expired, b.charged)
	for _, c := range b.credits {
		switch {
		case c.changed && c.id == 0:
			batch.Queue(`INSERT INTO tg_credits (account, credit, expires_at, remaining) VALUES ($1, $2, $3, $4)`,
				b.id, int16(c.kind), c.expiresAt, c.remaining)
		case c.changed:
			batch.Queue(`UPDATE tg_credits SET expires_at = $2, remaining = $3 WHERE id = $1`, c.id, c.expiresAt, c.remaining)
		}
	}
	entries := make([]ledger.Entry, len(b.journal))
	for i, j := range b.journal {
		e := j.entry
		batch.Queue(`INSERT INTO tg_journal (account, time, kind, amount, available_after, order_id, idempotency_key,
			request_id, reason, actor, credit, expires_at, node)
			VALUES ($1, $2, $3, $4, $5, nullif($6, ''), nullif($7, ''), $8, $9, $10, $11, $12, $13)
			ON CONFLICT DO NOTHING RETURNING id`,
			e.Account, e.TimeNanos, e.Kind.String(), e.Amount, e.AvailableAfter, e.OrderID, e.IdempotencyKey,
			e.RequestID, e.Reason, e.Actor, int16(e.Credit), e.ExpiresAtNanos, j.node).QueryRow(func(r pgx.Row) error {
			var id int64
			if err := r.Scan(&id); errors.Is(err, pgx.ErrNoRows) {
				return errDuplicate
			} else if err != nil {
				return err
			}
			entries[i] = e
			entries[i].ID = uint64(id)
			return nil
		})
		if err := queueChange(batch, ledger.Change{Kind: ledger.ChangeEntry, Account: e.Account, TimeNanos: e.TimeNanos, Entry: &e}); err != nil {
			return nil, err
		}
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, err
	}
	return entries, nil
}

// errDuplicate: an order ID or idempotency key was inserted by a
// concurrent transaction; the caller rolls back and looks it up.
var errDuplicate = errors.New("cluster: order ID or idempotency key taken meanwhile")
