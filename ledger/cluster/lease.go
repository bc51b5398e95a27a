package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tollgate/tollgate/ledger"
)

// A lease is the credit one node may spend of one account without asking:
// the row (account, node) of tg_leases. granted is the node's net credit
// under it (grants minus returns), reported the node's cumulative charges
// for the account; granted - reported, while expires_at (PostgreSQL's
// clock) has not passed, counts in the account's held balance.
//
// The node's ledger keeps the lease's credit as adjustments, so its
// account's adjusted total is the lease's granted and its charged total
// what the node has spent: every renewal states both, and PostgreSQL takes
// them as they are. Grants are committed in PostgreSQL before the node
// credits them and returns are taken locally before they are reported, so
// a crash between the two steps leaves PostgreSQL counting more than the
// node holds, never less, and the next renewal makes them equal again.

// ErrStaleNode: a node states less usage than it reported before, which
// only a data directory restored from an older copy does (reports wait for
// the WAL's sync). Its ledger is behind PostgreSQL: charges it would make
// up to the difference would go unreported, so it must not serve.
var ErrStaleNode = errors.New("cluster: this node's data directory is behind what it reported to PostgreSQL (restored from a backup?): start the node on a fresh data directory")

// leaseReport is what a node states when it renews a lease.
type leaseReport struct {
	node, account string
	// net is the node's ledger's adjusted total for the account: the
	// credit leases gave it minus what it returned.
	net int64
	// charged is the node's ledger's charged total for the account.
	charged int64
	// want is the credit the node asks for; floor the least grant that is
	// any use (a call's hold not yet covered): smaller grants are not made.
	want, floor int64
	// ttl is how long the lease lasts from now, by PostgreSQL's clock.
	ttl time.Duration
	// sharePercent caps a grant at this share of the account's available
	// credit (at least floor), so one node does not starve the others.
	sharePercent int64
}

// leaseGrant is PostgreSQL's answer.
type leaseGrant struct {
	granted int64
	// available is the account's available balance after the renewal.
	available int64
	// stopped: the account is frozen or closed; nothing is granted.
	stopped bool
	// expired: the lease had expired before this renewal (its credit may
	// have been granted to others since); nothing is granted until the
	// node has given back what it still holds of it.
	expired bool
}

// renew reports a node's usage of an account and grants it credit, in one
// transaction: the usage is charged to the account's credit (an entry of
// kind usage; into debt if the credit does not cover it, as a late report
// of an expired lease may), then up to want is granted.
func (a *Authority) renew(ctx context.Context, r leaseReport) (leaseGrant, error) {
	var g leaseGrant
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		b, err := lockBook(ctx, tx, r.account)
		if err != nil {
			return err
		}
		l, err := lockLeaseRow(ctx, tx, r.account, r.node)
		if err != nil {
			return err
		}
		if r.charged < l.reported {
			return fmt.Errorf("%w: account %q: %d charged here, %d reported before", ErrStaleNode, r.account, r.charged, l.reported)
		}
		g = l.renew(b, r)
		if _, err := tx.Exec(ctx, `INSERT INTO tg_leases (account, node, granted, reported, expires_at, renewals)
			VALUES ($1, $2, $3, $4, $5, 1) ON CONFLICT (account, node) DO UPDATE SET granted = $3, reported = $4,
			expires_at = $5, renewals = tg_leases.renewals + 1`,
			r.account, r.node, l.granted, l.reported, l.expiresAt); err != nil {
			return err
		}
		_, err = b.save(ctx, tx)
		return err
	})
	return g, err
}

// leaseRow is a lease as tg_leases has it (zero when there is none yet).
type leaseRow struct {
	granted, reported, expiresAt int64
}

func lockLeaseRow(ctx context.Context, tx pgx.Tx, account, node string) (leaseRow, error) {
	var l leaseRow
	err := tx.QueryRow(ctx, `SELECT granted, reported, expires_at FROM tg_leases WHERE account = $1 AND node = $2 FOR UPDATE`,
		account, node).Scan(&l.granted, &l.reported, &l.expiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	return l, err
}

// renew applies r to the lease and the account's book: the node's net
// credit taken as stated, its new usage charged, a grant sized (none for a
// lease that had expired), and the lease extended by r.ttl.
func (l *leaseRow) renew(b *book, r leaseReport) leaseGrant {
	expired := l.expiresAt != 0 && l.expiresAt <= b.now
	if !expired {
		b.held -= max(l.granted-l.reported, 0) // counted again below, as renewed
	}
	b.expireDue()
	l.granted = r.net
	usage := r.charged - l.reported
	if usage > 0 {
		b.take(usage)
		b.charged += usage
		l.reported = r.charged
	}
	var g leaseGrant
	if expired && r.net > 0 {
		g.expired = true
	} else {
		g = grant(b, r, max(l.granted-l.reported, 0))
	}
	l.granted += g.granted
	b.held += max(l.granted-l.reported, 0)
	if usage > 0 {
		late := ""
		if expired {
			late = "reported after the lease expired"
		}
		b.record(ledger.Entry{Kind: ledger.EntryUsage, Amount: -usage, Reason: late, Actor: "node:" + r.node}, r.node)
	}
	g.available = b.available()
	l.expiresAt = b.now + int64(r.ttl)
	return g
}

// grant sizes a grant for r from the book, where outstanding is what the
// node's lease still counts: at most want, at most sharePercent of the
// available credit but at least floor, never more than is available, and
// nothing when even floor does not fit.
func grant(b *book, r leaseReport, outstanding int64) leaseGrant {
	if b.frozen || b.closedAt != 0 {
		return leaseGrant{stopped: true}
	}
	room := b.available() - outstanding
	if r.want <= 0 || room <= 0 || room < r.floor {
		return leaseGrant{}
	}
	share := max(r.floor, room/100*r.sharePercent)
	return leaseGrant{granted: min(r.want, share, room)}
}

// heartbeat records node as seen now and returns how many nodes were seen
// within window (node included).
func (a *Authority) heartbeat(ctx context.Context, node string, window time.Duration) (int64, error) {
	var live int64
	err := a.pool.QueryRow(ctx, `WITH seen AS (
		  INSERT INTO tg_nodes (id, seen_at) VALUES ($1, tg_now())
		  ON CONFLICT (id) DO UPDATE SET seen_at = tg_now() RETURNING id)
		SELECT count(*) + 1 FROM tg_nodes WHERE seen_at > tg_now() - $2 AND id <> (SELECT id FROM seen)`,
		node, int64(window)).Scan(&live)
	return live, err
}

// reported returns what node has reported of each account's usage.
func (a *Authority) reported(ctx context.Context, node string) (map[string]int64, error) {
	rows, err := a.pool.Query(ctx, `SELECT account, reported FROM tg_leases WHERE node = $1`, node)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var account string
	var reported int64
	_, err = pgx.ForEachRow(rows, []any{&account, &reported}, func() error { out[account] = reported; return nil })
	return out, err
}
