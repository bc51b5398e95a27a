package pgusers

import (
	"encoding/hex"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tollgate/tollgate/proxy/access"
)

// Attempts counts a console's failed sign-ins in PostgreSQL
// (access.Attempts), so that the limit per user holds for the cluster, not
// for each node: a guesser spreading tries over the nodes gets no more.
// One row per key and window; counting is one upsert that refuses a key
// at its limit.
type Attempts struct {
	users  *Users
	realm  access.Realm
	max    int
	window time.Duration
}

// Attempts returns the sign-in counts of realm's console: max failures
// per key in each window.
func (s *Users) Attempts(realm access.Realm, max int, window time.Duration) *Attempts {
	return &Attempts{users: s, realm: realm, max: max, window: window}
}

var _ access.Attempts = (*Attempts)(nil)

// name is key's row: the realm, and the key (a digest, any bytes) in hex.
func (a *Attempts) name(key string) string {
	return string(a.realm) + ":" + hex.EncodeToString([]byte(key))
}

// Take counts an attempt of key unless it has its limit in a window that
// has not ended; a window that ended starts again.
func (a *Attempts) Take(key string) (access.Ticket, bool, error) {
	ctx, cancel := a.users.ctx()
	defer cancel()
	now := a.users.now()
	var until int64
	err := a.users.pool.QueryRow(ctx, `INSERT INTO tg_signin_attempts (key, until, count) VALUES ($1, $2, 1)
		ON CONFLICT (key) DO UPDATE SET
		  until = CASE WHEN tg_signin_attempts.until <= $3 THEN EXCLUDED.until ELSE tg_signin_attempts.until END,
		  count = CASE WHEN tg_signin_attempts.until <= $3 THEN 1 ELSE tg_signin_attempts.count + 1 END
		WHERE tg_signin_attempts.until <= $3 OR tg_signin_attempts.count < $4
		RETURNING until`, a.name(key), now.Add(a.window).UnixNano(), now.UnixNano(), a.max).Scan(&until)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return access.Ticket{}, false, nil
	case err != nil:
		return access.Ticket{}, false, err
	}
	return access.Ticket{Key: key, Until: time.Unix(0, until)}, true, nil
}

// Refund gives an attempt back, in its window only.
func (a *Attempts) Refund(t access.Ticket) {
	if t.Key == "" {
		return
	}
	ctx, cancel := a.users.ctx()
	defer cancel()
	_, _ = a.users.pool.Exec(ctx, `UPDATE tg_signin_attempts SET count = count - 1 WHERE key = $1 AND until = $2 AND count > 0`,
		a.name(t.Key), t.Until.UnixNano()) // a lost refund counts one try too many: the safe side
}

// Forget clears key's attempts.
func (a *Attempts) Forget(key string) {
	ctx, cancel := a.users.ctx()
	defer cancel()
	_, _ = a.users.pool.Exec(ctx, `DELETE FROM tg_signin_attempts WHERE key = $1`, a.name(key)) // a lost reset leaves the count to expire
}
