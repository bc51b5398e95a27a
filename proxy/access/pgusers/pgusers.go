// Package pgusers keeps the consoles' users, invitations and sessions in
// PostgreSQL, so that in cluster mode every node signs in the same people:
// an invitation accepted on one node is used on all, a session started on
// one is in force on all, and signing out on one ends it everywhere.
//
// Every rule is a row condition checked in the write itself, never in one
// node's memory: an invitation is taken by a conditional UPDATE (two nodes
// accepting it at once: one wins), an email is unique per realm by an index
// (two invitations for two subjects accepted at once: one user), and a
// sign-in locks its user's row while it trims the user's sessions to the
// cap. There is no cache: a console request reads its session from
// PostgreSQL (one indexed query), so a sign-out or a password reset holds on
// every node at once.
package pgusers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/ids"
)

// schema is the store's tables. Times are Unix nanoseconds by the nodes'
// clocks, as in single-node mode.
const schema = `
CREATE TABLE IF NOT EXISTS tg_users (
  id         text PRIMARY KEY,
  realm      text NOT NULL,
  subject    text NOT NULL,
  email      text NOT NULL,
  password   text NOT NULL DEFAULT '',
  created_at bigint NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS tg_users_email ON tg_users (realm, lower(email));
CREATE INDEX IF NOT EXISTS tg_users_subject ON tg_users (realm, subject);
CREATE TABLE IF NOT EXISTS tg_invitations (
  id          text PRIMARY KEY,
  realm       text NOT NULL,
  subject     text NOT NULL,
  email       text NOT NULL,
  hash        bytea NOT NULL UNIQUE,
  created_by  text NOT NULL,
  created_at  bigint NOT NULL,
  expires_at  bigint NOT NULL,
  accepted_at bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tg_invitations_subject ON tg_invitations (realm, subject);
CREATE TABLE IF NOT EXISTS tg_sessions (
  hash       bytea PRIMARY KEY,
  user_id    text NOT NULL REFERENCES tg_users (id),
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS tg_sessions_user ON tg_sessions (user_id, created_at);
CREATE INDEX IF NOT EXISTS tg_sessions_expiry ON tg_sessions (expires_at);
CREATE TABLE IF NOT EXISTS tg_signin_attempts (
  key   text PRIMARY KEY,
  until bigint NOT NULL,
  count integer NOT NULL
);
`

// opTimeout bounds one operation, so a console page never hangs on an
// unreachable database.
const opTimeout = 5 * time.Second

// Users is access.UserStore on PostgreSQL. Safe for concurrent use, by any
// number of nodes.
type Users struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

var _ access.UserStore = (*Users)(nil)

// schemaLock serialises the schema's creation between nodes starting at
// once (CREATE ... IF NOT EXISTS alone races in PostgreSQL's catalogue).
const schemaLock = 0x7467_0003

// Open makes the store's tables when missing and returns the store.
func Open(ctx context.Context, pool *pgxpool.Pool) (*Users, error) {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLock); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pgusers: creating the schema: %w", err)
	}
	return &Users{pool: pool, now: time.Now}, nil
}

func (s *Users) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

const (
	userColumns       = `id, realm, subject, email, password, created_at`
	invitationColumns = `id, realm, subject, email, hash, created_by, created_at, expires_at, accepted_at`
)

func scanUser(row pgx.Row) (access.User, error) {
	var u access.User
	err := row.Scan(&u.ID, &u.Realm, &u.Subject, &u.Email, &u.Password, &u.CreatedAt)
	return u, err
}

func scanInvitation(row pgx.Row) (access.Invitation, error) {
	var i access.Invitation
	var hash []byte
	err := row.Scan(&i.ID, &i.Realm, &i.Subject, &i.Email, &hash, &i.CreatedBy, &i.CreatedAt, &i.ExpiresAt, &i.AcceptedAt)
	copy(i.Hash[:], hash)
	return i, err
}

// Invite makes an invitation; an email that is a user of another subject
// of the realm is refused (and checked again when the invitation is
// accepted, since both may happen at once on two nodes).
func (s *Users) Invite(realm access.Realm, subject, email, actor string) (string, access.Invitation, error) {
	token, inv, err := access.NewInvitation(realm, subject, email, actor, s.now())
	if err != nil {
		return "", inv, err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var other bool
		var count int64
		err := tx.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM tg_users WHERE realm = $1 AND lower(email) = lower($2) AND subject <> $3),
			(SELECT count(*) FROM tg_invitations)`, realm, email, subject).Scan(&other, &count)
		switch {
		case err != nil:
			return err
		case other:
			return access.ErrOtherSubject(realm, email)
		case count >= access.MaxInvitations:
			return access.ErrTooMany
		}
		_, err = tx.Exec(ctx, `INSERT INTO tg_invitations (`+invitationColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)`,
			inv.ID, inv.Realm, inv.Subject, inv.Email, inv.Hash[:], inv.CreatedBy, inv.CreatedAt, inv.ExpiresAt)
		return err
	})
	if err != nil {
		return "", access.Invitation{}, err
	}
	return token, inv, nil
}

// Invitation returns the open invitation of token.
func (s *Users) Invitation(token string) (access.Invitation, bool) {
	ctx, cancel := s.ctx()
	defer cancel()
	h := ids.HashKey([]byte(token))
	inv, err := scanInvitation(s.pool.QueryRow(ctx, `SELECT `+invitationColumns+` FROM tg_invitations
		WHERE hash = $1 AND accepted_at = 0 AND expires_at > $2`, h[:], s.now().UnixNano()))
	return inv, err == nil
}

// Accept takes the invitation (a conditional update: of two nodes
// accepting it at once, the later finds it used) and sets its user's
// password in the same transaction, creating the user on first use; the
// user's sessions end.
func (s *Users) Accept(token, passwordHash string) (access.User, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	h := ids.HashKey([]byte(token))
	now := s.now().UnixNano()
	var u access.User
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		inv, err := scanInvitation(tx.QueryRow(ctx, `UPDATE tg_invitations SET accepted_at = $2
			WHERE hash = $1 AND accepted_at = 0 AND expires_at > $2 RETURNING `+invitationColumns, h[:], now))
		if errors.Is(err, pgx.ErrNoRows) {
			return access.ErrUsedInvitation
		}
		if err != nil {
			return err
		}
		if u, err = s.acceptedUser(ctx, tx, inv, passwordHash, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM tg_sessions WHERE user_id = $1`, u.ID)
		return err
	})
	return u, err
}

// acceptedUser sets the password of inv's user, made when it does not
// exist; a user of the email under another subject is refused, also one
// made at the same moment by another node (the insert meets the email's
// index and updates that user only when it is of the same subject).
func (s *Users) acceptedUser(ctx context.Context, tx pgx.Tx, inv access.Invitation, passwordHash string, now int64) (access.User, error) {
	u, err := scanUser(tx.QueryRow(ctx, `UPDATE tg_users SET password = $3 WHERE realm = $1 AND lower(email) = lower($2)
		RETURNING `+userColumns, inv.Realm, inv.Email, passwordHash))
	switch {
	case err == nil && u.Subject != inv.Subject:
		return u, access.ErrOtherSubject(inv.Realm, inv.Email)
	case !errors.Is(err, pgx.ErrNoRows):
		return u, err
	}
	var count int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM tg_users`).Scan(&count); err != nil {
		return u, err
	}
	if count >= access.MaxUsers {
		return u, access.ErrTooMany
	}
	u = access.NewUser(inv, now)
	u, err = scanUser(tx.QueryRow(ctx, `INSERT INTO tg_users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (realm, lower(email)) DO UPDATE SET password = EXCLUDED.password WHERE tg_users.subject = EXCLUDED.subject
		RETURNING `+userColumns, u.ID, u.Realm, u.Subject, u.Email, passwordHash, u.CreatedAt))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, access.ErrOtherSubject(inv.Realm, inv.Email)
	}
	return u, err
}

// UserByEmail returns the realm's user with email (any case).
func (s *Users) UserByEmail(realm access.Realm, email string) (access.User, bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	return found(scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM tg_users WHERE realm = $1 AND lower(email) = lower($2)`, realm, email)))
}

// found is a lookup's answer: no row is not found, any other error the
// store's.
func found(u access.User, err error) (access.User, bool, error) {
	if errors.Is(err, pgx.ErrNoRows) {
		return u, false, nil
	}
	return u, err == nil, err
}

// Users lists the realm's users of subject, by email.
func (s *Users) Users(realm access.Realm, subject string) []access.User {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, _ := s.pool.Query(ctx, `SELECT `+userColumns+` FROM tg_users WHERE realm = $1 AND subject = $2 ORDER BY email`, realm, subject)
	out, _ := pgx.CollectRows(rows, func(r pgx.CollectableRow) (access.User, error) { return scanUser(r) })
	return out
}

// Invitations lists the realm's invitations for subject, newest first.
func (s *Users) Invitations(realm access.Realm, subject string) []access.Invitation {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, _ := s.pool.Query(ctx, `SELECT `+invitationColumns+` FROM tg_invitations WHERE realm = $1 AND subject = $2
		ORDER BY created_at DESC`, realm, subject)
	out, _ := pgx.CollectRows(rows, func(r pgx.CollectableRow) (access.Invitation, error) { return scanInvitation(r) })
	return out
}

// StartSession signs the user in. The user's row is locked while its
// sessions are trimmed to the cap (the oldest and the expired go), so two
// nodes signing one user in at once never leave more than the cap.
func (s *Users) StartSession(userID, password string) (string, error) {
	now := s.now()
	token, x := access.NewSession(userID, now)
	ctx, cancel := s.ctx()
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var current string
		err := tx.QueryRow(ctx, `SELECT password FROM tg_users WHERE id = $1 FOR UPDATE`, userID).Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && current != password {
			return access.ErrPasswordChanged
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tg_sessions WHERE user_id = $1 AND (expires_at <= $2 OR hash IN
			(SELECT hash FROM tg_sessions WHERE user_id = $1 ORDER BY created_at DESC OFFSET $3))`,
			userID, now.UnixNano(), access.SessionsPerUser-1); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO tg_sessions (hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
			x.Hash[:], x.UserID, x.CreatedAt, x.ExpiresAt)
		return err
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// SessionUser returns the user of a session token in force.
func (s *Users) SessionUser(token string) (access.User, bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	h := ids.HashKey([]byte(token))
	return found(scanUser(s.pool.QueryRow(ctx, `SELECT `+prefixed("u.", userColumns)+` FROM tg_sessions s JOIN tg_users u ON u.id = s.user_id
		WHERE s.hash = $1 AND s.expires_at > $2`, h[:], s.now().UnixNano())))
}

// EndSession signs a session out.
func (s *Users) EndSession(token string) error {
	ctx, cancel := s.ctx()
	defer cancel()
	h := ids.HashKey([]byte(token))
	_, err := s.pool.Exec(ctx, `DELETE FROM tg_sessions WHERE hash = $1`, h[:])
	return err
}

// EndSessions signs user out everywhere.
func (s *Users) EndSessions(userID string) error {
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.pool.Exec(ctx, `DELETE FROM tg_sessions WHERE user_id = $1`, userID)
	return err
}

// DropExpired deletes the expired sessions and sign-in counts, and the
// invitations that expired before cutoff (kept a while so operators see them lapse);
// any node may run it at any time.
func (s *Users) DropExpired(ctx context.Context, invitationsBefore time.Time) (int64, error) {
	now := s.now().UnixNano()
	a, err := s.pool.Exec(ctx, `DELETE FROM tg_sessions WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, err
	}
	b, err := s.pool.Exec(ctx, `DELETE FROM tg_invitations WHERE expires_at <= $1`, invitationsBefore.UnixNano())
	if err != nil {
		return 0, err
	}
	c, err := s.pool.Exec(ctx, `DELETE FROM tg_signin_attempts WHERE until <= $1`, now)
	return a.RowsAffected() + b.RowsAffected() + c.RowsAffected(), err
}

// prefixed qualifies each of a column list's names with p.
func prefixed(p, columns string) string {
	return p + strings.ReplaceAll(columns, ", ", ", "+p)
}
