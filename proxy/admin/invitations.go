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
func Invite(ctx context.Context, users *access.Users, n *notify.Notifier, realm access.Realm, subject, email, actor, base string) (inv access.Invitation, link string, mailed bool, err error) {
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

func (s *Server) usersStore(w http.ResponseWriter) (*access.Users, bool) {
	if s.cfg.Users == nil {
		writeError(w, http.StatusNotImplemented, views.APIError, "consoles are not configured")
		return nil, false
	}
	return s.cfg.Users, true
}

func (s *Server) inviteCustomer(w http.ResponseWriter, r *http.Request) {
	users, ok := s.usersStore(w)
	if !ok {
		return
	}
	var b struct {
		Email string `json:"email"`
	}
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	id := r.PathValue("id")
	a, err := s.cfg.Ledger.Account(id)
	if err != nil {
		ledgerError(w, err)
		return
	}
	if a.ClosedAtNanos != 0 {
		ledgerError(w, fmt.Errorf("%w: %s", ledger.ErrAccountClosed, id))
		return
	}
	s.invite(w, r, users, access.RealmCustomer, id, b.Email, s.cfg.CustomerConsoleURL)
}

func (s *Server) inviteOperator(w http.ResponseWriter, r *http.Request) {
	users, ok := s.usersStore(w)
	if !ok {
		return
	}
	store, ok := s.accessStore(w)
	if !ok {
		return
	}
	var b struct {
		Email string `json:"email"`
	}
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	id := r.PathValue("operator_id")
	o, found := store.Operator(id)
	if !found {
		accessError(w, fmt.Errorf("%w: operator %q", access.ErrUnknown, id))
		return
	}
	if b.Email == "" {
		b.Email = o.Email
	}
	if b.Email == "" {
		badRequest(w, errors.New("email: required (the operator has none)"))
		return
	}
	s.invite(w, r, users, access.RealmOperator, id, b.Email, s.cfg.OperatorConsoleURL)
}

// invite makes an invitation and answers it with its link.
func (s *Server) invite(w http.ResponseWriter, r *http.Request, users *access.Users, realm access.Realm, subject, email, base string) {
	inv, link, mailed, err := Invite(r.Context(), users, s.cfg.Notifier, realm, subject, email, actorOf(r), base)
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
