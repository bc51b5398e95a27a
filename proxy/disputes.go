package proxy

import (
	"time"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy/ids"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// maxDisputeBody bounds the body of POST /v1/disputes.
const maxDisputeBody = 16 << 10

// handleFileDispute is POST /v1/disputes {"request_id", "reason",
// "dispute_id"?}: the key's account contests the charge of one of its
// calls, which must be younger than the dispute window when filed. The
// dispute_id, when given, makes the filing idempotent (a repeat answers 200
// with the first); otherwise one is made.
func (g *Gateway) handleFileDispute(ctx *fasthttp.RequestCtx, k *ledger.Key) {
	if ctx.Request.Header.ContentLength() > maxDisputeBody {
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, views.RequestTooLarge, "a dispute's body is at most 16 KiB")
		return
	}
	var b struct {
		RequestID string `json:"request_id"`
		Reason    string `json:"reason"`
		DisputeID string `json:"dispute_id"`
	}
	if err := sonic.Unmarshal(ctx.PostBody(), &b); err != nil || b.RequestID == "" || b.Reason == "" {
		writeError(ctx, fasthttp.StatusBadRequest, views.InvalidRequestError, "the body must be a JSON object with request_id and reason")
		return
	}
	if b.DisputeID == "" {
		b.DisputeID = "dsp_" + ids.RandomBase62(20)
	}
	if d, ok := g.books().Dispute(b.DisputeID); !ok || d.AccountID != k.AccountID {
		if msg, notFound := views.DisputeProblem(g.books(), k.AccountID, b.RequestID, g.cfg.DisputeWindow, time.Now()); msg != "" {
			status, typ := fasthttp.StatusConflict, views.ConflictError
			if notFound {
				status, typ = fasthttp.StatusNotFound, views.NotFoundError
			}
			writeError(ctx, status, typ, msg)
			return
		}
	}
	d, created, err := g.books().FileDispute(ledger.Dispute{ID: b.DisputeID, AccountID: k.AccountID, RequestID: b.RequestID, Reason: b.Reason})
	if err != nil {
		status, typ, msg := views.LedgerError(err)
		writeError(ctx, status, typ, msg)
		return
	}
	status := fasthttp.StatusOK
	if created {
		status = fasthttp.StatusCreated
	}
	writeJSON(ctx, status, views.NewDispute(d))
}

// handleDisputes is GET /v1/disputes: the account's disputes, oldest
// first, with their outcomes.
func (g *Gateway) handleDisputes(ctx *fasthttp.RequestCtx, k *ledger.Key) {
	list := g.books().Disputes(k.AccountID, nil)
	page := make([]views.Dispute, 0, len(list))
	for _, d := range list {
		page = append(page, views.NewDispute(d))
	}
	writeJSON(ctx, fasthttp.StatusOK, views.NewList(page, ""))
}
