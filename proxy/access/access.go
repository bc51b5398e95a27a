// Package access decides who may operate the gateway through the admin
// API: operators (people, each with a role) and their API tokens, beside
// the admin token the process starts with; and who may sign in to the
// consoles (Users: console users, their invitations and sessions, with
// passwords hashed by argon2id). It keeps them durably in the
// WAL's state area (wal.SetState), apart from the ledger: they are not
// money, so they are neither replayed nor checkpointed, and a change is
// durable once it returns.
//
// Roles, as the contract fixes them: admin may do everything; finance
// posts top-ups and adjustments and reads everything (statements
// included); support reads everything and accepts or rejects disputes
// (which posts the refund). Token secrets are shown once; only their
// SHA-256 is kept, compared in constant time through the map lookup by
// hash.
package access

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/proxy/ids"
)

// Role is what an operator may do.
type Role string

// The roles.
const (
	RoleAdmin   Role = "admin"
	RoleFinance Role = "finance"
	RoleSupport Role = "support"
)

// Right is one kind of admin request.
type Right uint8

// The rights a route needs.
const (
	Read     Right = iota // any GET: accounts, calls, statements, disputes, the catalogue
	Money                 // top-ups and adjustments
	Disputes              // accepting and rejecting disputes
	Manage                // everything else: accounts, keys, freezing, closing, operators, backups, profiles
)

// Allows reports whether r may make requests needing right.
func (r Role) Allows(right Right) bool {
	switch r {
	case RoleAdmin:
		return true
	case RoleFinance:
		return right == Read || right == Money
	case RoleSupport:
		return right == Read || right == Disputes
	}
	return false
}

// Operator is a person who operates the gateway.
type Operator struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Role      Role   `json:"role"`
	Disabled  bool   `json:"disabled"`
	CreatedAt int64  `json:"created_at"`
}

// Token is an operator's API token (its secret is never kept).
type Token struct {
	ID         string   `json:"id"`
	OperatorID string   `json:"operator_id"`
	Hash       [32]byte `json:"hash"`
	Hint       string   `json:"hint"`
	CreatedAt  int64    `json:"created_at"`
	Revoked    bool     `json:"revoked"`
}

// Errors, each answered with its status by the admin API.
var (
	ErrUnknown  = errors.New("access: unknown operator or token") // 404
	ErrExists   = errors.New("access: operator exists")           // 409
	ErrInvalid  = errors.New("access: invalid")                   // 400
	errTooLarge = errors.New("access: too many operators")
)

// maxOperators and maxTokens bound what an admin can make.
const (
	maxOperators = 10_000
	maxTokens    = 100_000
)

var operatorID = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Store is the durable set of operators and tokens. Safe for concurrent use.
type Store struct {
	load func(prefix string, fn func(name string, value []byte) error) error
	save func(name string, value []byte) error
	// create writes a state only when it is absent (false: it was not);
	// change rewrites a state from its stored value, locked meanwhile.
	// Both nil: save (one process owns the store).
	create func(name string, value []byte) (bool, error)
	change func(name string, fn func(old []byte) ([]byte, error)) error
	mu     sync.RWMutex
	ops    map[string]*Operator
	toks   map[string]*Token
	hash   map[[32]byte]*Token
}

// Open loads a Store through load (wal.Log.States) and keeps it with save
// (wal.Log.SetState).
func Open(load func(prefix string, fn func(name string, value []byte) error) error, save func(name string, value []byte) error) (*Store, error) {
	s := &Store{load: load, save: save}
	return s, s.Reload()
}

// Share tells the store that other processes write it too (cluster
// mode): operators are then created with create, which writes a state
// only when it is absent, so two processes creating one operator ID at
// the same instant do not both succeed; and changed with change, which
// rewrites the stored value under a lock, so a change made through one
// process is not undone by another's older copy.
func (s *Store) Share(create func(name string, value []byte) (bool, error), change func(name string, fn func(old []byte) ([]byte, error)) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.create, s.change = create, change
}

// Reload reads the operators and tokens again: in cluster mode, another
// node may have changed them (its change is then announced to this one).
func (s *Store) Reload() error {
	ops, toks, hash := map[string]*Operator{}, map[string]*Token{}, map[[32]byte]*Token{}
	err := s.load("op/", func(_ string, v []byte) error {
		var o Operator
		if err := sonic.Unmarshal(v, &o); err != nil {
			return fmt.Errorf("access: cannot read an operator: %w", err)
		}
		ops[o.ID] = &o
		return nil
	})
	if err == nil {
		err = s.load("optoken/", func(_ string, v []byte) error {
			var t Token
			if err := sonic.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("access: cannot read a token: %w", err)
			}
			toks[t.ID], hash[t.Hash] = &t, &t
			return nil
		})
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ops, s.toks, s.hash = ops, toks, hash
	s.mu.Unlock()
	return nil
}

// CreateOperator adds an operator (created now).
func (s *Store) CreateOperator(o Operator) (Operator, error) {
	if !operatorID.MatchString(o.ID) || len(o.Email) > 320 || !validRole(o.Role) {
		return o, fmt.Errorf("%w: an operator needs an ID of 1 to 64 letters, digits, '_', '.', '-', and a role admin, finance or support", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ops[o.ID] != nil {
		return o, fmt.Errorf("%w: %q", ErrExists, o.ID)
	}
	if len(s.ops) >= maxOperators {
		return o, errTooLarge
	}
	o.CreatedAt, o.Disabled = time.Now().UnixNano(), false
	if err := s.createOperator(&o); err != nil {
		return o, err
	}
	s.ops[o.ID] = &o
	return o, nil
}

// createOperator writes a new operator; in a shared store, only if no
// other process made one with its ID meanwhile.
func (s *Store) createOperator(o *Operator) error {
	if s.create == nil {
		return s.putOperator(o)
	}
	b, err := sonic.Marshal(o)
	if err != nil {
		return err
	}
	created, err := s.create("op/"+o.ID, b)
	if err == nil && !created {
		err = fmt.Errorf("%w: %q", ErrExists, o.ID)
	}
	return err
}

// UpdateOperator changes an operator's role or disables it (a disabled
// operator's tokens stop working).
func (s *Store) UpdateOperator(id string, role *Role, disabled *bool) (Operator, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.ops[id]
	if cur == nil {
		return Operator{}, fmt.Errorf("%w: operator %q", ErrUnknown, id)
	}
	if role != nil && !validRole(*role) {
		return *cur, fmt.Errorf("%w: role must be admin, finance or support", ErrInvalid)
	}
	patch := func(o *Operator) {
		if role != nil {
			o.Role = *role
		}
		if disabled != nil {
			o.Disabled = *disabled
		}
	}
	o := *cur
	var err error
	if s.change == nil {
		patch(&o)
		err = s.putOperator(&o)
	} else {
		err = s.change("op/"+id, func(old []byte) ([]byte, error) {
			if err := sonic.Unmarshal(old, &o); err != nil {
				return nil, err
			}
			patch(&o)
			return sonic.Marshal(&o)
		})
	}
	if err != nil {
		return *cur, err
	}
	s.ops[id] = &o
	return o, nil
}

// Operator returns the operator id.
func (s *Store) Operator(id string) (Operator, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o := s.ops[id]
	if o == nil {
		return Operator{}, false
	}
	return *o, true
}

// Operators lists the operators by ID.
func (s *Store) Operators() []Operator {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Operator, 0, len(s.ops))
	for _, o := range s.ops {
		out = append(out, *o)
	}
	slices.SortFunc(out, func(a, b Operator) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// MintToken makes an API token for operator id and returns its secret,
// shown this once.
func (s *Store) MintToken(id string) (string, Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ops[id] == nil {
		return "", Token{}, fmt.Errorf("%w: operator %q", ErrUnknown, id)
	}
	if len(s.toks) >= maxTokens {
		return "", Token{}, errTooLarge
	}
	secret := "tgo-" + ids.RandomBase62(43)
	t := Token{ID: "optok_" + ids.RandomBase62(20), OperatorID: id, Hash: ids.HashKey([]byte(secret)),
		Hint: "tgo-…" + secret[len(secret)-4:], CreatedAt: time.Now().UnixNano()}
	if err := s.putToken(&t); err != nil {
		return "", t, err
	}
	s.toks[t.ID], s.hash[t.Hash] = &t, &t
	return secret, t, nil
}

// RevokeToken stops a token working.
func (s *Store) RevokeToken(tokenID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.toks[tokenID]
	if cur == nil {
		return fmt.Errorf("%w: token %q", ErrUnknown, tokenID)
	}
	t := *cur
	t.Revoked = true
	if err := s.putToken(&t); err != nil {
		return err
	}
	s.toks[t.ID], s.hash[t.Hash] = &t, &t
	return nil
}

// Tokens lists operator id's tokens (revoked ones included).
func (s *Store) Tokens(id string) []Token {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Token
	for _, t := range s.toks {
		if t.OperatorID == id {
			out = append(out, *t)
		}
	}
	slices.SortFunc(out, func(a, b Token) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Authenticate returns the operator a token secret belongs to, if the token
// and its operator are in force.
func (s *Store) Authenticate(secret []byte) (Operator, bool) {
	h := ids.HashKey(secret)
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.hash[h]
	if t == nil || t.Revoked {
		return Operator{}, false
	}
	o := s.ops[t.OperatorID]
	if o == nil || o.Disabled {
		return Operator{}, false
	}
	return *o, true
}

func (s *Store) putOperator(o *Operator) error {
	b, err := sonic.Marshal(o)
	if err != nil {
		return err
	}
	return s.save("op/"+o.ID, b)
}

func (s *Store) putToken(t *Token) error {
	b, err := sonic.Marshal(t)
	if err != nil {
		return err
	}
	return s.save("optoken/"+t.ID, b)
}

func validRole(r Role) bool { return r == RoleAdmin || r == RoleFinance || r == RoleSupport }
