package access

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/wal"
)

// TestUsers: an invitation sets a password once and only before it
// expires; users and sessions survive a restart and are stored without
// secrets in clear; an email belongs to one subject per realm; signing
// out everywhere ends every session of the user.
func TestUsers(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(dir, wal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := OpenUsers(l)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.Invite(RealmCustomer, "acme", "not an email", "admin"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a bad email: %v", err)
	}
	token, inv, err := u.Invite(RealmCustomer, "acme", "Ada@acme.test", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.Invite(RealmCustomer, "other", "ada@acme.test", "admin"); err != nil {
		t.Fatalf("an invitation before the user exists is allowed: %v", err)
	}
	hash := mustHash(t, "correct horse battery")
	user, err := u.Accept(token, hash)
	if err != nil || user.Subject != "acme" || user.Email != "Ada@acme.test" {
		t.Fatalf("accept: %+v %v", user, err)
	}
	if _, err := u.Accept(token, hash); !errors.Is(err, ErrUnknown) {
		t.Fatalf("an invitation used twice: %v", err)
	}
	if _, _, err := u.Invite(RealmCustomer, "other", "ada@ACME.test", "admin"); !errors.Is(err, ErrExists) {
		t.Fatalf("another account's user invited: %v", err)
	}
	if _, ok, _ := u.UserByEmail(RealmOperator, "ada@acme.test"); ok {
		t.Fatal("a customer user found in the operators' realm")
	}
	s1, _ := u.StartSession(user.ID, hash)
	s2, _ := u.StartSession(user.ID, hash)

	// Expired invitations and sessions.
	late, _, _ := u.Invite(RealmCustomer, "acme", "bob@acme.test", "admin")
	u.now = func() time.Time { return time.Now().Add(InvitationLifetime + time.Minute) }
	if _, err := u.Accept(late, hash); !errors.Is(err, ErrUnknown) {
		t.Fatalf("an expired invitation: %v", err)
	}
	if _, ok, _ := u.SessionUser(s1); ok {
		t.Fatal("an expired session is in force")
	}
	u.now = time.Now

	// A restart keeps users and sessions; nothing secret is stored in clear.
	l.Close()
	if l, err = wal.Open(dir, wal.Config{}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if u, err = OpenUsers(l); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := u.SessionUser(s2); !ok || got.ID != user.ID || !verifies(t, got.Password, "correct horse battery") {
		t.Fatalf("after a restart the session gives %+v %v", got, ok)
	}
	l.States("console/", func(name string, v []byte) error {
		for _, secret := range []string{token, s1, s2, "correct horse battery"} {
			if strings.Contains(string(v), secret) || strings.Contains(name, secret) {
				t.Errorf("%s stores a secret in clear", name)
			}
		}
		return nil
	})
	if err := u.EndSessions(user.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := u.SessionUser(s2); ok {
		t.Fatal("a session survived signing out everywhere")
	}
	if len(u.Invitations(RealmCustomer, "acme")) != 2 || inv.ExpiresAt == 0 {
		t.Fatalf("invitations: %+v", u.Invitations(RealmCustomer, "acme"))
	}
}

// TestPasswords: argon2id hashes verify only their password, carry their
// parameters, and malformed hashes verify nothing.
func TestPasswords(t *testing.T) {
	h := mustHash(t, "a long enough password")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if !verifies(t, h, "a long enough password") || verifies(t, h, "a long enough passwore") {
		t.Fatal("verification is wrong")
	}
	if mustHash(t, "a long enough password") == h {
		t.Fatal("no salt")
	}
	for _, bad := range []string{"", "$argon2id$", "$argon2i$v=19$m=19456,t=2,p=1$AAAA$AAAA", "$argon2id$v=19$m=99999999,t=2,p=1$AAAA$AAAA",
		"$argon2id$v=19$m=19456,t=2,p=0$AAAA$AAAA", "$argon2id$v=19$m=19456,t=2,p=1$!!$AAAA"} {
		if verifies(t, bad, "x") {
			t.Errorf("%q verified", bad)
		}
	}
	if CheckPassword("short") == nil || CheckPassword(strings.Repeat("x", 257)) == nil || CheckPassword("long enough!") != nil {
		t.Fatal("password length rules are wrong")
	}
}

func mustHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func verifies(t *testing.T, hash, pw string) bool {
	t.Helper()
	ok, err := VerifyPassword(hash, pw)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestSessionsBounded: a user keeps at most SessionsPerUser sessions (the
// oldest go), and a new password ends every session of the user.
func TestSessionsBounded(t *testing.T) {
	l, err := wal.Open(t.TempDir(), wal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u, err := OpenUsers(l)
	if err != nil {
		t.Fatal(err)
	}
	token, _, _ := u.Invite(RealmCustomer, "acme", "ada@acme.test", "admin")
	user, err := u.Accept(token, "hash-1")
	if err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for range SessionsPerUser + 5 {
		s, err := u.StartSession(user.ID, "hash-1")
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, s)
	}
	if _, ok, _ := u.SessionUser(tokens[0]); ok {
		t.Fatal("the oldest session survived the cap")
	}
	if _, ok, _ := u.SessionUser(tokens[len(tokens)-1]); !ok {
		t.Fatal("the newest session is gone")
	}
	if n := len(u.sessionsOf(user.ID)); n != SessionsPerUser {
		t.Fatalf("%d sessions kept", n)
	}
	reset, _, _ := u.Invite(RealmCustomer, "acme", "ada@acme.test", "admin")
	if _, err := u.Accept(reset, "hash-2"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := u.SessionUser(tokens[len(tokens)-1]); ok {
		t.Fatal("a session survived a password reset")
	}
	if _, err := u.StartSession(user.ID, "hash-1"); !errors.Is(err, ErrPasswordChanged) {
		t.Fatalf("a sign-in checked against the old password made a session: %v", err)
	}
}
