package console

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/admin"
)

// The operators' disputes queue and the catalogue and health page.

type disputeRow struct {
	ledger.Dispute
	// Call is the disputed call's record (nil once pruned).
	Call *ledger.CallRecord
}

type queueData struct {
	Open, Resolved []disputeRow
}

// disputes is the queue: open disputes oldest first, each with its call,
// then the 50 most recently resolved.
func (o *operator) disputes(w http.ResponseWriter, r *http.Request) {
	o.renderQueue(w, r, http.StatusOK, page{})
}

func (o *operator) renderQueue(w http.ResponseWriter, r *http.Request, status int, p page) {
	var d queueData
	for _, x := range o.cfg.Books.Disputes("", nil) {
		row := disputeRow{Dispute: x}
		row.Call, _ = o.cfg.Books.CallByRequestID(x.RequestID)
		if x.State == ledger.DisputeOpen {
			d.Open = append(d.Open, row)
		} else {
			d.Resolved = append(d.Resolved, row)
		}
	}
	// Open ones stay oldest first, as the ledger lists them.
	slices.SortFunc(d.Resolved, func(a, b disputeRow) int { return cmp.Compare(b.ResolvedAt, a.ResolvedAt) })
	d.Resolved = d.Resolved[:min(len(d.Resolved), 50)]
	p.Title, p.Nav, p.Data = "Disputes", "disputes", d
	o.render(w, r, status, "o_disputes.html", p)
}

// acceptDispute accepts a dispute, refunding the amount typed or, when
// none, the call's charge, by the adjustment keyed by the dispute ID.
func (o *operator) acceptDispute(w http.ResponseWriter, r *http.Request) {
	d, ok := o.cfg.Books.Dispute(r.PathValue("dispute_id"))
	if !ok {
		o.fail(w, r, http.StatusNotFound, "No such dispute.")
		return
	}
	var asked *int64
	if s := strings.TrimSpace(r.PostForm.Get("amount")); s != "" {
		v, err := money.Parse(s)
		if err != nil {
			o.renderQueue(w, r, http.StatusBadRequest, page{Problem: "amount: a positive number of credits"})
			return
		}
		asked = &v
	}
	refund, err := admin.DisputeRefund(o.cfg.Books, d, asked, o.roleOf(userOf(r)))
	if err == nil {
		d, err = o.cfg.Books.AcceptDispute(d.ID, refund, strings.TrimSpace(r.PostForm.Get("note")), actorOf(r))
	}
	if err != nil {
		o.renderQueue(w, r, http.StatusConflict, page{Problem: strings.TrimPrefix(err.Error(), "ledger: ")})
		return
	}
	o.renderQueue(w, r, http.StatusOK, page{Notice: "Dispute " + d.ID + " accepted: " + money.Format(d.Refund) + " credits refunded to " + d.AccountID + "."})
}

func (o *operator) rejectDispute(w http.ResponseWriter, r *http.Request) {
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	var err error
	if reason == "" {
		err = errors.New("reason: a rejection needs a reason the customer will read")
	} else {
		_, err = o.cfg.Books.RejectDispute(r.PathValue("dispute_id"), reason, actorOf(r))
	}
	if err != nil {
		o.renderQueue(w, r, http.StatusBadRequest, page{Problem: strings.TrimPrefix(err.Error(), "ledger: ")})
		return
	}
	o.renderQueue(w, r, http.StatusOK, page{Notice: "Dispute rejected."})
}

type healthData struct {
	Ready   string
	Figures []Figure
	Models  []catalogueRow
}

type catalogueRow struct {
	ID, DisplayName string
	Available       bool
	Upstreams       []string
	// Warnings are the model's retirement and scheduled prices.
	Warnings    []string
	Unconfirmed []string
}

func (o *operator) health(w http.ResponseWriter, r *http.Request) {
	d := healthData{Ready: "ready"}
	if err := o.cfg.Ready(); err != nil {
		d.Ready = "not ready: " + err.Error()
	}
	if o.cfg.Health != nil {
		d.Figures = o.cfg.Health()
	}
	now := time.Now()
	for _, m := range o.cfg.Catalogue().Models() {
		row := catalogueRow{ID: m.ID, DisplayName: m.DisplayName, Available: m.Available(now), Unconfirmed: m.Unconfirmed}
		for _, u := range m.Upstreams {
			row.Upstreams = append(row.Upstreams, u.Kind)
		}
		if !m.Retires.IsZero() {
			w := "retires " + m.Retires.UTC().Format(time.DateOnly)
			if m.Successor != "" {
				w += ", successor " + m.Successor
			}
			row.Warnings = append(row.Warnings, w)
		}
		for _, v := range m.Prices {
			if v.Effective.After(now) {
				row.Warnings = append(row.Warnings, "new prices from "+v.Effective.UTC().Format(time.DateOnly))
			}
		}
		d.Models = append(d.Models, row)
	}
	o.render(w, r, http.StatusOK, "o_health.html", page{Title: "Catalogue and health", Nav: "health", Data: d})
}
