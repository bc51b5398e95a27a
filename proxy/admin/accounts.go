package admin

import (
	"errors"
	"net/http"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/proxy/views"
)

// actorOf is who makes a request's changes, as entries name them: "admin"
// for the admin token, "op:<operator ID>" for an operator's token.
func actorOf(r *http.Request) string {
	if c, ok := r.Context().Value(actorKey{}).(caller); ok {
		return c.actor
	}
	return adminActor
}

// roleOf is the role of a request's caller.
func roleOf(r *http.Request) access.Role {
	if c, ok := r.Context().Value(actorKey{}).(caller); ok {
		return c.role
	}
	return access.RoleAdmin
}

// adminActor names the admin token in the entries it makes.
const adminActor = "admin"

// actorKey is the request context key of the request's actor.
type actorKey struct{}

// limitsBody is a body's rpm, tpm and concurrency: absent keeps the value
// (for a new account or key, the configured default), 0 is unlimited.
type limitsBody struct {
	RPM         *views.Count `json:"rpm"`
	TPM         *views.Count `json:"tpm"`
	Concurrency *views.Count `json:"concurrency"`
}

func (b limitsBody) applyTo(l *ledger.Limits) {
	for _, f := range []struct {
		from *views.Count
		to   *int64
	}{{b.RPM, &l.RPM}, {b.TPM, &l.TPM}, {b.Concurrency, &l.Concurrency}} {
		if f.from != nil {
			*f.to = int64(*f.from)
		}
	}
}

// accountSettings is the body of PATCH /admin/v1/accounts/{id}.
type accountSettings struct {
	Email      *string       `json:"email"`
	Multiplier *views.Amount `json:"multiplier"`
	limitsBody
}

// newAccountBody is the body of POST /admin/v1/accounts.
type newAccountBody struct {
	ID string `json:"id"`
	accountSettings
}

// applyTo checks b and applies it to an account's settings.
func (b *accountSettings) applyTo(email *string, multiplier *int64, limits *ledger.Limits) error {
	if b.Multiplier != nil {
		if *b.Multiplier <= 0 {
			return errors.New("multiplier: must be positive")
		}
		*multiplier = int64(*b.Multiplier)
	}
	if b.Email != nil {
		*email = *b.Email
	}
	b.limitsBody.applyTo(limits)
	return nil
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	var b newAccountBody
	spec := ledger.AccountSpec{Limits: ledger.DefaultLimits}
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	if err := b.applyTo(&spec.Email, &spec.Multiplier, &spec.Limits); err != nil {
		badRequest(w, err)
		return
	}
	spec.ID = b.ID
	if spec.ID == "" {
		spec.ID = "acct_" + ids.RandomBase62(20)
	}
	a, err := s.cfg.Books.CreateAccount(spec)
	if err != nil {
		ledgerError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, views.NewAccount(a))
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	a, err := s.cfg.Books.Account(r.PathValue("id"))
	if err != nil {
		ledgerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, views.NewAccount(a))
}

func (s *Server) patchAccount(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var b accountSettings
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	cur, err := s.cfg.Books.Account(id)
	if err != nil {
		ledgerError(w, err)
		return
	}
	email, multiplier, limits := cur.Email, cur.Multiplier, cur.Limits
	if err := b.applyTo(&email, &multiplier, &limits); err != nil {
		badRequest(w, err)
		return
	}
	a, err := s.cfg.Books.UpdateAccount(id, ledger.AccountPatch{Email: &email, Multiplier: &multiplier, Limits: &limits})
	if err != nil {
		ledgerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, views.NewAccount(a))
}

func (s *Server) freeze(w http.ResponseWriter, r *http.Request)   { s.setFrozen(w, r, true) }
func (s *Server) unfreeze(w http.ResponseWriter, r *http.Request) { s.setFrozen(w, r, false) }

func (s *Server) setFrozen(w http.ResponseWriter, r *http.Request, frozen bool) {
	if err := s.cfg.Books.SetFrozen(r.PathValue("id"), frozen, actorOf(r)); err != nil {
		ledgerError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// closeAccount closes an account for good (ledger.CloseAccount: keys
// revoked, frozen, no more top-ups or keys) and forfeits its available
// credit by a negative adjustment with reason "account closed", unless the
// policy keeps it. A repeat answers the account as it is; a forfeit already
// posted is not posted again (its idempotency key is the account's).
func (s *Server) closeAccount(w http.ResponseWriter, r *http.Request) {
	info, err := CloseAccount(s.cfg.Books, r.PathValue("id"), actorOf(r), s.cfg.KeepCreditOnClose)
	if err != nil {
		ledgerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, views.NewAccount(info))
}

// CloseAccount closes account id for actor and, unless keepCredit, forfeits
// its available credit by an "account closed" adjustment (keyed by the
// account, so a retry forfeits once). The console's closure uses it too.
func CloseAccount(l Books, id, actor string, keepCredit bool) (ledger.AccountInfo, error) {
	info, _, err := l.CloseAccount(id, actor)
	if err != nil {
		return info, err
	}
	if !keepCredit && info.Available > 0 {
		_, _, err := l.Adjust(ledger.AdjustRequest{Account: id, Amount: -info.Available, Reason: "account closed",
			IdempotencyKey: "close:" + id, Actor: actor})
		if err != nil && !errors.Is(err, ledger.ErrIdempotencyConflict) {
			return info, err
		}
	}
	return l.Account(id)
}

// entries is an account's entries, newest first, a page at a time.
func (s *Server) entries(w http.ResponseWriter, r *http.Request) {
	account, q := r.PathValue("id"), r.URL.Query()
	limit, err := views.ParseLimit(q.Get("limit"), 100, 1000)
	if err != nil {
		badRequest(w, err)
		return
	}
	before, err := views.ParseSeqCursor(q.Get("cursor"))
	if err != nil {
		badRequest(w, err)
		return
	}
	if _, err := s.cfg.Ledger.Settings(account); err != nil {
		ledgerError(w, err)
		return
	}
	entries, more, err := s.cfg.Books.Entries(account, before, limit)
	if err != nil {
		s.cfg.Logger.Printf("cannot list entries: %s", err)
		writeError(w, http.StatusInternalServerError, views.APIError, "cannot list entries")
		return
	}
	page := make([]views.Entry, 0, len(entries))
	for _, e := range entries {
		page = append(page, views.NewEntry(e))
	}
	next := ""
	if more && len(entries) > 0 {
		next = views.SeqCursor(entries[len(entries)-1].ID)
	}
	writeJSON(w, http.StatusOK, views.NewList(page, next))
}
