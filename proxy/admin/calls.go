package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/views"
)

// calls is GET /admin/v1/calls: one call by request_id, an account's calls
// newest first (account), or every account's by the time they ended; each
// optionally within since and until.
func (s *Server) calls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := views.ParseLimit(q.Get("limit"), 100, 1000)
	if err != nil {
		badRequest(w, err)
		return
	}
	if id := q.Get("request_id"); id != "" {
		s.callByRequestID(w, id)
		return
	}
	var f ledger.CallFilter
	if f.SinceNanos, err = optionalTime(q, "since"); err == nil {
		f.UntilNanos, err = optionalTime(q, "until")
	}
	if err != nil {
		badRequest(w, err)
		return
	}
	var page []views.AdminCall
	var next string
	if account := q.Get("account"); account != "" {
		page, next, err = s.accountCalls(account, f, q.Get("cursor"), limit)
	} else {
		page, next, err = s.callsByTime(f, q.Get("cursor"), limit)
	}
	switch {
	case errors.Is(err, errBadCursor):
		badRequest(w, err)
	case err != nil:
		s.cfg.Logger.Printf("cannot read calls: %s", err)
		writeError(w, http.StatusInternalServerError, views.APIError, "cannot read calls")
	default:
		writeJSON(w, http.StatusOK, views.NewList(page, next))
	}
}

var errBadCursor = errors.New("cursor: not a cursor this API returned")

func (s *Server) callByRequestID(w http.ResponseWriter, id string) {
	c, err := s.cfg.Books.CallByRequestID(id)
	if err != nil {
		writeError(w, http.StatusInternalServerError, views.APIError, "cannot read calls")
		return
	}
	page := []views.AdminCall{}
	if c != nil {
		page = append(page, views.NewAdminCall(c))
	}
	writeJSON(w, http.StatusOK, views.NewList(page, ""))
}

// accountCalls pages through one account's calls by its sequence numbers.
func (s *Server) accountCalls(account string, f ledger.CallFilter, cursor string, limit int) ([]views.AdminCall, string, error) {
	before, err := views.ParseSeqCursor(cursor)
	if err != nil {
		return nil, "", errBadCursor
	}
	calls, next, err := s.cfg.Books.Calls(account, f, before, limit)
	if err != nil {
		return nil, "", err
	}
	page := make([]views.AdminCall, 0, len(calls))
	for _, c := range calls {
		page = append(page, views.NewAdminCall(c))
	}
	return page, views.SeqCursor(next), nil
}

// callsByTime pages through every account's calls by the time they ended;
// its cursor is "<time>-<seq>" of the next call.
func (s *Server) callsByTime(f ledger.CallFilter, cursor string, limit int) ([]views.AdminCall, string, error) {
	var from ledger.CallCursor
	if cursor != "" {
		t, seq, found := strings.Cut(cursor, "-")
		tv, err1 := strconv.ParseInt(t, 10, 64)
		sv, err2 := strconv.ParseUint(seq, 10, 64)
		if !found || err1 != nil || err2 != nil {
			return nil, "", errBadCursor
		}
		from = ledger.CallCursor{TimeNanos: tv, Seq: sv}
	}
	until := f.UntilNanos
	if until == 0 {
		until = 1<<63 - 1
	}
	// Calls are indexed by the time they ended; a call ends after it
	// starts, so the index bounds are widened on the late side only.
	calls, n, more, err := s.cfg.Books.CallsByTime(f.SinceNanos, until, from, limit)
	if err != nil {
		return nil, "", err
	}
	page := make([]views.AdminCall, 0, len(calls))
	for _, c := range calls {
		page = append(page, views.NewAdminCall(c))
	}
	next := ""
	if more {
		next = strconv.FormatInt(n.TimeNanos, 10) + "-" + strconv.FormatUint(n.Seq, 10)
	}
	return page, next, nil
}

// optionalTime reads an RFC 3339 query parameter (0 when absent).
func optionalTime(q url.Values, name string) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, fmt.Errorf("%s: %.64q is not an RFC 3339 time", name, v)
	}
	return t.UnixNano(), nil
}
