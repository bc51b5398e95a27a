package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tollgate/tollgate/ledger"
)

// Authority decides accounts, keys and money in PostgreSQL: the admin API's
// books in cluster mode (it has the ledger's methods and errors, so the
// admin API serves both modes with one code). Every node's Authority writes
// to the same database; each node's mirror copies accounts and keys into
// its own ledger.
type Authority struct {
	pool *pgxpool.Pool
	// PaidCreditLifetime is how long paid credit lasts after a paid
	// top-up (the ledger's rule).
	paidLifetime time.Duration
	// changed is called after a write of accounts or keys commits, so this
	// node's mirror has it before the answer goes out (nil: nothing).
	changed func()
}

// opTimeout bounds one operation of the admin API on the database.
const opTimeout = 10 * time.Second

// NewAuthority returns the authority on pool; changed (may be nil) runs
// after each committed change of accounts or keys.
func NewAuthority(pool *pgxpool.Pool, paidLifetime time.Duration, changed func()) *Authority {
	if changed == nil {
		changed = func() {}
	}
	return &Authority{pool: pool, paidLifetime: paidLifetime, changed: changed}
}

func (a *Authority) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// versioned runs fn in a transaction that writes accounts or keys: it
// takes versionLock, hands fn the next version, and signals the mirrors.
func (a *Authority) versioned(fn func(ctx context.Context, tx pgx.Tx, version int64) error) error {
	ctx, cancel := a.ctx()
	defer cancel()
	err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, versionLock); err != nil {
			return err
		}
		var version int64 // taken under the lock: versions follow commit order
		if err := tx.QueryRow(ctx, `SELECT nextval('tg_version')`).Scan(&version); err != nil {
			return err
		}
		if err := fn(ctx, tx, version); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, changeChannel)
		return err
	})
	if err == nil {
		a.changed()
	}
	return err
}

// CreateAccount creates an account.
func (a *Authority) CreateAccount(spec ledger.AccountSpec) (ledger.AccountInfo, error) {
	if err := spec.Prepare(); err != nil {
		return ledger.AccountInfo{}, err
	}
	err := a.versioned(func(ctx context.Context, tx pgx.Tx, version int64) error {
		tag, err := tx.Exec(ctx, `INSERT INTO tg_accounts (id, email, multiplier, rpm, tpm, concurrency, created_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, tg_now(), $7) ON CONFLICT DO NOTHING`,
			spec.ID, spec.Email, spec.Multiplier, spec.Limits.RPM, spec.Limits.TPM, spec.Limits.Concurrency, version)
		if err == nil && tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %q", ledger.ErrAccountExists, spec.ID)
		}
		return err
	})
	if err != nil {
		return ledger.AccountInfo{}, err
	}
	return a.Account(spec.ID)
}

// UpdateAccount applies p.
func (a *Authority) UpdateAccount(id string, p ledger.AccountPatch) (ledger.AccountInfo, error) {
	err := a.versioned(func(ctx context.Context, tx pgx.Tx, version int64) error {
		var email string
		var mult int64
		var l ledger.Limits
		err := tx.QueryRow(ctx, `SELECT email, multiplier, rpm, tpm, concurrency FROM tg_accounts WHERE id = $1 FOR UPDATE`, id).
			Scan(&email, &mult, &l.RPM, &l.TPM, &l.Concurrency)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %q", ledger.ErrUnknownAccount, id)
		} else if err != nil {
			return err
		}
		if p.Email != nil {
			email = *p.Email
		}
		if p.Multiplier != nil {
			mult = *p.Multiplier
		}
		if p.Limits != nil {
			l = *p.Limits
		}
		if err := ledger.CheckAccountSettings(email, mult, l); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE tg_accounts SET email = $2, multiplier = $3, rpm = $4, tpm = $5, concurrency = $6, version = $7
			WHERE id = $1`, id, email, mult, l.RPM, l.TPM, l.Concurrency, version)
		return err
	})
	if err != nil {
		return ledger.AccountInfo{}, err
	}
	return a.Account(id)
}

// SetFrozen freezes or unfreezes an account; a closed account stays frozen.
func (a *Authority) SetFrozen(id string, frozen bool, actor string) error {
	return a.versioned(func(ctx context.Context, tx pgx.Tx, version int64) error {
		var closedAt int64
		var was bool
		err := tx.QueryRow(ctx, `SELECT closed_at, frozen FROM tg_accounts WHERE id = $1 FOR UPDATE`, id).Scan(&closedAt, &was)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: %q", ledger.ErrUnknownAccount, id)
		case err != nil:
			return err
		case closedAt != 0 && !frozen:
			return fmt.Errorf("%w: %q stays frozen", ledger.ErrAccountClosed, id)
		case was == frozen:
			return nil
		}
		if _, err = tx.Exec(ctx, `UPDATE tg_accounts SET frozen = $2, version = $3 WHERE id = $1`, id, frozen, version); err != nil {
			return err
		}
		kind := ledger.ChangeUnfreeze
		if frozen {
			kind = ledger.ChangeFreeze
		}
		return insertChange(ctx, tx, ledger.Change{Kind: kind, Account: id, TimeNanos: time.Now().UnixNano()})
	})
}

// CloseAccount closes an account for good: frozen, its keys revoked.
// closed is false when it was closed already.
func (a *Authority) CloseAccount(id, actor string) (info ledger.AccountInfo, closed bool, err error) {
	err = a.versioned(func(ctx context.Context, tx pgx.Tx, version int64) error {
		tag, err := tx.Exec(ctx, `UPDATE tg_accounts SET closed_at = tg_now(), frozen = true, version = $2
			WHERE id = $1 AND closed_at = 0`, id, version)
		if err != nil {
			return err
		}
		if closed = tag.RowsAffected() == 1; closed {
			_, err = tx.Exec(ctx, `UPDATE tg_keys SET revoked = true, version = $2 WHERE account = $1 AND NOT revoked`, id, version)
		}
		if closed && err == nil {
			err = insertChange(ctx, tx, ledger.Change{Kind: ledger.ChangeClose, Account: id, TimeNanos: time.Now().UnixNano()})
		}
		return err
	})
	if err != nil {
		return info, false, err
	}
	info, err = a.Account(id)
	// The leases' credit comes back as the nodes see the closure: counted
	// as available here, the forfeit (admin.CloseAccount) takes it too, and
	// the calls still in flight settle into debt, rather than the leased
	// credit reappearing on the closed account afterwards.
	info.Available += info.Held
	return info, closed, err
}

// Account returns an account with its balance as the whole cluster sees
// it: unexpired leases count as held.
func (a *Authority) Account(id string) (ledger.AccountInfo, error) {
	ctx, cancel := a.ctx()
	defer cancel()
	var info ledger.AccountInfo
	err := pgx.BeginTxFunc(ctx, a.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		b, err := readBook(ctx, tx, id, "") // one snapshot: credit, debt and leases agree
		if err != nil {
			return err
		}
		info = b.info()
		return tx.QueryRow(ctx, `SELECT email, multiplier, rpm, tpm, concurrency, created_at FROM tg_accounts WHERE id = $1`, id).
			Scan(&info.Email, &info.Multiplier, &info.Limits.RPM, &info.Limits.TPM, &info.Limits.Concurrency, &info.CreatedAtNanos)
	})
	return info, err
}

// info is the book as the ledger's AccountInfo (without the settings).
func (b *book) info() ledger.AccountInfo {
	info := ledger.AccountInfo{ID: b.id, Frozen: b.frozen, ClosedAtNanos: b.closedAt, Available: b.available(), Held: b.held,
		Charged: b.charged, TopUps: b.toppedUp, Adjusted: b.adjusted, Expired: b.expired, ExpiresAtNanos: b.expiresAt()}
	for _, c := range b.credits {
		if c.remaining > 0 && c.expiresAt > b.now {
			exp := c.expiresAt
			if exp == never {
				exp = 0
			}
			info.Credits = append(info.Credits, ledger.CreditInfo{Credit: c.kind, ExpiresAtNanos: exp, Remaining: c.remaining})
		}
	}
	return info
}

// Accounts calls fn with every account, as Account reads it, in ID order
// (three queries in one snapshot, whatever the number of accounts).
func (a *Authority) Accounts(fn func(ledger.AccountInfo)) error {
	ctx, cancel := a.ctx()
	defer cancel()
	return pgx.BeginTxFunc(ctx, a.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var now int64
		if err := tx.QueryRow(ctx, `SELECT tg_now()`).Scan(&now); err != nil {
			return err
		}
		held := map[string]int64{}
		rows, err := tx.Query(ctx, `SELECT account, sum(greatest(granted - reported, 0))::bigint FROM tg_leases
			WHERE expires_at > $1 GROUP BY account`, now)
		if err != nil {
			return err
		}
		var id string
		var amount int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &amount}, func() error { held[id] = amount; return nil }); err != nil {
			return err
		}
		credits := map[string][]credit{}
		rows, err = tx.Query(ctx, `SELECT account, credit, expires_at, remaining FROM tg_credits WHERE remaining > 0 AND expires_at > $1
			ORDER BY account, expires_at`, now)
		if err != nil {
			return err
		}
		var c credit
		var kind int16
		if _, err := pgx.ForEachRow(rows, []any{&id, &kind, &c.expiresAt, &c.remaining}, func() error {
			c.kind = ledger.Credit(kind)
			credits[id] = append(credits[id], c)
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT id, email, multiplier, rpm, tpm, concurrency, created_at, frozen, closed_at, debt,
			topped_up, adjusted, expired, charged FROM tg_accounts ORDER BY id`)
		if err != nil {
			return err
		}
		var info ledger.AccountInfo
		b := book{now: now}
		_, err = pgx.ForEachRow(rows, []any{&info.ID, &info.Email, &info.Multiplier, &info.Limits.RPM, &info.Limits.TPM,
			&info.Limits.Concurrency, &info.CreatedAtNanos, &b.frozen, &b.closedAt, &b.debt, &b.toppedUp, &b.adjusted, &b.expired, &b.charged}, func() error {
			b.id, b.credits, b.held = info.ID, credits[info.ID], held[info.ID]
			full := b.info()
			full.Email, full.Multiplier, full.Limits, full.CreatedAtNanos = info.Email, info.Multiplier, info.Limits, info.CreatedAtNanos
			fn(full)
			return nil
		})
		return err
	})
}
