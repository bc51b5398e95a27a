package cluster

import (
	"cmp"
	"context"
	"errors"
	"log"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tollgate/tollgate/ledger"
)

// Mirror copies accounts and keys from PostgreSQL into a node's ledger, so
// that authenticating a key and checking an account's settings stay local
// (no database round trip on the hot path). Changes arrive through
// LISTEN/NOTIFY at once and, should a notification be lost, by a poll.
type Mirror struct {
	pool   *pgxpool.Pool
	ledger *ledger.Ledger
	logger *log.Logger
	// poll is the interval of the fallback poll.
	poll time.Duration

	mu sync.Mutex // one Sync at a time
	// version is the highest change version applied.
	version int64

	// StatesChanged, when set before Run, is called when another node
	// changed the shared states (States), and every ten polls in case an
	// announcement was lost: access.Store.Reload, for the operators.
	StatesChanged func()
	polls         int
}

// NewMirror returns a mirror of the cluster's accounts and keys into l.
func NewMirror(pool *pgxpool.Pool, l *ledger.Ledger, logger *log.Logger) *Mirror {
	return &Mirror{pool: pool, ledger: l, logger: logger, poll: time.Second}
}

// accountRow is an account's settings as the mirror reads them.
type accountRow struct {
	spec     ledger.AccountSpec
	frozen   bool
	closedAt int64
	version  int64
}

type versionedKey struct {
	key     *ledger.Key
	version int64
}

// Sync applies every change committed since the last Sync. It reads
// accounts and keys in one snapshot: since versions are handed out in
// commit order (versionLock), every change it did not see has a higher
// version than every change it saw.
func (m *Mirror) Sync(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var accounts []accountRow
	var keys []versionedKey
	err := pgx.BeginTxFunc(ctx, m.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, email, multiplier, rpm, tpm, concurrency, frozen, closed_at, version
			FROM tg_accounts WHERE version > $1 ORDER BY version`, m.version)
		if err != nil {
			return err
		}
		accounts, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (accountRow, error) {
			var a accountRow
			s := &a.spec
			err := r.Scan(&s.ID, &s.Email, &s.Multiplier, &s.Limits.RPM, &s.Limits.TPM, &s.Limits.Concurrency, &a.frozen, &a.closedAt, &a.version)
			return a, err
		})
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT `+keyColumns+`, version FROM tg_keys WHERE version > $1 ORDER BY version`, m.version)
		if err != nil {
			return err
		}
		keys, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (versionedKey, error) {
			var k versionedKey
			var err error
			k.key, err = scanKey(r, &k.version)
			return k, err
		})
		return err
	})
	if err != nil {
		return err
	}
	// Accounts and keys in one version order, so that a failure stops the
	// mirror's version below every change not applied yet.
	changes := make([]versionedChange, 0, len(accounts)+len(keys))
	for _, a := range accounts {
		changes = append(changes, versionedChange{a.version, a.spec.ID, func() error { return m.applyAccount(a) }})
	}
	for _, k := range keys {
		changes = append(changes, versionedChange{k.version, k.key.ID, func() error { return m.applyKey(k.key) }})
	}
	slices.SortFunc(changes, func(a, b versionedChange) int { return cmp.Compare(a.version, b.version) })
	for _, c := range changes {
		if err := m.skipRefused(c.id, c.apply()); err != nil {
			return err
		}
		m.version = c.version
	}
	return nil
}

type versionedChange struct {
	version int64
	id      string
	apply   func() error
}

// skipRefused logs and passes over a row the ledger refuses for what it is
// (written to PostgreSQL by something other than Tollgate, say), so that
// one such row does not hold back every change after it; any other error
// (the WAL's) is returned and the change retried at the next sync.
func (m *Mirror) skipRefused(id string, err error) error {
	for _, refused := range []error{ledger.ErrInvalid, ledger.ErrUnknownAccount, ledger.ErrAccountClosed, ledger.ErrKeyExists} {
		if errors.Is(err, refused) {
			m.logger.Printf("cluster: mirror: skipping %q, which this node's ledger refuses: %v", id, err)
			return nil
		}
	}
	return err
}

// applyAccount makes the ledger's copy of an account match a.
func (m *Mirror) applyAccount(a accountRow) error {
	l, id := m.ledger, a.spec.ID
	cur, err := l.Account(id)
	if errors.Is(err, ledger.ErrUnknownAccount) {
		cur, err = l.CreateAccount(a.spec)
	}
	if err != nil {
		return err
	}
	if cur.Email != a.spec.Email || cur.Multiplier != a.spec.Multiplier || cur.Limits != a.spec.Limits {
		s := a.spec
		if _, err := l.UpdateAccount(id, ledger.AccountPatch{Email: &s.Email, Multiplier: &s.Multiplier, Limits: &s.Limits}); err != nil {
			return err
		}
	}
	if a.closedAt != 0 && cur.ClosedAtNanos == 0 {
		_, _, err := l.CloseAccount(id, "cluster")
		return err
	}
	if a.frozen != cur.Frozen && cur.ClosedAtNanos == 0 {
		return l.SetFrozen(id, a.frozen, "cluster")
	}
	return nil
}

// applyKey makes the ledger's copy of a key match k.
func (m *Mirror) applyKey(k *ledger.Key) error {
	l := m.ledger
	cur := l.Key(k.ID)
	if cur == nil {
		if k.Revoked {
			return nil // never usable here: nothing to copy
		}
		var err error
		if cur, err = l.CreateKey(*k); err != nil {
			return err
		}
	}
	if cur.Name != k.Name || cur.Limits != k.Limits || cur.SpendLimit != k.SpendLimit || cur.SpendPeriod != k.SpendPeriod ||
		cur.ExpiresAtNanos != k.ExpiresAtNanos || !slices.Equal(cur.Models, k.Models) {
		_, err := l.UpdateKey(k.ID, ledger.KeyPatch{Name: &k.Name, Limits: &k.Limits, SpendLimit: &k.SpendLimit,
			SpendPeriod: &k.SpendPeriod, ExpiresAtNanos: &k.ExpiresAtNanos, Models: &k.Models})
		if err != nil {
			return err
		}
	}
	if k.Revoked && !cur.Revoked {
		return l.RevokeKey(k.ID)
	}
	return nil
}

// Run keeps the mirror current until ctx ends: it listens for change
// notifications on a connection of its own and syncs on each, and polls
// as well; a lost connection is dialled again after a second.
func (m *Mirror) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := m.listen(ctx); err != nil && ctx.Err() == nil {
			m.logger.Printf("cluster: mirror: %v (polling until the listener is back)", err)
			m.syncLogged(ctx)
			m.polled()
			sleep(ctx, m.poll)
		}
	}
}

func (m *Mirror) listen(ctx context.Context) error {
	pooled, err := m.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The listening connection leaves the pool for good: its session
	// holds the LISTEN, and a broken one must not go back.
	conn := pooled.Hijack()
	defer conn.Close(context.Background()) //nolint:errcheck // closing is all that is left to do
	if _, err := conn.Exec(ctx, "LISTEN "+changeChannel+"; LISTEN "+statesChannel); err != nil {
		return err
	}
	for {
		m.syncLogged(ctx)
		wait, cancel := context.WithTimeout(ctx, m.poll)
		note, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil && note.Channel == statesChannel:
			m.statesChanged()
		case errors.Is(err, context.DeadlineExceeded):
			m.polled()
		case err != nil:
			return err
		}
	}
}

// polled counts a poll, and reloads the states every tenth.
func (m *Mirror) polled() {
	if m.polls++; m.polls%10 == 0 {
		m.statesChanged()
	}
}

func (m *Mirror) statesChanged() {
	if m.StatesChanged != nil {
		m.StatesChanged()
	}
}

func (m *Mirror) syncLogged(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := m.Sync(sctx); err != nil && ctx.Err() == nil {
		m.logger.Printf("cluster: mirror: %v", err)
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
