package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/views"
)

// disputes is GET /admin/v1/disputes?state=open&account=ID: disputes oldest
// first (the queue to answer, with state=open), each with its call's
// record when the record is still kept.
func (s *Server) disputes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var state *ledger.DisputeState
	if v := q.Get("state"); v != "" {
		st, ok := parseDisputeState(v)
		if !ok {
			badRequest(w, fmt.Errorf("state: %.32q is not open, accepted or rejected", v))
			return
		}
		state = &st
	}
	list := s.cfg.Books.Disputes(q.Get("account"), state)
	page := make([]disputeWithCall, 0, len(list))
	for _, d := range list {
		page = append(page, s.withCall(d))
	}
	writeJSON(w, http.StatusOK, views.NewList(page, ""))
}

func parseDisputeState(s string) (ledger.DisputeState, bool) {
	for _, st := range []ledger.DisputeState{ledger.DisputeOpen, ledger.DisputeAccepted, ledger.DisputeRejected} {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

// disputeWithCall is a dispute as the operator answers it: with the
// disputed call's record.
type disputeWithCall struct {
	views.Dispute
	Call *views.AdminCall `json:"call"`
}

func (s *Server) withCall(d ledger.Dispute) disputeWithCall {
	v := disputeWithCall{Dispute: views.NewDispute(d)}
	if c, err := s.cfg.Books.CallByRequestID(d.RequestID); err == nil && c != nil {
		call := views.NewAdminCall(c)
		v.Call = &call
	}
	return v
}

func (s *Server) dispute(w http.ResponseWriter, r *http.Request) {
	d, ok := s.cfg.Books.Dispute(r.PathValue("dispute_id"))
	if !ok {
		ledgerError(w, ledger.ErrUnknownDispute)
		return
	}
	writeJSON(w, http.StatusOK, s.withCall(d))
}

// acceptDispute posts the refund (the body's amount, else what the call
// was charged) as an adjustment keyed by the dispute's ID, and marks the
// dispute accepted; a retry answers the accepted dispute.
func (s *Server) acceptDispute(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Amount *views.Amount `json:"amount"`
		Note   string        `json:"note"`
	}
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	id := r.PathValue("dispute_id")
	d, ok := s.cfg.Books.Dispute(id)
	if !ok {
		ledgerError(w, ledger.ErrUnknownDispute)
		return
	}
	refund, err := DisputeRefund(s.cfg.Books, d, (*int64)(b.Amount), roleOf(r))
	if errors.Is(err, ErrRefundAboveCharge) {
		writeError(w, http.StatusForbidden, views.PermissionError, err.Error())
		return
	}
	if err != nil {
		badRequest(w, err)
		return
	}
	if d, err = s.cfg.Books.AcceptDispute(id, refund, b.Note, actorOf(r)); err != nil {
		ledgerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.withCall(d))
}

// ErrRefundAboveCharge: a refund above the call's charge (or of a call
// whose record is gone) asked by a role without the money right (403).
var ErrRefundAboveCharge = errors.New("amount: a refund above the call's charge needs the finance or admin role")

// DisputeRefund is the refund of accepting d by role: the amount asked for
// (nil: none asked), else what its call was charged (the call record must
// still be kept). Only roles with the money right may refund more than the
// charge. The console's acceptance uses it too.
func DisputeRefund(l views.CallFinder, d ledger.Dispute, asked *int64, role access.Role) (int64, error) {
	if d.State == ledger.DisputeAccepted {
		return d.Refund, nil
	}
	c, err := l.CallByRequestID(d.RequestID)
	if asked != nil {
		switch {
		case *asked <= 0:
			return 0, errors.New("amount: must be positive")
		case !role.Allows(access.Money) && (err != nil || c == nil || *asked > c.Charged):
			return 0, ErrRefundAboveCharge
		}
		return *asked, nil
	}
	if err != nil || c == nil {
		return 0, errors.New("amount: required (the call's record is no longer kept)")
	}
	if c.Charged <= 0 {
		return 0, errors.New("amount: required (the call was charged nothing)")
	}
	return c.Charged, nil
}

func (s *Server) rejectDispute(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &b); err != nil {
		badRequest(w, err)
		return
	}
	if b.Reason == "" {
		badRequest(w, errors.New("reason: required"))
		return
	}
	d, err := s.cfg.Books.RejectDispute(r.PathValue("dispute_id"), b.Reason, actorOf(r))
	if err != nil {
		ledgerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.withCall(d))
}
