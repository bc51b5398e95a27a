package access

import (
	"testing"

	"github.com/tollgate/tollgate/wal"
)

// TestStore: operators and tokens are kept across a restart; a token works
// until it is revoked or its operator disabled; roles allow what the
// contract says.
func TestStore(t *testing.T) {
	dir := t.TempDir()
	open := func() (*Store, *wal.Log) {
		t.Helper()
		l, err := wal.Open(dir, wal.Config{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(l.States, l.SetState)
		if err != nil {
			t.Fatal(err)
		}
		return s, l
	}
	s, l := open()
	if _, err := s.CreateOperator(Operator{ID: "alice", Role: RoleFinance}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateOperator(Operator{ID: "alice", Role: RoleSupport}); err == nil {
		t.Fatalf("an operator was created twice")
	}
	for _, bad := range []Operator{{ID: "bob", Role: "root"}, {ID: "", Role: RoleAdmin}, {ID: "a b", Role: RoleAdmin}} {
		if _, err := s.CreateOperator(bad); err == nil {
			t.Fatalf("operator %+v accepted", bad)
		}
	}
	secret, tok, err := s.MintToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()

	s, l = open()
	defer l.Close()
	if o, ok := s.Authenticate([]byte(secret)); !ok || o.ID != "alice" || o.Role != RoleFinance {
		t.Fatalf("the token does not authenticate after a restart: %+v %v", o, ok)
	}
	if _, ok := s.Authenticate([]byte(secret + "x")); ok {
		t.Fatalf("a wrong secret authenticated")
	}
	disabled := true
	if _, err := s.UpdateOperator("alice", nil, &disabled); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate([]byte(secret)); ok {
		t.Fatalf("a disabled operator's token authenticated")
	}
	disabled = false
	s.UpdateOperator("alice", nil, &disabled)
	if err := s.RevokeToken(tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate([]byte(secret)); ok {
		t.Fatalf("a revoked token authenticated")
	}
	for _, c := range []struct {
		role  Role
		right Right
		want  bool
	}{{RoleAdmin, Manage, true}, {RoleFinance, Money, true}, {RoleFinance, Disputes, false}, {RoleFinance, Manage, false},
		{RoleSupport, Read, true}, {RoleSupport, Disputes, true}, {RoleSupport, Money, false}} {
		if got := c.role.Allows(c.right); got != c.want {
			t.Fatalf("%s allows %d: %v; want %v", c.role, c.right, got, c.want)
		}
	}
}
