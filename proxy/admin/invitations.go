package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/notify"
	"github.com/tollgate/tollgate/proxy/views"
)

// Console users: invitations (the link that lets a person set a password)
// for an account's users and for operators, and the users of an account.

// invitationView is an invitation as the admin API answers it; Link is
// shown only when it is made.
type invitationView struct {
	ID        string     `json:"id"`
	Realm     string     `json:"realm"`
	Subject   string     `json:"subject"`
	Email     string     `json:"email"`
	Link      string     `json:"link,omitempty"`
	CreatedBy string     `json:"created_by"`
	CreatedAt views.Time `json:"created_at"`
	ExpiresAt views.Time `json:"expires_at"`
	Accepted  bool       `json:"accepted"`
	// Mailed says the link was also mailed (only in the answer that made it).
	Mailed bool `json:"mailed"`
}

func newInvitationView(inv access.Invitation, link string) invitationView {
	return invitationView{ID: inv.ID, Realm: string(inv.Realm), Subject: inv.Subject, Email: inv.Email, Link: link,
		CreatedBy: inv.CreatedBy, CreatedAt: views.Time(inv.CreatedAt), ExpiresAt: views.Time(inv.ExpiresAt), Accepted: inv.AcceptedAt != 0}
}

// userView is a console user as the admin API answers it (never its
// password hash).
type userView struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	PasswordSet bool       `json:"password_set"`
	CreatedAt   views.Time `json:"created_at"`
}

// Invite makes an invitation of realm for subject's email and returns it
// with its link: base (the console's address, such as
// "https://console.example.com") + /console/invite?token=...; where email
// is configured (n has SMTP) the link is also mailed, and mailed says so.
// The console's own invitation form uses it too. Closed accounts and
// unknown subjects are refused by the caller.
func Invite(ctx context.Context, users access.UserStore, n *notify.Notifier, realm access.Realm, subject, email, actor, base string) (inv access.Invitation, link string, mailed bool, err error) {
	token, inv, err := users.Invite(realm, subject, email, actor)
	if err != nil {
		return inv, "", false, err
	}
	link = base + "/console/invite?token=" + url.QueryEscape(token)
	data := map[string]string{"console": "customers'", "account": subject, "link": link,
		"expires_at": time.Unix(0, inv.ExpiresAt).UTC().Format(time.RFC3339)}
	if realm == access.RealmOperator {
		data["console"], data["account"] = "operators'", ""
	}
	mailed = n.MailInvitation(ctx, email, data) == nil
	return inv, link, mailed, nil
}

// InviteCustomer invites email to account's console users, as Invite
// does; an unknown account is the ledger's error and a closed one
// ledger.ErrAccountClosed (its users may not sign in).
func InviteCustomer(ctx context.Context, l Books, users access.UserStore, n *notify.Notifier, account, email, actor, base string) (access.Invitation, string, bool, error) {
	a, err := l.Account(account)
	if err == nil && a.ClosedAtNanos != 0 {
		err = fmt.Errorf("%w: %s", ledger.ErrAccountClosed, account)
	}
	if err != nil {
		return access.Invitation{}, "", false, err
	}
	return Invite(ctx, users, n, access.RealmCustomer, account, email, actor, base)
}

func (s *Server) usersStore(w http.ResponseWriter) (access.UserStore, bool) {
	if s.cfg.Users == nil {
		writeError(w, http.StatusNotImplemented, views.APIError, "consoles are not configured")
		return nil, false
	}
	return s.cfg.Users, true
}

func (s *Server) inviteCustomer(w http.ResponseWriter, r *http.Request) {
	users, email, ok := s.invitationBody(w, r)
	if !ok {
		return
	}
	inv, link, mailed, err := InviteCustomer(r.Context(), s.cfg.Books, users, s.cfg.Notifier, r.PathValue("id"), email, actorOf(r), s.cfg.CustomerConsoleURL)
	if err != nil && !errors.Is(err, access.ErrInvalid) && !errors.Is(err, access.ErrExists) {
		ledgerError(w, err)
		return
	}
	s.answerInvitation(w, inv, link, mailed, err)
}

// invitationBody reads an invitation route's store and body; ok is false
// after it answered.
func (s *Server) invitationBody(w http.ResponseWriter, r *http.Request) (users access.UserStore, email string, ok bool) {
	if users, ok = s.usersStore(w); !ok {
		return nil, "", false
	}
	var b struct {
		Email string `json:"email"`
	}
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return nil, "", false
	}
	return users, b.Email, true
}

func (s *Server) inviteOperator(w http.ResponseWriter, r *http.Request) {
	store, ok := s.accessStore(w)
	if !ok {
		return
	}
	users, email, ok := s.invitationBody(w, r)
	if !ok {
		return
	}
	id := r.PathValue("operator_id")
	o, found := store.Operator(id)
	if !found {
		accessError(w, fmt.Errorf("%w: operator %q", access.ErrUnknown, id))
		return
	}
	if email == "" {
		email = o.Email
	}
	if email == "" {
		badRequest(w, errors.New("email: required (the operator has none)"))
		return
	}
	inv, link, mailed, err := Invite(r.Context(), users, s.cfg.Notifier, access.RealmOperator, id, email, actorOf(r), s.cfg.OperatorConsoleURL)
	s.answerInvitation(w, inv, link, mailed, err)
}

// answerInvitation answers an invitation just made with its link, or the
// access store's error.
func (s *Server) answerInvitation(w http.ResponseWriter, inv access.Invitation, link string, mailed bool, err error) {
	if err != nil {
		accessError(w, err)
		return
	}
	v := newInvitationView(inv, link)
	v.Mailed = mailed
	writeJSON(w, http.StatusCreated, v)
}

// accountUsers lists an account's console users and its invitations.
func (s *Server) accountUsers(w http.ResponseWriter, r *http.Request) {
	users, ok := s.usersStore(w)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if _, err := s.cfg.Ledger.Settings(id); err != nil {
		ledgerError(w, err)
		return
	}
	list := []userView{}
	for _, u := range users.Users(access.RealmCustomer, id) {
		list = append(list, userView{ID: u.ID, Email: u.Email, PasswordSet: u.Password != "", CreatedAt: views.Time(u.CreatedAt)})
	}
	invs := []invitationView{}
	for _, inv := range users.Invitations(access.RealmCustomer, id) {
		invs = append(invs, newInvitationView(inv, ""))
	}
	writeJSON(w, http.StatusOK, struct {
		Data        []userView       `json:"data"`
		Invitations []invitationView `json:"invitations"`
	}{list, invs})
}
