package console

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/proxy/views"
)

// The customer's calls and disputes.

// callsPage is how many calls the log shows at a time.
const callsPage = 50

type callsData struct {
	Filter callFilterForm
	Calls  []*ledger.CallRecord
	// Next is the query of the next page ("" on the last), already
	// encoded (url.Values.Encode), so the template must not encode it again.
	Next template.URL
	Keys []*ledger.Key
}

// callFilterForm is the call log's filter as the query gives it.
type callFilterForm struct {
	From, To, Model, Outcome, Key, RequestID string
}

var outcomes = []string{"ok", "rejected", "upstream_error", "stream_error", "client_disconnected", "timeout", "recovered"}

func (c *customer) calls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := callFilterForm{From: q.Get("from"), To: q.Get("to"), Model: q.Get("model"), Outcome: q.Get("outcome"), Key: q.Get("key"),
		RequestID: strings.TrimSpace(q.Get("request_id"))}
	if f.RequestID != "" {
		http.Redirect(w, r, "/console/calls/"+url.PathEscape(f.RequestID), http.StatusSeeOther)
		return
	}
	filter := ledger.CallFilter{Model: f.Model, Outcome: f.Outcome, KeyID: f.Key}
	var err error
	if f.From != "" {
		filter.SinceNanos, err = dayStart(f.From, 0)
	}
	if f.To != "" && err == nil {
		filter.UntilNanos, err = dayStart(f.To, 1)
	}
	before, cerr := views.ParseSeqCursor(q.Get("cursor"))
	if err != nil || cerr != nil {
		c.fail(w, r, http.StatusBadRequest, "Dates are YYYY-MM-DD; the page cursor comes from the Next link.")
		return
	}
	list, next, err := c.cfg.Books.Calls(accountOf(r), filter, before, callsPage)
	if err != nil {
		c.logger.Printf("console: cannot list calls: %s", err)
		c.fail(w, r, http.StatusInternalServerError, "Cannot list your calls now.")
		return
	}
	d := callsData{Filter: f, Calls: list, Keys: c.cfg.Books.Keys(accountOf(r))}
	if next != 0 {
		q.Set("cursor", views.SeqCursor(next))
		d.Next = template.URL(q.Encode())
	}
	c.render(w, r, http.StatusOK, "c_calls.html", page{Title: "Calls", Nav: "calls", Data: d})
}

// dayStart is the start of date (UTC) plus days.
func dayStart(date string, days int) (int64, error) {
	t, err := time.Parse(time.DateOnly, date)
	return t.AddDate(0, 0, days).UnixNano(), err
}

type callData struct {
	Call *ledger.CallRecord
	// Disputable says the dispute window is still open; Dispute is the
	// call's dispute, if one was filed.
	Disputable bool
	Dispute    *ledger.Dispute
}

func (c *customer) call(w http.ResponseWriter, r *http.Request) {
	rec, err := c.cfg.Books.CallByRequestID(r.PathValue("request_id"))
	if err != nil || rec == nil || rec.AccountID != accountOf(r) {
		c.fail(w, r, http.StatusNotFound, "No call of your account has this request ID (or its record was pruned).")
		return
	}
	d := callData{Call: rec}
	for _, x := range c.cfg.Books.Disputes(rec.AccountID, nil) {
		if x.RequestID == rec.RequestID {
			d.Dispute = &x
		}
	}
	problem, _ := views.DisputeProblem(c.cfg.Books, rec.AccountID, rec.RequestID, c.cfg.DisputeWindow, time.Now())
	d.Disputable = problem == "" && d.Dispute == nil
	c.render(w, r, http.StatusOK, "c_call.html", page{Title: "Call " + rec.RequestID, Nav: "calls", Data: d})
}

type disputesData struct {
	Disputes []ledger.Dispute
	// RequestID and Reason fill the form (from a call's page, or as typed).
	RequestID, Reason string
	Window            string
}

func (c *customer) disputes(w http.ResponseWriter, r *http.Request) {
	c.renderDisputes(w, r, http.StatusOK, page{}, r.URL.Query().Get("request_id"), "")
}

func (c *customer) renderDisputes(w http.ResponseWriter, r *http.Request, status int, p page, requestID, reason string) {
	p.Title, p.Nav = "Disputes", "disputes"
	p.Data = disputesData{Disputes: c.cfg.Books.Disputes(accountOf(r), nil), RequestID: requestID, Reason: reason,
		Window: windowText(c.cfg.DisputeWindow)}
	c.render(w, r, status, "c_disputes.html", p)
}

// fileDispute files a dispute for one of the account's calls, within the
// window, as POST /v1/disputes does.
func (c *customer) fileDispute(w http.ResponseWriter, r *http.Request) {
	account := accountOf(r)
	requestID, reason := strings.TrimSpace(r.PostForm.Get("request_id")), strings.TrimSpace(r.PostForm.Get("reason"))
	problem := ""
	switch {
	case requestID == "" || reason == "":
		problem = "Give the call's request ID and a reason."
	case len(reason) > 2000:
		problem = "A reason has at most 2,000 characters."
	default:
		problem, _ = views.DisputeProblem(c.cfg.Books, account, requestID, c.cfg.DisputeWindow, time.Now())
	}
	if problem == "" {
		_, created, err := c.cfg.Books.FileDispute(ledger.Dispute{ID: "dsp_" + ids.RandomBase62(20), AccountID: account, RequestID: requestID, Reason: reason})
		switch {
		case errors.Is(err, ledger.ErrDisputeExists) || err == nil && !created:
			problem = "This call is disputed already."
		case err != nil:
			problem = "The dispute was not filed: " + err.Error()
		}
	}
	if problem != "" {
		c.renderDisputes(w, r, http.StatusBadRequest, page{Problem: problem}, requestID, reason)
		return
	}
	c.renderDisputes(w, r, http.StatusCreated, page{Notice: "Dispute filed. An operator will answer it; its outcome shows here."}, "", "")
}

func windowText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		days := int(d / (24 * time.Hour))
		if days == 1 {
			return "1 day"
		}
		return strconv.Itoa(days) + " days"
	}
	return d.String()
}
