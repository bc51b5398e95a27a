package proxy

import (
	"runtime/debug"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// A panic in a handler is a bug of Tollgate's, but it must not stop the
// process: fasthttp does not recover handler panics, and every other
// customer's running call would be cut off, and voided on restart. So the
// client handlers, the streaming reader, the drains and the admin handler
// recover: they log the panic with the request ID and its stack, answer 500
// api_error (or append an error event to a started stream), and end the
// call's hold exactly once. A call that panicked is never pooled again.

// panicsRecovered counts the recoveries of both APIs (the admin API adds
// its own to the same counter).
var panicsRecovered = metrics.GetOrCreateCounter(`tollgate_panics_recovered_total`)

// callStage names the points of a call where tests inject a panic.
type callStage uint8

const (
	stageAdmit   callStage = iota + 1 // the request inspected, before the hold
	stageForward                      // the hold taken, before the upstream is called
	stageStream                       // a streamed read of the reply
	stageSettle                       // before the settlement is recorded
	stageRead                         // a read route (models, balance, calls, statement), authenticated
)

// panicHook is nil in production; tests set it (before any call runs) to
// inject panics at the stages above.
var panicHook func(callStage)

func testHook(s callStage) {
	if panicHook != nil {
		panicHook(s)
	}
}

// logPanic logs a recovered panic with what identifies it.
func (g *Gateway) logPanic(where, requestID string, p any) {
	panicsRecovered.Inc()
	g.logger.Printf("BUG: panic in %s, request %s: %v\n%s", where, requestID, p, debug.Stack())
}

// panicked ends a call whose handler panicked before its reply streamed:
// the client gets 500 api_error, and a hold is voided (no byte of the reply
// reached the client).
func (c *call) panicked(ctx *fasthttp.RequestCtx, p any) {
	g := c.g
	g.logPanic("the messages handler", c.requestID, p)
	c.poisoned = true
	ctx.Response.Header.Set(hdrRequestID, c.requestID)
	writeError(ctx, fasthttp.StatusInternalServerError, views.APIError, "internal error")
	ctx.SetConnectionClose()
	c.record.Status = fasthttp.StatusInternalServerError
	if !c.resolveAfterPanic(false) && c.key != nil {
		// No hold ended with a record: record the call as rejected, as
		// every authenticated call leaves one.
		c.record.Outcome, c.record.DurationMs = ledger.OutcomeRejected, time.Since(c.start).Milliseconds()
		if _, err := g.ledger.RecordCall(&c.record); err != nil {
			g.logger.Printf("request %s: cannot record the call after a panic: %s", c.requestID, err)
		}
	}
	c.end()
}

// streamPanicked ends a streaming call whose reader panicked: the client,
// which received part of the reply, is charged what it was sent (as for a
// stream cut short) and gets an error event appended.
func (c *call) streamPanicked(p any) {
	c.g.logPanic("the stream reader", c.requestID, p)
	c.poisoned = true
	c.resolveAfterPanic(true)
	c.pending = views.AppendErrorEvent(c.bufs.pending[:0], views.APIError, "internal error", c.requestID)
	c.bufs.pending = c.pending
	c.upstreamBody.Close()
	c.bodyOpen = false
	c.phase = phaseSettled
}

// resolveAfterPanic ends the call's hold, if it still has one, and reports
// whether it did: by a void, or (charge) by a settlement at the usage seen
// plus the estimate of the output streamed since, either with the call
// record. It calls the ledger directly, so that a panic in the call's own
// settlement path cannot recur here.
func (c *call) resolveAfterPanic(charge bool) bool {
	if !c.held {
		c.limits.release()
		return false
	}
	c.held = false
	g := c.g
	var commit ledger.Commit
	var err error
	if charge && c.model != nil {
		r := c.obs.Result()
		u := r.Usage
		u.OutputTokens, _ = c.estimateOutput(&r)
		ch, perr := c.cat.Charge(c.model, u, &r, c.start, meter.Multiplier(c.settings.Multiplier))
		if perr != nil {
			ch.Price = c.holdNanos
		}
		c.fillRecord(ledger.OutcomeStreamError, u, true)
		commit, err = g.ledger.Settle(c.requestID, ch.Price, &c.record)
	} else {
		c.record.Outcome = ledger.OutcomeRejected
		commit, err = g.ledger.Void(c.requestID, reasonInternalError, &c.record)
	}
	if err == nil {
		err = commit.Wait()
	}
	if err != nil {
		g.logger.Printf("request %s: cannot end the hold after a panic: %s", c.requestID, err)
	}
	c.limits.release()
	return true
}

// reasonInternalError is the void reason of a call a bug ended.
const reasonInternalError = "internal_error"
