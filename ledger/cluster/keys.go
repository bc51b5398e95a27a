package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tollgate/tollgate/ledger"
)

// CreateKey stores a key (its hash, never its secret) for an open account.
func (a *Authority) CreateKey(k ledger.Key) (*ledger.Key, error) {
	return a.CreateKeyWithin(k, ledger.KeyQuota{})
}

// CreateKeyWithin creates a key as CreateKey does, unless the account is
// at q's bounds (ledger.ErrKeyQuota): counted inside versioned's lock,
// which every write of keys takes, so nodes creating keys for one account
// at once cannot pass it together.
func (a *Authority) CreateKeyWithin(k ledger.Key, q ledger.KeyQuota) (*ledger.Key, error) {
	if err := k.Check(); err != nil {
		return nil, err
	}
	err := a.versioned(func(ctx context.Context, tx pgx.Tx, version int64) error {
		var closedAt, now int64
		err := tx.QueryRow(ctx, `SELECT closed_at, tg_now() FROM tg_accounts WHERE id = $1 FOR SHARE`, k.AccountID).Scan(&closedAt, &now)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: %q", ledger.ErrUnknownAccount, k.AccountID)
		case err != nil:
			return err
		case closedAt != 0:
			return fmt.Errorf("%w: %q takes no new keys", ledger.ErrAccountClosed, k.AccountID)
		}
		if q != (ledger.KeyQuota{}) {
			keys, err := keysWhere(ctx, tx, "account = $1", k.AccountID)
			if err != nil {
				return err
			}
			if err := q.Check(keys, now); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO tg_keys (id, account, hash, name, hint, rpm, tpm, concurrency, spend_limit,
			spend_period, expires_at, models, created_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, tg_now(), $13)`,
			k.ID, k.AccountID, k.Hash[:], k.Name, k.Hint, k.Limits.RPM, k.Limits.TPM, k.Limits.Concurrency,
			k.SpendLimit, int64(k.SpendPeriod), k.ExpiresAtNanos, nonNil(k.Models), version)
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" {
			return fmt.Errorf("%w: %q", ledger.ErrKeyExists, k.ID)
		}
		if err != nil {
			return err
		}
		return insertChange(ctx, tx, ledger.Change{Kind: ledger.ChangeKeyCreate, Account: k.AccountID, TimeNanos: time.Now().UnixNano(), KeyID: k.ID, KeyName: k.Name})
	})
	if err != nil {
		return nil, err
	}
	return a.key(k.ID)
}

// UpdateKey applies p to a key.
func (a *Authority) UpdateKey(id string, p ledger.KeyPatch) (*ledger.Key, error) {
	err := a.versioned(func(ctx context.Context, tx pgx.Tx, version int64) error {
		k, err := keyWhere(ctx, tx, "id = $1 FOR UPDATE", id)
		if err != nil {
			return err
		}
		p.ApplyTo(k)
		if err := k.Check(); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE tg_keys SET name = $2, rpm = $3, tpm = $4, concurrency = $5, spend_limit = $6,
			spend_period = $7, expires_at = $8, models = $9, version = $10 WHERE id = $1`,
			id, k.Name, k.Limits.RPM, k.Limits.TPM, k.Limits.Concurrency, k.SpendLimit, int64(k.SpendPeriod),
			k.ExpiresAtNanos, nonNil(k.Models), version)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a.key(id)
}

// RevokeKey revokes a key; every node refuses it once its mirror has the
// change (at once through LISTEN/NOTIFY, at worst after one poll).
func (a *Authority) RevokeKey(id string) error {
	return a.versioned(func(ctx context.Context, tx pgx.Tx, version int64) error {
		var account string
		var was bool
		err := tx.QueryRow(ctx, `SELECT account, revoked FROM tg_keys WHERE id = $1 FOR UPDATE`, id).Scan(&account, &was)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: %q", ledger.ErrUnknownKey, id)
		case err != nil || was:
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE tg_keys SET revoked = true, version = $2 WHERE id = $1`, id, version); err != nil {
			return err
		}
		return insertChange(ctx, tx, ledger.Change{Kind: ledger.ChangeKeyRevoke, Account: account, TimeNanos: time.Now().UnixNano(), KeyID: id})
	})
}

// Key returns a key, nil when there is none (or the database cannot say).
func (a *Authority) Key(id string) *ledger.Key {
	k, _ := a.key(id)
	return k
}

func (a *Authority) key(id string) (*ledger.Key, error) {
	ctx, cancel := a.ctx()
	defer cancel()
	return keyWhere(ctx, a.pool, "id = $1", id)
}

// Keys returns an account's keys, oldest first (nil when the database
// cannot say).
func (a *Authority) Keys(account string) []*ledger.Key {
	ctx, cancel := a.ctx()
	defer cancel()
	keys, _ := keysWhere(ctx, a.pool, "account = $1 ORDER BY created_at, id", account)
	return keys
}

// rowsQuerier is a transaction, a connection or the pool.
type rowsQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const keyColumns = `id, account, hash, name, hint, rpm, tpm, concurrency, spend_limit, spend_period, expires_at, models,
	revoked, created_at`

func keyWhere(ctx context.Context, q rowsQuerier, where string, args ...any) (*ledger.Key, error) {
	keys, err := keysWhere(ctx, q, where, args...)
	switch {
	case err != nil:
		return nil, err
	case len(keys) == 0:
		return nil, fmt.Errorf("%w: %v", ledger.ErrUnknownKey, args[0])
	}
	return keys[0], nil
}

func keysWhere(ctx context.Context, q rowsQuerier, where string, args ...any) ([]*ledger.Key, error) {
	rows, err := q.Query(ctx, `SELECT `+keyColumns+` FROM tg_keys WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*ledger.Key, error) { return scanKey(r) })
}

// scanKey reads a row of keyColumns, then into extra what follows them.
func scanKey(r pgx.Row, extra ...any) (*ledger.Key, error) {
	var k ledger.Key
	var hash []byte
	var period int64
	dest := append([]any{&k.ID, &k.AccountID, &hash, &k.Name, &k.Hint, &k.Limits.RPM, &k.Limits.TPM, &k.Limits.Concurrency,
		&k.SpendLimit, &period, &k.ExpiresAtNanos, &k.Models, &k.Revoked, &k.CreatedAtNanos}, extra...)
	err := r.Scan(dest...)
	copy(k.Hash[:], hash)
	k.SpendPeriod = time.Duration(period)
	if len(k.Models) == 0 {
		k.Models = nil
	}
	return &k, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
