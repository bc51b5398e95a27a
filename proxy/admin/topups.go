package admin

import (
	"errors"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/views"
)

// topUpBody is the body of POST /admin/v1/accounts/{id}/topups.
type topUpBody struct {
	Amount    *views.Amount `json:"amount"`
	OrderID   string        `json:"order_id"`
	Kind      string        `json:"kind"`
	ExpiresAt *views.Time   `json:"expires_at"`
}

// request checks b and makes it the ledger's top-up of account by actor.
func (b *topUpBody) request(account, actor string) (ledger.TopUpRequest, error) {
	r := ledger.TopUpRequest{Account: account, Actor: actor, OrderID: b.OrderID}
	switch {
	case b.Amount == nil:
		return r, errors.New("amount: required")
	case *b.Amount <= 0:
		return r, errors.New("amount: must be positive")
	case b.OrderID == "":
		return r, errors.New("order_id: required")
	}
	r.Amount = int64(*b.Amount)
	var err error
	if r.Credit, err = ledger.ParseCredit(b.Kind); err != nil {
		return r, errors.New(`kind: must be "paid" or "gift"`)
	}
	switch {
	case r.Credit == ledger.CreditPaid && b.ExpiresAt != nil:
		return r, errors.New("expires_at: paid credit expires 365 days after the latest paid top-up; it takes no expires_at")
	case r.Credit == ledger.CreditGift && b.ExpiresAt == nil:
		return r, errors.New("expires_at: required for gift credit")
	case b.ExpiresAt != nil:
		r.ExpiresAtNanos = int64(*b.ExpiresAt)
	}
	return r, nil
}

func (s *Server) topUp(w http.ResponseWriter, r *http.Request) {
	var b topUpBody
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	req, err := b.request(r.PathValue("id"), actorOf(r))
	if err != nil {
		badRequest(w, err)
		return
	}
	e, created, err := s.cfg.Books.TopUp(req)
	writeEntry(w, e, created, err)
}

// adjustBody is the body of POST /admin/v1/adjustments.
type adjustBody struct {
	Account        string        `json:"account"`
	Amount         *views.Amount `json:"amount"`
	Reason         string        `json:"reason"`
	RequestID      string        `json:"request_id"`
	IdempotencyKey string        `json:"idempotency_key"`
}

func (b *adjustBody) request(actor string) (ledger.AdjustRequest, error) {
	r := ledger.AdjustRequest{Account: b.Account, Reason: b.Reason, RequestID: b.RequestID, IdempotencyKey: b.IdempotencyKey, Actor: actor}
	switch {
	case b.Account == "":
		return r, errors.New("account: required")
	case b.Amount == nil || *b.Amount == 0:
		return r, errors.New("amount: required and not zero")
	case b.Reason == "":
		return r, errors.New("reason: required")
	}
	r.Amount = int64(*b.Amount)
	return r, nil
}

// adjust posts an adjustment. One that names a call must name a call of
// the account inside the dispute window; a retry (the same idempotency
// key) gets the first result or its conflict whatever has changed since,
// the window included.
func (s *Server) adjust(w http.ResponseWriter, r *http.Request) {
	var b adjustBody
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	req, err := b.request(actorOf(r))
	if err != nil {
		badRequest(w, err)
		return
	}
	if _, retry := s.cfg.Books.Adjustment(req.IdempotencyKey); req.RequestID != "" && !retry {
		c, err := s.cfg.Books.CallByRequestID(req.RequestID)
		switch {
		case err != nil:
			writeError(w, http.StatusInternalServerError, views.APIError, "cannot read calls")
			return
		case c == nil || c.AccountID != req.Account:
			writeError(w, http.StatusNotFound, views.NotFoundError, "request_id: no call of this account with that ID")
			return
		case time.Since(time.Unix(0, c.TimeNanos)) > s.cfg.DisputeWindow:
			writeError(w, http.StatusConflict, views.ConflictError, "request_id: the call is older than the dispute window")
			return
		}
	}
	e, created, err := s.cfg.Books.Adjust(req)
	writeEntry(w, e, created, err)
}

// writeEntry answers an idempotent ledger write: 201 with the new entry, or
// 200 with the first one when the request was a repeat.
func writeEntry(w http.ResponseWriter, e ledger.Entry, created bool, err error) {
	if err != nil {
		ledgerError(w, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, views.NewEntry(e))
}
