package pgusers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tollgate/tollgate/internal/pgtest"
	"github.com/tollgate/tollgate/proxy/access"
)

// twoNodes starts PostgreSQL and returns two stores on it, each on its own
// pool, as two nodes of a cluster have.
func twoNodes(t *testing.T) (*Users, *Users, *pgxpool.Pool) {
	t.Helper()
	pg := pgtest.StartPrimary(t)
	var stores [2]*Users
	var pool *pgxpool.Pool
	for i := range stores {
		cfg, err := pgxpool.ParseConfig(pg.DSN())
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.Password = pgtest.Password
		if pool, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		if stores[i], err = Open(context.Background(), pool); err != nil {
			t.Fatal(err)
		}
	}
	return stores[0], stores[1], pool
}

// TestUsersAcrossNodes: what one node does with users, invitations and
// sessions holds on the other: an invitation is used once, an email
// belongs to one account, a session started on one node is in force on the
// other and ends there, a new password ends every session, and no secret
// is stored in clear.
func TestUsersAcrossNodes(t *testing.T) {
	a, b, pool := twoNodes(t)
	if _, _, err := a.Invite(access.RealmCustomer, "acme", "not an email", "admin"); !errors.Is(err, access.ErrInvalid) {
		t.Fatalf("a bad email: %v", err)
	}
	token, inv, err := a.Invite(access.RealmCustomer, "acme", "Ada@acme.test", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := b.Invitation(token); !ok || got != inv {
		t.Fatalf("the other node sees the invitation as %+v %v, want %+v", got, ok, inv)
	}
	user, err := b.Accept(token, "hash-1")
	if err != nil || user.Subject != "acme" || user.Email != "Ada@acme.test" || user.Password != "hash-1" {
		t.Fatalf("accept: %+v %v", user, err)
	}
	if _, err := a.Accept(token, "hash-x"); !errors.Is(err, access.ErrUnknown) {
		t.Fatalf("an invitation used twice: %v", err)
	}
	if _, _, err := a.Invite(access.RealmCustomer, "other", "ada@ACME.test", "admin"); !errors.Is(err, access.ErrExists) {
		t.Fatalf("another account's user invited: %v", err)
	}
	if _, ok, _ := a.UserByEmail(access.RealmOperator, "ada@acme.test"); ok {
		t.Fatal("a customer user found in the operators' realm")
	}
	if got, ok, _ := a.UserByEmail(access.RealmCustomer, "ADA@acme.test"); !ok || got != user {
		t.Fatalf("by email: %+v %v", got, ok)
	}

	s1, err := a.StartSession(user.ID, "hash-1")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := b.SessionUser(s1); !ok || got.ID != user.ID {
		t.Fatalf("a session started on one node is not in force on the other: %+v %v", got, ok)
	}
	if err := b.EndSession(s1); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.SessionUser(s1); ok {
		t.Fatal("a session signed out on one node is in force on the other")
	}
	s2, _ := a.StartSession(user.ID, "hash-1")
	reset, _, _ := b.Invite(access.RealmCustomer, "acme", "ada@acme.test", "admin")
	if _, err := a.Accept(reset, "hash-2"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.SessionUser(s2); ok {
		t.Fatal("a session survived a password reset")
	}
	if _, err := b.StartSession(user.ID, "hash-1"); !errors.Is(err, access.ErrPasswordChanged) {
		t.Fatalf("a sign-in checked against the old password made a session: %v", err)
	}
	if n := len(b.Invitations(access.RealmCustomer, "acme")); n != 2 {
		t.Fatalf("%d invitations listed", n)
	}
	if us := b.Users(access.RealmCustomer, "acme"); len(us) != 1 || us[0].ID != user.ID {
		t.Fatalf("users: %+v", us)
	}

	late, _, _ := a.Invite(access.RealmCustomer, "acme", "bob@acme.test", "admin")
	b.now = func() time.Time { return time.Now().Add(access.InvitationLifetime + time.Minute) }
	if _, err := b.Accept(late, "hash"); !errors.Is(err, access.ErrUnknown) {
		t.Fatalf("an expired invitation: %v", err)
	}
	s3, _ := a.StartSession(user.ID, "hash-2")
	if _, ok, _ := b.SessionUser(s3); ok {
		t.Fatal("an expired session is in force")
	}
	if n, err := b.DropExpired(context.Background(), b.now()); err != nil || n != 4 {
		t.Fatalf("dropped %d expired sessions and invitations (%v), want 1 + 3", n, err)
	}

	var clear int
	for _, secret := range []string{token, reset, s1, s2, s3} {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM tg_sessions WHERE strpos(encode(hash, 'escape'), $1) > 0) +
			(SELECT count(*) FROM tg_invitations WHERE strpos(encode(hash, 'escape'), $1) > 0)`, secret).Scan(&n); err != nil {
			t.Fatal(err)
		}
		clear += n
	}
	if clear != 0 {
		t.Fatal("a token is stored in clear")
	}
}

// TestUsersRulesHoldAtOnce: the rules hold when two nodes act at the same
// instant: one invitation accepted by many clients on both nodes sets one
// password; two invitations of one email for two accounts, accepted at
// once, make one user; a user signing in on both nodes at once keeps at
// most access.SessionsPerUser sessions; two invitations of one email to
// one account accepted at once both succeed, on one user.
func TestUsersRulesHoldAtOnce(t *testing.T) {
	a, b, pool := twoNodes(t)
	nodes := []*Users{a, b}
	token, _, _ := a.Invite(access.RealmCustomer, "acme", "ada@acme.test", "admin")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var accepted []string
	for i := range 16 {
		wg.Go(func() {
			hash := fmt.Sprintf("hash-%d", i)
			if _, err := nodes[i%2].Accept(token, hash); err == nil {
				mu.Lock()
				accepted = append(accepted, hash)
				mu.Unlock()
			} else if !errors.Is(err, access.ErrUnknown) {
				t.Errorf("accept: %v", err)
			}
		})
	}
	wg.Wait()
	user, _, _ := b.UserByEmail(access.RealmCustomer, "ada@acme.test")
	if len(accepted) != 1 || user.Password != accepted[0] {
		t.Fatalf("one invitation accepted %d times (%v); the user's password is %q", len(accepted), accepted, user.Password)
	}

	for round := range 5 {
		email := fmt.Sprintf("eve%d@evil.test", round)
		t1, _, _ := a.Invite(access.RealmCustomer, "acme", email, "admin")
		t2, _, _ := b.Invite(access.RealmCustomer, "other", email, "admin")
		var errs [2]error
		wg.Go(func() { _, errs[0] = a.Accept(t1, "h") })
		wg.Go(func() { _, errs[1] = b.Accept(t2, "h") })
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs[:]...), access.ErrExists) {
			t.Fatalf("one email accepted for two accounts at once: %v", errs)
		}
	}

	// Two invitations of one email to one account, accepted at once: both
	// set the password of one user (as in single-node mode).
	for round := range 5 {
		email := fmt.Sprintf("bob%d@acme.test", round)
		t1, _, _ := a.Invite(access.RealmCustomer, "acme", email, "admin")
		t2, _, _ := b.Invite(access.RealmCustomer, "acme", email, "admin")
		var bobs [2]access.User
		var errs [2]error
		wg.Go(func() { bobs[0], errs[0] = a.Accept(t1, "h1") })
		wg.Go(func() { bobs[1], errs[1] = b.Accept(t2, "h2") })
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || bobs[0].ID != bobs[1].ID {
			t.Fatalf("two invitations of one account's user accepted at once: %v, users %s and %s", errs, bobs[0].ID, bobs[1].ID)
		}
	}

	for i := range 2 * (access.SessionsPerUser + 10) {
		wg.Go(func() {
			if _, err := nodes[i%2].StartSession(user.ID, user.Password); err != nil {
				t.Errorf("sign-in: %v", err)
			}
		})
	}
	wg.Wait()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM tg_sessions WHERE user_id = $1`, user.ID).Scan(&n); err != nil || n != access.SessionsPerUser {
		t.Fatalf("%d sessions kept (%v), want %d", n, err, access.SessionsPerUser)
	}
}

// TestAttemptsAcrossNodes: failed sign-ins count for the cluster: a user's
// tries spread over two nodes meet one limit; a refund and a success give
// tries back; a window that ended starts again.
func TestAttemptsAcrossNodes(t *testing.T) {
	a, b, _ := twoNodes(t)
	onA, onB := a.Attempts(access.RealmCustomer, 5, time.Minute), b.Attempts(access.RealmCustomer, 5, time.Minute)
	other := b.Attempts(access.RealmOperator, 5, time.Minute)
	var tickets []access.Ticket
	for i := range 5 {
		n := []*Attempts{onA, onB}[i%2]
		tk, ok, err := n.Take("ada")
		if !ok || err != nil {
			t.Fatalf("try %d refused: %v", i+1, err)
		}
		tickets = append(tickets, tk)
	}
	for _, n := range []*Attempts{onA, onB} {
		if _, ok, err := n.Take("ada"); ok || err != nil {
			t.Fatalf("a sixth try across the nodes was counted (%v)", err)
		}
	}
	if _, ok, _ := other.Take("ada"); !ok {
		t.Fatal("the operators' console shares the customers' counts")
	}
	onA.Refund(tickets[0])
	if _, ok, _ := onB.Take("ada"); !ok {
		t.Fatal("a refunded try was not given back")
	}
	onB.Forget("ada")
	if _, ok, _ := onA.Take("ada"); !ok {
		t.Fatal("a success did not clear the count")
	}
	for range 4 {
		onA.Take("ada")
	}
	a.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, ok, _ := onA.Take("ada"); !ok {
		t.Fatal("a window that ended did not start again")
	}
}
