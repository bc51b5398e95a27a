package admin

import (
	"errors"
	"net/http"

	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/views"
)

// Operators and their API tokens (package access). Only the admin role
// manages them.

type operatorView struct {
	ID        string     `json:"id"`
	Email     string     `json:"email"`
	Role      string     `json:"role"`
	Disabled  bool       `json:"disabled"`
	CreatedAt views.Time `json:"created_at"`
}

func newOperatorView(o access.Operator) operatorView {
	return operatorView{ID: o.ID, Email: o.Email, Role: string(o.Role), Disabled: o.Disabled, CreatedAt: views.Time(o.CreatedAt)}
}

type tokenView struct {
	ID         string     `json:"id"`
	Token      string     `json:"token,omitempty"` // only in the answer that made it
	OperatorID string     `json:"operator_id"`
	Hint       string     `json:"hint"`
	Revoked    bool       `json:"revoked"`
	CreatedAt  views.Time `json:"created_at"`
}

func newTokenView(t access.Token) tokenView {
	return tokenView{ID: t.ID, OperatorID: t.OperatorID, Hint: t.Hint, Revoked: t.Revoked, CreatedAt: views.Time(t.CreatedAt)}
}

// accessStore is the operators' store, or a 501 when the gateway runs
// without one.
func (s *Server) accessStore(w http.ResponseWriter) (*access.Store, bool) {
	if s.cfg.Access == nil {
		writeError(w, http.StatusNotImplemented, views.APIError, "operators are not configured")
		return nil, false
	}
	return s.cfg.Access, true
}

// accessError answers an error of the operators' store.
func accessError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, access.ErrUnknown):
		writeError(w, http.StatusNotFound, views.NotFoundError, err.Error())
	case errors.Is(err, access.ErrExists):
		writeError(w, http.StatusConflict, views.ConflictError, err.Error())
	case errors.Is(err, access.ErrInvalid):
		badRequest(w, err)
	default:
		writeError(w, http.StatusInternalServerError, views.APIError, "cannot record the change")
	}
}

func (s *Server) createOperator(w http.ResponseWriter, r *http.Request) {
	store, ok := s.accessStore(w)
	if !ok {
		return
	}
	var b struct {
		ID    string `json:"id"`
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	o, err := store.CreateOperator(access.Operator{ID: b.ID, Email: b.Email, Role: access.Role(b.Role)})
	if err != nil {
		accessError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, newOperatorView(o))
}

func (s *Server) listOperators(w http.ResponseWriter, _ *http.Request) {
	store, ok := s.accessStore(w)
	if !ok {
		return
	}
	ops := store.Operators()
	page := make([]operatorView, 0, len(ops))
	for _, o := range ops {
		page = append(page, newOperatorView(o))
	}
	writeJSON(w, http.StatusOK, views.NewList(page, ""))
}

// patchOperator changes an operator's role or disables it (its tokens stop
// working while it is).
func (s *Server) patchOperator(w http.ResponseWriter, r *http.Request) {
	store, ok := s.accessStore(w)
	if !ok {
		return
	}
	var b struct {
		Role     *string `json:"role"`
		Disabled *bool   `json:"disabled"`
	}
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	var role *access.Role
	if b.Role != nil {
		r := access.Role(*b.Role)
		role = &r
	}
	o, err := store.UpdateOperator(r.PathValue("operator_id"), role, b.Disabled)
	if err != nil {
		accessError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, newOperatorView(o))
}

// mintOperatorToken makes an API token for the operator; its secret is in
// this answer only.
func (s *Server) mintOperatorToken(w http.ResponseWriter, r *http.Request) {
	store, ok := s.accessStore(w)
	if !ok {
		return
	}
	secret, t, err := store.MintToken(r.PathValue("operator_id"))
	if err != nil {
		accessError(w, err)
		return
	}
	v := newTokenView(t)
	v.Token = secret
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listOperatorTokens(w http.ResponseWriter, r *http.Request) {
	store, ok := s.accessStore(w)
	if !ok {
		return
	}
	toks := store.Tokens(r.PathValue("operator_id"))
	page := make([]tokenView, 0, len(toks))
	for _, t := range toks {
		page = append(page, newTokenView(t))
	}
	writeJSON(w, http.StatusOK, views.NewList(page, ""))
}

func (s *Server) revokeOperatorToken(w http.ResponseWriter, r *http.Request) {
	store, ok := s.accessStore(w)
	if !ok {
		return
	}
	if err := store.RevokeToken(r.PathValue("token_id")); err != nil {
		accessError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
