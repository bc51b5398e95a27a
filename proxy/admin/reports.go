package admin

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/views"
)

// statement is an account's statement for a period (from, to), as JSON
// or, with format=csv, as the period's call records with the upstream
// columns.
func (s *Server) statement(w http.ResponseWriter, r *http.Request) {
	account, q := r.PathValue("id"), r.URL.Query()
	from, to, err := views.ParsePeriod(q.Get("from"), q.Get("to"), time.Now())
	if err != nil {
		badRequest(w, err)
		return
	}
	if _, err := s.cfg.Ledger.Settings(account); err != nil {
		ledgerError(w, err)
		return
	}
	if q.Get("format") == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+views.CSVFileName(account)+`"`)
		if err := views.WriteCallsCSV(w, s.cfg.Books, account, from, to, true); err != nil {
			s.cfg.Logger.Printf("cannot list calls for a statement: %s", err)
		}
		return
	}
	st, err := views.NewStatement(s.cfg.Books, account, from, to)
	if err != nil {
		s.cfg.Logger.Printf("cannot compute a statement: %s", err)
		writeError(w, http.StatusInternalServerError, views.APIError, "cannot compute the statement")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// expiringAccount is an account with credit expiring soon: the total, the
// soonest expiry, and each bucket.
type expiringAccount struct {
	AccountID string           `json:"account_id"`
	Email     string           `json:"email"`
	Amount    views.Amount     `json:"amount"`
	ExpiresAt views.Time       `json:"expires_at"`
	Credits   []expiringCredit `json:"credits"`
}

type expiringCredit struct {
	Kind      string       `json:"kind"`
	Amount    views.Amount `json:"amount"`
	ExpiresAt views.Time   `json:"expires_at"`
}

// expiring is GET /admin/v1/expiring?within=720h: the accounts with
// credit expiring inside the window, soonest first.
func (s *Server) expiring(w http.ResponseWriter, r *http.Request) {
	within := 30 * 24 * time.Hour
	if v := r.URL.Query().Get("within"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			badRequest(w, fmt.Errorf("within: %.64q is not a positive duration such as \"720h\"", v))
			return
		}
		within = d
	}
	limit := time.Now().Add(within).UnixNano()
	var out []expiringAccount
	err := s.cfg.Books.Accounts(func(a ledger.AccountInfo) {
		if ea, ok := expiringBy(a, limit); ok {
			out = append(out, ea)
		}
	})
	if err != nil {
		s.cfg.Logger.Printf("cannot list expiring credit: %s", err)
		writeError(w, http.StatusServiceUnavailable, views.OverloadedError, "cannot read the accounts now; try again shortly")
		return
	}
	slices.SortFunc(out, func(a, b expiringAccount) int {
		return cmp.Or(cmp.Compare(a.ExpiresAt, b.ExpiresAt), strings.Compare(a.AccountID, b.AccountID))
	})
	writeJSON(w, http.StatusOK, views.NewList(out, ""))
}

// expiringBy is a's credit that expires by limit (ok false when none).
func expiringBy(a ledger.AccountInfo, limit int64) (ea expiringAccount, ok bool) {
	for _, c := range a.Credits {
		if c.ExpiresAtNanos == 0 || c.ExpiresAtNanos > limit || c.Remaining <= 0 {
			continue
		}
		if !ok {
			ea, ok = expiringAccount{AccountID: a.ID, Email: a.Email, ExpiresAt: views.Time(c.ExpiresAtNanos)}, true
		}
		ea.Amount += views.Amount(c.Remaining)
		ea.Credits = append(ea.Credits, expiringCredit{Kind: c.Credit.String(), Amount: views.Amount(c.Remaining), ExpiresAt: views.Time(c.ExpiresAtNanos)})
	}
	return ea, ok
}
