package admin

import (
	"fmt"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/proxy/views"
)

// MintKey creates a platform key for k.AccountID with k's settings and
// returns its secret, which is shown only this once (the ledger keeps its
// hash and a hint).
func MintKey(l Books, k ledger.Key) (string, *ledger.Key, error) {
	return MintKeyWithin(l, k, ledger.KeyQuota{})
}

// MintKeyWithin mints a key as MintKey does, unless the account is at q's
// bounds (ledger.ErrKeyQuota), checked where the key is created.
func MintKeyWithin(l Books, k ledger.Key, q ledger.KeyQuota) (string, *ledger.Key, error) {
	secret := ids.NewKeySecret()
	k.ID = "key_" + ids.RandomBase62(20)
	k.Hash = ids.HashKey([]byte(secret))
	k.Hint = ids.KeyHint(secret)
	created, err := l.CreateKeyWithin(k, q)
	if err != nil {
		return "", nil, err
	}
	return secret, created, nil
}

// keyBody is the body of POST /admin/v1/accounts/{id}/keys and PATCH
// /admin/v1/keys/{key_id}.
type keyBody struct {
	Name        *string       `json:"name"`
	SpendLimit  *views.Amount `json:"spend_limit"`
	SpendPeriod string        `json:"spend_period"`
	ExpiresAt   *views.Time   `json:"expires_at"`
	Models      *[]string     `json:"models"`
	limitsBody
}

// applyTo checks b and applies it to k: absent fields leave k as it is.
func (b *keyBody) applyTo(k *ledger.Key) error {
	if b.SpendPeriod != "" {
		d, err := time.ParseDuration(b.SpendPeriod)
		if err != nil || d <= 0 {
			return fmt.Errorf("spend_period: %.64q is not a positive duration such as \"720h\"", b.SpendPeriod)
		}
		k.SpendPeriod = d
	}
	if b.Name != nil {
		k.Name = *b.Name
	}
	if b.SpendLimit != nil {
		k.SpendLimit = int64(*b.SpendLimit)
	}
	if b.ExpiresAt != nil {
		k.ExpiresAtNanos = int64(*b.ExpiresAt)
	}
	if b.Models != nil {
		k.Models = *b.Models
	}
	b.limitsBody.applyTo(&k.Limits)
	return nil
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	k := ledger.Key{AccountID: r.PathValue("id"), Limits: ledger.DefaultLimits}
	var b keyBody
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	if err := b.applyTo(&k); err != nil {
		badRequest(w, err)
		return
	}
	secret, created, err := MintKey(s.cfg.Books, k)
	if err != nil {
		ledgerError(w, err)
		return
	}
	v := views.NewKey(created)
	v.Key = secret
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	account := r.PathValue("id")
	if _, err := s.cfg.Ledger.Settings(account); err != nil {
		ledgerError(w, err)
		return
	}
	keys := s.cfg.Books.Keys(account)
	page := make([]views.Key, 0, len(keys))
	for _, k := range keys {
		page = append(page, views.NewKey(k))
	}
	writeJSON(w, http.StatusOK, views.NewList(page, ""))
}

func (s *Server) patchKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("key_id")
	var b keyBody
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	cur := s.cfg.Books.Key(id)
	if cur == nil {
		ledgerError(w, ledger.ErrUnknownKey)
		return
	}
	k := *cur
	if err := b.applyTo(&k); err != nil {
		badRequest(w, err)
		return
	}
	updated, err := s.cfg.Books.UpdateKey(id, ledger.KeyPatch{Name: &k.Name, Limits: &k.Limits, SpendLimit: &k.SpendLimit,
		SpendPeriod: &k.SpendPeriod, ExpiresAtNanos: &k.ExpiresAtNanos, Models: &k.Models})
	if err != nil {
		ledgerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, views.NewKey(updated))
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Books.RevokeKey(r.PathValue("key_id")); err != nil {
		ledgerError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
