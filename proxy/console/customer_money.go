package console

import (
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/views"
)

// The customer's money pages: the overview, statements and prices.

// expiryWarning is how far ahead the overview warns of expiring credit.
const expiryWarning = 30 * 24 * time.Hour

type overviewData struct {
	Account ledger.AccountInfo
	// Expiring is the credit that expires within expiryWarning.
	Expiring               []ledger.CreditInfo
	SpendToday, SpendMonth int64
	Chart                  template.HTML
}

func (c *customer) overview(w http.ResponseWriter, r *http.Request) {
	a, err := c.cfg.Books.Account(accountOf(r))
	if err != nil {
		c.fail(w, r, http.StatusNotFound, "Your account was not found.")
		return
	}
	now := time.Now().UTC()
	d := overviewData{Account: a}
	for _, b := range a.Credits {
		if b.ExpiresAtNanos != 0 && b.Remaining > 0 && b.ExpiresAtNanos-now.UnixNano() < int64(expiryWarning) {
			d.Expiring = append(d.Expiring, b)
		}
	}
	days, err := dailySpend(c.cfg.Books, a.ID, now, 30)
	if err != nil {
		c.logger.Printf("console: cannot compute daily spend: %s", err)
		c.fail(w, r, http.StatusInternalServerError, "Cannot compute your spend now.")
		return
	}
	d.SpendToday = days[len(days)-1].total()
	month, err := c.cfg.Books.Statement(a.ID, time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).UnixNano(), now.UnixNano()+1)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Cannot compute your spend now.")
		return
	}
	d.SpendMonth = month.Charges
	d.Chart = spendChart(days)
	c.render(w, r, http.StatusOK, "c_overview.html", page{Title: "Overview", Nav: "overview", Data: d})
}

// statementData is a statement page: the period, its statement (the same
// figures as the admin API's) and its entries.
type statementData struct {
	From, To  string
	Statement views.Statement
	Entries   []ledger.Entry
	// More says the period has more entries than the page shows.
	More bool
}

// maxStatementEntries bounds the entries a statement page lists.
const maxStatementEntries = 500

func (c *customer) statement(w http.ResponseWriter, r *http.Request) {
	st, from, to, ok := c.periodStatement(w, r)
	if !ok {
		return
	}
	entries, more, err := entriesBetween(c.cfg.Books, accountOf(r), from, to, maxStatementEntries)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Cannot list the entries now.")
		return
	}
	d := statementData{From: dateOf(from), To: dateOf(to - 1), Statement: st, Entries: entries, More: more}
	c.render(w, r, http.StatusOK, "c_statement.html", page{Title: "Statement", Nav: "statement", Data: d})
}

func (c *customer) statementCSV(w http.ResponseWriter, r *http.Request) {
	from, to, ok := c.period(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+views.CSVFileName(accountOf(r))+`"`)
	if err := views.WriteCallsCSV(w, c.cfg.Books, accountOf(r), from, to, false); err != nil {
		c.logger.Printf("console: cannot write a statement's calls: %s", err)
	}
}

func (c *customer) statementJSON(w http.ResponseWriter, r *http.Request) {
	st, _, _, ok := c.periodStatement(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="statement-`+accountOf(r)+`.json"`)
	writeJSONFile(w, st)
}

// periodStatement is the statement of the request's period (the same
// figures as the admin API's); ok is false after it answered.
func (c *customer) periodStatement(w http.ResponseWriter, r *http.Request) (st views.Statement, from, to int64, ok bool) {
	if from, to, ok = c.period(w, r); !ok {
		return st, 0, 0, false
	}
	st, err := views.NewStatement(c.cfg.Books, accountOf(r), from, to)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Cannot compute the statement now.")
		return st, 0, 0, false
	}
	return st, from, to, true
}

// period reads a statement's period from the dates from and to (both
// days included, UTC); the default is this month so far.
func (c *customer) period(w http.ResponseWriter, r *http.Request) (from, to int64, ok bool) {
	now := time.Now().UTC()
	q := r.URL.Query()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	var err error
	if s := q.Get("from"); s != "" {
		start, err = time.Parse(time.DateOnly, s)
	}
	if s := q.Get("to"); err == nil && s != "" {
		end, err = time.Parse(time.DateOnly, s)
	}
	if err != nil || end.Before(start) || end.Sub(start) > 366*24*time.Hour {
		c.fail(w, r, http.StatusBadRequest, "A period is two dates (YYYY-MM-DD), the second not before the first, at most a year apart.")
		return 0, 0, false
	}
	return start.UnixNano(), end.AddDate(0, 0, 1).UnixNano(), true
}

// entriesScan bounds the entries read to find a period's (they are read
// newest first, so an old period of a busy account would read them all);
// the statement's figures and downloads do not depend on it.
const entriesScan = 20_000

// entriesBetween lists account's entries of [from, to), newest first, at
// most limit of them; more says some were left out (or not looked for).
func entriesBetween(l Books, account string, from, to int64, limit int) (out []ledger.Entry, more bool, err error) {
	before := uint64(0)
	for read := 0; ; read += 1000 {
		if read >= entriesScan {
			return out, true, nil
		}
		page, more, err := l.Entries(account, before, 1000)
		if err != nil {
			return nil, false, err
		}
		for _, e := range page {
			if e.TimeNanos < from {
				return out, false, nil
			}
			if e.TimeNanos >= to {
				continue
			}
			if len(out) == limit {
				return out, true, nil
			}
			out = append(out, e)
		}
		if !more || len(page) == 0 {
			return out, false, nil
		}
		before = page[len(page)-1].ID
	}
}

// modelPrice is one model's row on the prices page.
type modelPrice struct {
	ID, DisplayName  string
	Input, Output    int64
	Write5m, Write1h int64
	CacheRead        int64
	// Scheduled are the price versions still to come.
	Scheduled []scheduledPrice
	Retires   string
	Successor string
}

type scheduledPrice struct {
	Effective     string
	Input, Output int64
	CacheRead     int64
}

func (c *customer) prices(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	var rows []modelPrice
	for _, m := range c.cfg.Served(now) {
		cur := m.PriceAt(now).Rates
		row := modelPrice{ID: m.ID, DisplayName: m.DisplayName, Input: cur.Input, Output: cur.Output,
			Write5m: cur.CacheWrite5m, Write1h: cur.CacheWrite1h, CacheRead: cur.CacheRead, Successor: m.Successor}
		for _, v := range m.Prices {
			if v.Effective.After(now) {
				row.Scheduled = append(row.Scheduled, scheduledPrice{Effective: v.Effective.UTC().Format(time.DateOnly),
					Input: v.Rates.Input, Output: v.Rates.Output, CacheRead: v.Rates.CacheRead})
			}
		}
		if retires := c.cfg.Retirement(m, now); !retires.IsZero() {
			row.Retires = retires.UTC().Format(time.DateOnly)
		}
		rows = append(rows, row)
	}
	c.render(w, r, http.StatusOK, "c_prices.html", page{Title: "Prices", Nav: "prices", Data: rows})
}

func dateOf(nanos int64) string { return time.Unix(0, nanos).UTC().Format(time.DateOnly) }

// atoiOr parses a form's whole number, def when empty.
func atoiOr(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	return strconv.ParseInt(s, 10, 64)
}
