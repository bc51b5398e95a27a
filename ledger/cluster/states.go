package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// States is a store of named values in PostgreSQL, shared by the nodes:
// what a node keeps in its WAL's state area in single-node mode, such as
// the operators and their API tokens (access.Store). A write is announced
// on statesChannel; the mirror (Mirror.StatesChanged) has each node reload.
type States struct {
	pool *pgxpool.Pool
}

// NewStates returns the shared states on pool.
func NewStates(pool *pgxpool.Pool) *States { return &States{pool: pool} }

// Load calls fn with every state whose name starts with prefix, in name
// order.
func (s *States) Load(prefix string, fn func(name string, value []byte) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT name, value FROM tg_states WHERE starts_with(name, $1) ORDER BY name`, prefix)
	if err != nil {
		return err
	}
	var name string
	var value []byte
	_, err = pgx.ForEachRow(rows, []any{&name, &value}, func() error { return fn(name, value) })
	return err
}

// Create stores value under name only when name is absent (false: it
// was not), and announces it.
func (s *States) Create(name string, value []byte) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var created bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO tg_states (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, value)
		if created = err == nil && tag.RowsAffected() == 1; created {
			_, err = tx.Exec(ctx, `SELECT pg_notify($1, '')`, statesChannel)
		}
		return err
	})
	return created, err
}

// Change rewrites name's value with fn (given the stored value, the row
// locked meanwhile), and announces it; ErrNoState when name has none.
func (s *States) Change(name string, fn func(old []byte) ([]byte, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var old []byte
		err := tx.QueryRow(ctx, `SELECT value FROM tg_states WHERE name = $1 FOR UPDATE`, name).Scan(&old)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %q", ErrNoState, name)
		}
		if err != nil {
			return err
		}
		value, err := fn(old)
		if err == nil {
			_, err = tx.Exec(ctx, `UPDATE tg_states SET value = $2 WHERE name = $1`, name, value)
		}
		if err == nil {
			_, err = tx.Exec(ctx, `SELECT pg_notify($1, '')`, statesChannel)
		}
		return err
	})
}

// ErrNoState: a shared state that does not exist.
var ErrNoState = errors.New("cluster: no such state")

// Save stores value under name (nil deletes it) and announces the change.
func (s *States) Save(name string, value []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if value == nil {
			_, err = tx.Exec(ctx, `DELETE FROM tg_states WHERE name = $1`, name)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO tg_states (name, value) VALUES ($1, $2)
				ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`, name, value)
		}
		if err == nil {
			_, err = tx.Exec(ctx, `SELECT pg_notify($1, '')`, statesChannel)
		}
		return err
	})
}
