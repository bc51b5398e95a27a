package proxy

import (
	"errors"
	"time"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// The customer's read routes: balance, calls, statement (each limited by
// the key's read bucket, readLimited) and the models (models.go).

// books is the ledger, or in cluster mode the books every node shares.
func (g *Gateway) books() SharedBooks {
	if g.cfg.Credit != nil {
		return g.cfg.Credit
	}
	return g.ledger
}

// writeJSON sends v as a JSON response with status.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := sonic.Marshal(v)
	if err != nil {
		writeError(ctx, fasthttp.StatusInternalServerError, views.APIError, "cannot encode the response")
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// pageLimit reads the limit parameter (default def, 1 to max); ok is false
// after it wrote a 400.
func pageLimit(ctx *fasthttp.RequestCtx, def, max int) (int, bool) {
	n, err := views.ParseLimit(string(ctx.QueryArgs().Peek("limit")), def, max)
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, views.InvalidRequestError, err.Error())
		return 0, false
	}
	return n, true
}

// handleBalance is GET /v1/balance.
func (g *Gateway) handleBalance(ctx *fasthttp.RequestCtx, k *ledger.Key) {
	a, err := g.books().Account(k.AccountID)
	if err != nil && !errors.Is(err, ledger.ErrUnknownAccount) {
		g.logger.Printf("cannot read account %q's balance: %s", k.AccountID, err)
		writeError(ctx, fasthttp.StatusServiceUnavailable, views.OverloadedError, "the balance cannot be read now; try again shortly")
		return
	}
	if err != nil {
		writeError(ctx, fasthttp.StatusNotFound, views.NotFoundError, "account not found")
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, views.NewBalance(a))
}

// handleCalls is GET /v1/calls: the key's account's call records, newest
// first, without the operator's fields.
func (g *Gateway) handleCalls(ctx *fasthttp.RequestCtx, k *ledger.Key) {
	limit, ok := pageLimit(ctx, 100, 1000)
	if !ok {
		return
	}
	before, err := views.ParseSeqCursor(string(ctx.QueryArgs().Peek("cursor")))
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, views.InvalidRequestError, err.Error())
		return
	}
	calls, next, err := g.books().Calls(k.AccountID, ledger.CallFilter{}, before, limit)
	if err != nil {
		g.logger.Printf("cannot list calls: %s", err)
		writeError(ctx, fasthttp.StatusInternalServerError, views.APIError, "cannot list calls")
		return
	}
	page := make([]views.Call, 0, len(calls))
	for _, c := range calls {
		page = append(page, views.NewCall(c))
	}
	writeJSON(ctx, fasthttp.StatusOK, views.NewList(page, views.SeqCursor(next)))
}

// handleStatement is GET /v1/statement: the key's account's statement for
// a period (from, to), as JSON or, with format=csv, as the period's calls.
func (g *Gateway) handleStatement(ctx *fasthttp.RequestCtx, k *ledger.Key) {
	args := ctx.QueryArgs()
	from, to, err := views.ParsePeriod(string(args.Peek("from")), string(args.Peek("to")), time.Now())
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, views.InvalidRequestError, err.Error())
		return
	}
	if string(args.Peek("format")) == "csv" {
		ctx.SetContentType("text/csv; charset=utf-8")
		ctx.Response.Header.Set("Content-Disposition", `attachment; filename="`+views.CSVFileName(k.AccountID)+`"`)
		if err := views.WriteCallsCSV(ctx, g.books(), k.AccountID, from, to, false); err != nil {
			g.logger.Printf("cannot list calls for a statement: %s", err)
		}
		return
	}
	s, err := views.NewStatement(g.books(), k.AccountID, from, to)
	if err != nil {
		g.logger.Printf("cannot compute a statement: %s", err)
		writeError(ctx, fasthttp.StatusInternalServerError, views.APIError, "cannot compute the statement")
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, s)
}
