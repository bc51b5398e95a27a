package console

import (
	"cmp"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/admin"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/proxy/views"
)

// The operators' account pages: the list, one account, and its actions.

// accountsPage is how many accounts the list shows at a time.
const accountsPage = 50

type accountRow struct {
	Info ledger.AccountInfo
	// SpendMonth and LastCall are filled when the list is sorted by them.
	SpendMonth, LastCall int64
}

type accountsData struct {
	Query, Sort string
	Rows        []accountRow
	Page, Pages int
	// Prev and Next are the queries of the neighbouring pages, already
	// encoded.
	Prev, Next template.URL
}

// accounts lists the accounts matching q (in ID, name or email), sorted
// by sort (id, balance, spend: this month's, last_call), a page at a time.
// Spend and last call cost a ledger read per matching account, so they
// are read only when the list is sorted by them.
func (o *operator) accounts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := accountsData{Query: strings.TrimSpace(q.Get("q")), Sort: q.Get("sort")}
	needle := strings.ToLower(d.Query)
	o.cfg.Books.Accounts(func(a ledger.AccountInfo) {
		if needle == "" || strings.Contains(strings.ToLower(a.ID), needle) || strings.Contains(strings.ToLower(a.Email), needle) {
			d.Rows = append(d.Rows, accountRow{Info: a})
		}
	})
	o.sortAccounts(d.Sort, d.Rows)
	d.Page, _ = strconv.Atoi(q.Get("page"))
	d.Pages = max(1, (len(d.Rows)+accountsPage-1)/accountsPage)
	d.Page = min(max(d.Page, 1), d.Pages)
	d.Rows = d.Rows[(d.Page-1)*accountsPage : min(len(d.Rows), d.Page*accountsPage)]
	pageQuery := func(n int) template.URL {
		q.Set("page", strconv.Itoa(n))
		return template.URL(q.Encode())
	}
	if d.Page > 1 {
		d.Prev = pageQuery(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.Next = pageQuery(d.Page + 1)
	}
	o.render(w, r, http.StatusOK, "o_accounts.html", page{Title: "Accounts", Nav: "accounts", Data: d})
}

func (o *operator) sortAccounts(by string, rows []accountRow) {
	now := time.Now().UTC()
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var key func(accountRow) int64
	switch by {
	case "balance":
		key = func(a accountRow) int64 { return a.Info.Available }
	case "spend":
		for i := range rows {
			if s, err := o.cfg.Books.Statement(rows[i].Info.ID, monthStart, now.UnixNano()+1); err == nil {
				rows[i].SpendMonth = s.Charges
			}
		}
		key = func(a accountRow) int64 { return a.SpendMonth }
	case "last_call":
		for i := range rows {
			if calls, _, err := o.cfg.Books.Calls(rows[i].Info.ID, ledger.CallFilter{}, 0, 1); err == nil && len(calls) == 1 {
				rows[i].LastCall = calls[0].TimeNanos
			}
		}
		key = func(a accountRow) int64 { return a.LastCall }
	default:
		slices.SortFunc(rows, func(a, b accountRow) int { return strings.Compare(a.Info.ID, b.Info.ID) })
		return
	}
	slices.SortStableFunc(rows, func(a, b accountRow) int { return cmp.Compare(key(b), key(a)) })
}

func (o *operator) createAccount(w http.ResponseWriter, r *http.Request) {
	id, email := strings.TrimSpace(r.PostForm.Get("id")), strings.TrimSpace(r.PostForm.Get("email"))
	if id == "" {
		id = "acct_" + ids.RandomBase62(20)
	}
	a, err := o.cfg.Books.CreateAccount(ledger.AccountSpec{ID: id, Email: email, Limits: ledger.DefaultLimits})
	if err != nil {
		o.fail(w, r, http.StatusBadRequest, "The account was not created: "+err.Error())
		return
	}
	http.Redirect(w, r, "/console/accounts/"+url.PathEscape(a.ID), http.StatusSeeOther)
}

type accountData struct {
	Account     ledger.AccountInfo
	Entries     []ledger.Entry
	Keys        []*ledger.Key
	Users       []access.User
	Invitations []access.Invitation
	Calls       []*ledger.CallRecord
	Disputes    []ledger.Dispute
	// Link is an invitation link just made, shown once.
	Link string
}

func (o *operator) account(w http.ResponseWriter, r *http.Request) {
	o.renderAccount(w, r, http.StatusOK, page{}, "")
}

func (o *operator) renderAccount(w http.ResponseWriter, r *http.Request, status int, p page, link string) {
	id := r.PathValue("id")
	a, err := o.cfg.Books.Account(id)
	if err != nil {
		o.fail(w, r, http.StatusNotFound, "No such account.")
		return
	}
	d := accountData{Account: a, Keys: o.cfg.Books.Keys(id), Users: o.users.Users(access.RealmCustomer, id),
		Invitations: o.users.Invitations(access.RealmCustomer, id), Disputes: o.cfg.Books.Disputes(id, nil), Link: link}
	var errs [2]error
	d.Entries, _, errs[0] = o.cfg.Books.Entries(id, 0, 50)
	d.Calls, _, errs[1] = o.cfg.Books.Calls(id, ledger.CallFilter{}, 0, 20)
	if err := errors.Join(errs[:]...); err != nil {
		o.logger.Printf("console: cannot read account %s: %s", id, err)
	}
	p.Title, p.Nav, p.Data = "Account "+a.ID, "accounts", d
	o.render(w, r, status, "o_account.html", p)
}

// done shows the account again with notice, or with the problem err.
func (o *operator) done(w http.ResponseWriter, r *http.Request, notice string, err error) {
	if err != nil {
		status, _, _ := views.LedgerError(err)
		if status == http.StatusInternalServerError {
			status = http.StatusBadRequest
		}
		o.renderAccount(w, r, status, page{Problem: strings.TrimPrefix(err.Error(), "ledger: ")}, "")
		return
	}
	o.renderAccount(w, r, http.StatusOK, page{Notice: notice}, "")
}

func (o *operator) topUp(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	req := ledger.TopUpRequest{Account: r.PathValue("id"), OrderID: strings.TrimSpace(f.Get("order_id")), Credit: ledger.CreditPaid, Actor: actorOf(r)}
	amount, err := money.Parse(strings.TrimSpace(f.Get("amount")))
	if err != nil || amount <= 0 {
		o.done(w, r, "", errors.New("amount: a positive number of credits, such as 25 or 12.50"))
		return
	}
	req.Amount = amount
	if f.Get("kind") == "gift" {
		req.Credit = ledger.CreditGift
		exp, err := time.Parse(time.DateOnly, f.Get("expires"))
		if err != nil {
			o.done(w, r, "", errors.New("expires: gift credit needs an expiry date (YYYY-MM-DD)"))
			return
		}
		req.ExpiresAtNanos = exp.UnixNano()
	}
	if req.OrderID == "" {
		req.OrderID = "console_" + ids.RandomBase62(20)
	}
	e, created, err := o.cfg.Books.TopUp(req)
	notice := "Topped up " + money.Format(e.Amount) + " credits (order " + req.OrderID + ")."
	if err == nil && !created {
		notice = "Order " + req.OrderID + " was credited before; nothing more was credited."
	}
	o.done(w, r, notice, err)
}

func (o *operator) adjust(w http.ResponseWriter, r *http.Request) {
	amount, err := money.Parse(strings.TrimSpace(r.PostForm.Get("amount")))
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	switch {
	case err != nil || amount == 0:
		err = errors.New("amount: a non-zero number of credits, negative to take credit away")
	case reason == "":
		err = errors.New("reason: required")
	}
	if err == nil {
		_, _, err = o.cfg.Books.Adjust(ledger.AdjustRequest{Account: r.PathValue("id"), Amount: amount, Reason: reason,
			IdempotencyKey: r.PostForm.Get("idempotency_key"), Actor: actorOf(r)})
	}
	o.done(w, r, "Adjusted by "+money.Format(amount)+" credits.", err)
}

func (o *operator) freeze(w http.ResponseWriter, r *http.Request) {
	o.done(w, r, "Account frozen: its calls are refused.", o.cfg.Books.SetFrozen(r.PathValue("id"), true, actorOf(r)))
}

func (o *operator) unfreeze(w http.ResponseWriter, r *http.Request) {
	o.done(w, r, "Account unfrozen.", o.cfg.Books.SetFrozen(r.PathValue("id"), false, actorOf(r)))
}

func (o *operator) confirmClose(w http.ResponseWriter, r *http.Request) {
	a, err := o.cfg.Books.Account(r.PathValue("id"))
	if err != nil {
		o.fail(w, r, http.StatusNotFound, "No such account.")
		return
	}
	o.render(w, r, http.StatusOK, "o_close.html", page{Title: "Close account " + a.ID, Nav: "accounts",
		Data: struct {
			Account ledger.AccountInfo
			Keep    bool
		}{a, o.cfg.KeepCreditOnClose}})
}

func (o *operator) closeAccount(w http.ResponseWriter, r *http.Request) {
	_, err := admin.CloseAccount(o.cfg.Books, r.PathValue("id"), actorOf(r), o.cfg.KeepCreditOnClose)
	o.done(w, r, "Account closed: its keys are revoked and its users cannot sign in.", err)
}

func (o *operator) invite(w http.ResponseWriter, r *http.Request) {
	inv, link, mailed, err := admin.InviteCustomer(r.Context(), o.cfg.Books, o.users, o.cfg.Notifier, r.PathValue("id"),
		strings.TrimSpace(r.PostForm.Get("email")), actorOf(r), o.cfg.CustomerConsoleURL)
	if err != nil {
		o.renderAccount(w, r, http.StatusBadRequest, page{Problem: strings.TrimPrefix(strings.TrimPrefix(err.Error(), "access: "), "ledger: ")}, "")
		return
	}
	notice := "Invitation for " + inv.Email + " made; send them this link (valid 7 days, once)."
	if mailed {
		notice = "Invitation for " + inv.Email + " made and mailed to them; the link is also here (valid 7 days, once)."
	}
	o.renderAccount(w, r, http.StatusCreated, page{Notice: notice}, link)
}
