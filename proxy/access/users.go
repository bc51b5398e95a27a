package access

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/wal"
)

// Realm is the console a user signs in to.
type Realm string

// The realms: a customer user belongs to an account, an operator user is
// one of the Store's operators.
const (
	RealmCustomer Realm = "customer"
	RealmOperator Realm = "operator"
)

// User is a person who signs in to a console.
type User struct {
	ID    string `json:"id"`
	Realm Realm  `json:"realm"`
	// Subject is the account (customers) or operator (operators) the user
	// acts for.
	Subject string `json:"subject"`
	Email   string `json:"email"`
	// Password is the argon2id hash in PHC form ("" before the invitation
	// was accepted).
	Password  string `json:"password"`
	CreatedAt int64  `json:"created_at"`
}

// Invitation lets its holder set a password for a user (a new one, or an
// existing one's new password). Only its token's digest is kept.
type Invitation struct {
	ID         string   `json:"id"`
	Realm      Realm    `json:"realm"`
	Subject    string   `json:"subject"`
	Email      string   `json:"email"`
	Hash       [32]byte `json:"hash"`
	CreatedBy  string   `json:"created_by"`
	CreatedAt  int64    `json:"created_at"`
	ExpiresAt  int64    `json:"expires_at"`
	AcceptedAt int64    `json:"accepted_at,omitempty"`
}

// Session is a signed-in user's session, kept by its token's digest.
type Session struct {
	Hash      [32]byte `json:"hash"`
	UserID    string   `json:"user_id"`
	CreatedAt int64    `json:"created_at"`
	ExpiresAt int64    `json:"expires_at"`
}

// Lifetimes of what the store hands out.
const (
	InvitationLifetime = 7 * 24 * time.Hour
	SessionLifetime    = 7 * 24 * time.Hour
)

// Bounds on what operators and users can make.
const (
	MaxUsers       = 1_000_000
	MaxInvitations = 1_000_000
	maxSessions    = 1_000_000
	// SessionsPerUser bounds one user's sessions (browsers, devices).
	SessionsPerUser = 20
)

// ErrTooMany: a store is full.
var ErrTooMany = errors.New("access: too many users, invitations or sessions")

// UserStore keeps the consoles' users, invitations and sessions: Users in
// a node's WAL, pgusers.Users in PostgreSQL for cluster mode. The rules are
// the same: an invitation is used once and only before it expires, an email
// belongs to one subject per realm, a user keeps at most SessionsPerUser
// sessions, and a new password ends the user's sessions. The sign-in's
// lookups (UserByEmail, SessionUser) tell a store that cannot be read (an
// error) from one without that user; the listings answer nothing then.
type UserStore interface {
	// Invite makes an invitation for email to the realm's subject and
	// returns its token, shown this once.
	Invite(realm Realm, subject, email, actor string) (string, Invitation, error)
	// Invitation returns the open invitation of token.
	Invitation(token string) (Invitation, bool)
	// Accept uses invitation token to set its user's password (hashed by
	// the caller with HashPassword), creating the user on first use.
	Accept(token, passwordHash string) (User, error)
	UserByEmail(realm Realm, email string) (User, bool, error)
	// Users lists the realm's users of subject, by email.
	Users(realm Realm, subject string) []User
	// Invitations lists the realm's invitations for subject, newest first.
	Invitations(realm Realm, subject string) []Invitation
	// StartSession signs user in and returns the session's token, unless
	// the user's password is no longer password (ErrPasswordChanged).
	StartSession(userID, password string) (string, error)
	// SessionUser returns the user of a session token in force.
	SessionUser(token string) (User, bool, error)
	EndSession(token string) error
	// EndSessions signs user out everywhere.
	EndSessions(userID string) error
}

// NewInvitation checks email and makes an invitation of realm's subject,
// made now, and its token (only the token's digest is kept).
func NewInvitation(realm Realm, subject, email, actor string, now time.Time) (string, Invitation, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > 254 || subject == "" {
		return "", Invitation{}, fmt.Errorf("%w: email must be a plain address such as ada@example.com", ErrInvalid)
	}
	token := "tgi-" + ids.RandomBase62(43)
	return token, Invitation{ID: "inv_" + ids.RandomBase62(20), Realm: realm, Subject: subject, Email: email, Hash: ids.HashKey([]byte(token)),
		CreatedBy: actor, CreatedAt: now.UnixNano(), ExpiresAt: now.Add(InvitationLifetime).UnixNano()}, nil
}

// NewUser is the user an invitation makes when first accepted at now.
func NewUser(inv Invitation, now int64) User {
	return User{ID: "usr_" + ids.RandomBase62(20), Realm: inv.Realm, Subject: inv.Subject, Email: inv.Email, CreatedAt: now}
}

// NewSession makes a session of userID starting now, and its token (only
// the token's digest is kept).
func NewSession(userID string, now time.Time) (string, Session) {
	token := "tgs-" + ids.RandomBase62(43)
	return token, Session{Hash: ids.HashKey([]byte(token)), UserID: userID, CreatedAt: now.UnixNano(), ExpiresAt: now.Add(SessionLifetime).UnixNano()}
}

// ErrOtherSubject is the error for email already being a user of another
// subject of realm.
func ErrOtherSubject(realm Realm, email string) error {
	return fmt.Errorf("%w: %s is a user of another %s", ErrExists, email, subjectNoun(realm))
}

// ErrUsedInvitation is the error for an invitation that cannot be accepted.
var ErrUsedInvitation = fmt.Errorf("%w: the invitation is unknown, used or expired", ErrUnknown)

// Users keeps the consoles' users, invitations and sessions. Safe for
// concurrent use.
type Users struct {
	store StateStore
	now   func() time.Time

	mu       sync.RWMutex
	users    map[string]*User
	byEmail  map[Realm]map[string]*User // lower-cased email
	invites  map[string]*Invitation
	inviteBy map[[32]byte]*Invitation
	sessions map[[32]byte]*Session
	// byUser indexes sessions by user, so one user's are found without
	// reading everyone's.
	byUser map[string]map[[32]byte]*Session
}

// State-area names.
const (
	userPrefix    = "console/user/"
	invitePrefix  = "console/invite/"
	sessionPrefix = "console/session/"
)

// StateStore is where Users are kept: the WAL's state area.
type StateStore interface {
	States(prefix string, fn func(name string, value []byte) error) error
	SetStates(states ...wal.State) error
}

// OpenUsers loads Users from st and keeps them there; expired sessions are
// dropped as they load.
func OpenUsers(st StateStore) (*Users, error) {
	s := &Users{store: st, now: time.Now, users: map[string]*User{}, byEmail: map[Realm]map[string]*User{RealmCustomer: {}, RealmOperator: {}},
		invites: map[string]*Invitation{}, inviteBy: map[[32]byte]*Invitation{}, sessions: map[[32]byte]*Session{},
		byUser: map[string]map[[32]byte]*Session{}}
	err := errors.Join(
		loadEach(st.States, userPrefix, func(u *User) { s.users[u.ID], s.byEmail[u.Realm][strings.ToLower(u.Email)] = u, u }),
		loadEach(st.States, invitePrefix, func(i *Invitation) { s.invites[i.ID], s.inviteBy[i.Hash] = i, i }),
		loadEach(st.States, sessionPrefix, s.addSession),
	)
	if err != nil {
		return nil, err
	}
	s.dropExpiredSessions()
	return s, nil
}

func loadEach[T any](load func(string, func(string, []byte) error) error, prefix string, keep func(*T)) error {
	return load(prefix, func(name string, v []byte) error {
		x := new(T)
		if err := sonic.Unmarshal(v, x); err != nil {
			return fmt.Errorf("access: cannot read %s: %w", name, err)
		}
		keep(x)
		return nil
	})
}

// Invite makes an invitation for email to the realm's subject and returns
// its token, shown this once. An email belongs to one user per realm: an
// invitation for a user that exists under another subject is refused.
func (s *Users) Invite(realm Realm, subject, email, actor string) (string, Invitation, error) {
	token, inv, err := NewInvitation(realm, subject, email, actor, s.now())
	if err != nil {
		return "", inv, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.byEmail[realm][strings.ToLower(email)]; u != nil && u.Subject != subject {
		return "", Invitation{}, ErrOtherSubject(realm, email)
	}
	if len(s.invites) >= MaxInvitations {
		return "", Invitation{}, ErrTooMany
	}
	if err := s.store.SetStates(stateOf(invitePrefix+inv.ID, &inv)); err != nil {
		return "", inv, err
	}
	s.invites[inv.ID], s.inviteBy[inv.Hash] = &inv, &inv
	return token, inv, nil
}

// Invitation returns the open invitation of token.
func (s *Users) Invitation(token string) (Invitation, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	inv := s.inviteBy[ids.HashKey([]byte(token))]
	if inv == nil || inv.AcceptedAt != 0 || s.now().UnixNano() >= inv.ExpiresAt {
		return Invitation{}, false
	}
	return *inv, true
}

// Accept uses invitation token to set its user's password (hashed by the
// caller with HashPassword), creating the user on first use.
func (s *Users) Accept(token, passwordHash string) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := s.inviteBy[ids.HashKey([]byte(token))]
	now := s.now().UnixNano()
	if inv == nil || inv.AcceptedAt != 0 || now >= inv.ExpiresAt {
		return User{}, ErrUsedInvitation
	}
	u := s.byEmail[inv.Realm][strings.ToLower(inv.Email)]
	switch {
	case u == nil && len(s.users) >= MaxUsers:
		return User{}, ErrTooMany
	case u == nil:
		nu := NewUser(*inv, now)
		u = &nu
	case u.Subject != inv.Subject:
		return User{}, ErrOtherSubject(inv.Realm, inv.Email)
	}
	nu, ni := *u, *inv
	nu.Password, ni.AcceptedAt = passwordHash, now
	// A new password ends the user's sessions: one stolen before the reset
	// does not survive it.
	ended := s.sessionsOf(nu.ID)
	puts := []wal.State{stateOf(userPrefix+nu.ID, &nu), stateOf(invitePrefix+ni.ID, &ni)}
	for _, h := range ended {
		puts = append(puts, wal.State{Name: sessionName(h)})
	}
	if err := s.store.SetStates(puts...); err != nil {
		return User{}, err
	}
	s.users[nu.ID], s.byEmail[nu.Realm][strings.ToLower(nu.Email)] = &nu, &nu
	s.invites[ni.ID], s.inviteBy[ni.Hash] = &ni, &ni
	for _, h := range ended {
		s.dropSession(h)
	}
	return nu, nil
}

// sessionsOf lists the sessions of user userID, oldest first.
func (s *Users) sessionsOf(userID string) [][32]byte {
	mine := s.byUser[userID]
	out := make([]*Session, 0, len(mine))
	for _, x := range mine {
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b *Session) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) })
	hashes := make([][32]byte, len(out))
	for i, x := range out {
		hashes[i] = x.Hash
	}
	return hashes
}

func (s *Users) addSession(x *Session) {
	s.sessions[x.Hash] = x
	if s.byUser[x.UserID] == nil {
		s.byUser[x.UserID] = map[[32]byte]*Session{}
	}
	s.byUser[x.UserID][x.Hash] = x
}

func (s *Users) dropSession(h [32]byte) {
	x := s.sessions[h]
	if x == nil {
		return
	}
	delete(s.sessions, h)
	if mine := s.byUser[x.UserID]; mine != nil {
		delete(mine, h)
		if len(mine) == 0 {
			delete(s.byUser, x.UserID)
		}
	}
}

// UserByEmail returns the realm's user with email (any case).
func (s *Users) UserByEmail(realm Realm, email string) (User, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.byEmail[realm][strings.ToLower(email)]
	if u == nil {
		return User{}, false, nil
	}
	return *u, true, nil
}

// Users lists the realm's users of subject, by email.
func (s *Users) Users(realm Realm, subject string) []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []User
	for _, u := range s.users {
		if u.Realm == realm && u.Subject == subject {
			out = append(out, *u)
		}
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Email, b.Email) })
	return out
}

// Invitations lists the realm's invitations for subject, newest first.
func (s *Users) Invitations(realm Realm, subject string) []Invitation {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Invitation
	for _, i := range s.invites {
		if i.Realm == realm && i.Subject == subject {
			out = append(out, *i)
		}
	}
	slices.SortFunc(out, func(a, b Invitation) int { return cmp.Compare(b.CreatedAt, a.CreatedAt) })
	return out
}

// ErrPasswordChanged: the password a sign-in checked was replaced while it
// was being checked.
var ErrPasswordChanged = errors.New("access: the password changed during the sign-in")

// StartSession signs user in and returns the session's token. password
// is the hash the sign-in verified: if the user's password changed since
// (a reset that ended every session), no session is made.
func (s *Users) StartSession(userID, password string) (string, error) {
	token, x := NewSession(userID, s.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[userID]; u == nil || u.Password != password {
		return "", ErrPasswordChanged
	}
	// A user keeps at most SessionsPerUser: the oldest go, so no one user
	// can fill the table by signing in again and again.
	mine := s.sessionsOf(userID)
	evicted := mine[:max(0, len(mine)-SessionsPerUser+1)]
	if len(s.sessions)-len(evicted) >= maxSessions {
		s.dropExpiredSessionsLocked()
		if len(s.sessions)-len(evicted) >= maxSessions {
			return "", ErrTooMany
		}
	}
	puts := []wal.State{stateOf(sessionName(x.Hash), &x)}
	for _, h := range evicted {
		puts = append(puts, wal.State{Name: sessionName(h)})
	}
	if err := s.store.SetStates(puts...); err != nil {
		return "", err
	}
	for _, h := range evicted {
		s.dropSession(h)
	}
	s.addSession(&x)
	return token, nil
}

// SessionUser returns the user of a session token in force.
func (s *Users) SessionUser(token string) (User, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	x := s.sessions[ids.HashKey([]byte(token))]
	if x == nil || s.now().UnixNano() >= x.ExpiresAt {
		return User{}, false, nil
	}
	u := s.users[x.UserID]
	if u == nil {
		return User{}, false, nil
	}
	return *u, true, nil
}

// EndSession signs a session out.
func (s *Users) EndSession(token string) error {
	h := ids.HashKey([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[h] == nil {
		return nil
	}
	if err := s.store.SetStates(wal.State{Name: sessionName(h)}); err != nil {
		return err
	}
	s.dropSession(h)
	return nil
}

// EndSessions signs user out everywhere.
func (s *Users) EndSessions(userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dels []wal.State
	mine := s.sessionsOf(userID)
	for _, h := range mine {
		dels = append(dels, wal.State{Name: sessionName(h)})
	}
	if err := s.store.SetStates(dels...); err != nil {
		return err
	}
	for _, h := range mine {
		s.dropSession(h)
	}
	return nil
}

func (s *Users) dropExpiredSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpiredSessionsLocked()
}

// dropExpiredSessionsLocked forgets expired sessions; a failed delete
// leaves the record to be dropped at the next load.
func (s *Users) dropExpiredSessionsLocked() {
	now := s.now().UnixNano()
	var expired [][32]byte
	var dels []wal.State
	for h, x := range s.sessions {
		if now >= x.ExpiresAt {
			expired, dels = append(expired, h), append(dels, wal.State{Name: sessionName(h)})
		}
	}
	if s.store.SetStates(dels...) != nil {
		return
	}
	for _, h := range expired {
		s.dropSession(h)
	}
}

// stateOf is v's JSON under name (the store's types always encode).
func stateOf(name string, v any) wal.State {
	b, _ := sonic.Marshal(v)
	return wal.State{Name: name, Value: b}
}

func sessionName(h [32]byte) string { return sessionPrefix + hex.EncodeToString(h[:]) }

func subjectNoun(r Realm) string {
	if r == RealmOperator {
		return "operator"
	}
	return "account"
}
