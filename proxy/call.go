package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy/openai"
	"github.com/tollgate/tollgate/proxy/upstream"
	"github.com/tollgate/tollgate/proxy/views"
	"github.com/valyala/fasthttp"
)

// call is the state of one POST /v1/messages from authentication to
// settlement. It is pooled: everything it owns is reset between calls. Its
// streaming reply is the call itself, as the io.Reader fasthttp copies to the
// client (ctx.Response.SetBodyStream), so that every upstream read is metered
// in the goroutine that forwards it, with no pipe and no extra goroutine.
//
// Lifetime: acquired by the handler; released by the handler for replies
// without a stream, or, once fasthttp has finished with the stream, by
// CloseWithError, or by the drain that took over after the client left.
type call struct {
	g *Gateway

	// The upstream exchange's objects, reused across calls.
	upstreamRequest fasthttp.Request
	upstreamHeader  fasthttp.ResponseHeader
	upstreamBody    upstream.Body
	// es translates and meters a bedrock upstream's event stream.
	bedrock upstream.BedrockStream
	obs     meter.Observer
	// inspected is the inspected request. It is refilled by every inspection; it
	// outlives a call only so that the next inspection can reuse its model
	// string: nothing reads it before InspectRequest ran.
	inspected meter.Request
	// probe peeks at the client's socket at the end of a reply.
	probe clientProbe
	// chatStream translates the stream of an OpenAI-front call.
	chatStream chatStream
	// aborted is set when shutdown cut the upstream off.
	aborted atomic.Bool
	bufs    callBuffers

	callState
}

// callState is everything of one call that starts from zero. releaseCall
// resets it as a whole, so that no field of a call can leak into the next.
type callState struct {
	start time.Time
	// requestID is allocated per call: the ledger keeps it as the key of the
	// open hold.
	requestID string
	// front is the client API the call came in on; chat is what the OpenAI
	// front's request asked of the reply.
	front    ledger.Front
	chat     openai.Options
	key      *ledger.Key
	settings ledger.AccountSettings
	// cat is the catalogue the call started with; model is its model once
	// the request named a known one; served is the model the settlement
	// billed the reply at (another one after a server-side fallback).
	cat           *meter.Catalogue
	model, served *meter.Model
	// up is the upstream of the current attempt, then the one that served.
	up *upstream.Upstream
	// routes are the candidate upstreams in the order to try them (route.go).
	routes [upstream.MaxRoutes]upstream.Route
	routeN int

	holdNanos int64
	held      bool
	// holdCommit is waited for before the client sees any of the reply.
	holdCommit ledger.Commit
	// inflight is set while the call counts in Gateway.inflight.
	inflight bool
	// bodySlot is the request-body bytes the call holds of the gateway-wide
	// bound (0 when none).
	bodySlot int64
	// limits is what the call took from its rate limits.
	limits admission

	// bodyOpen is true while the upstream reply is being read.
	bodyOpen bool
	// tracked is set while the call is in Gateway.active, from the hold to
	// its end, so that shutdown can cut it off.
	tracked bool
	// bedrockStream is set while bedrock is the stream's source instead of
	// upstreamBody.
	bedrockStream bool
	// clientConn is the client's connection while the reply streams;
	// nothingWritten is set until the stream's first bytes go to it.
	clientConn     net.Conn
	nothingWritten bool
	phase          streamPhase
	// pending is what remains to be returned to the client after the
	// settlement: the final event, or the error event Tollgate appends.
	pending []byte
	// poisoned is set after a recovered panic: the call is not pooled again.
	poisoned bool
	// readInFlight is what the current Read has read into its buffer, for a
	// panic to hand on.
	readInFlight int

	record ledger.CallRecord
}

// callBuffers are the byte buffers a call reuses.
type callBuffers struct {
	body     []byte // the upstream request body, or the upstream's reply
	beta     []byte
	digest   []byte
	upReqID  []byte
	pending  []byte
	header   []byte
	uri      []byte
	request  []byte // the client's request body (the OpenAI front: its translation)
	chat     []byte // the OpenAI front: the client's chat completions body
	attempts []ledger.Attempt
}

// maxPooledBuffer bounds a buffer kept in a pooled call: a rare huge body
// does not stay in memory for good.
const maxPooledBuffer = 1 << 20

func (b *callBuffers) reset() {
	trim := func(p *[]byte) {
		if cap(*p) > maxPooledBuffer {
			*p = nil
		}
		*p = (*p)[:0]
	}
	for _, p := range [...]*[]byte{&b.body, &b.beta, &b.digest, &b.upReqID, &b.pending, &b.header, &b.uri, &b.request, &b.chat} {
		trim(p)
	}
	b.attempts = b.attempts[:0]
}

type streamPhase uint8

const (
	// phaseStream: forwarding and metering upstream bytes.
	phaseStream streamPhase = iota
	// phaseSettled: the call is settled; pending bytes go out, then the rest
	// of the upstream stream, if any, unmetered.
	phaseSettled
	// phaseDone: everything was returned.
	phaseDone
)

func (g *Gateway) acquireCall() *call {
	c := g.callPool.Get().(*call)
	c.g = g
	return c
}

// releaseCall resets c and returns it to the pool; c must not be used after.
func (g *Gateway) releaseCall(c *call) {
	c.upstreamRequest.Reset()
	c.upstreamHeader.Reset()
	c.upstreamBody.Reset()
	if c.bedrockStream {
		c.bedrock.Release()
	}
	c.limits.release()
	g.releaseBodySlot(c)
	if c.poisoned {
		return // its state is unknown after a panic: let it go
	}
	c.aborted.Store(false)
	c.bufs.attempts = c.record.Attempts[:0]
	c.bufs.reset()
	c.callState = callState{record: ledger.CallRecord{Attempts: c.bufs.attempts}}
	g.callPool.Put(c)
}

// end ends a call that holds nothing any more: it leaves the gateway's
// in-flight count and goes back to the pool.
func (c *call) end() {
	if c.tracked {
		c.tracked = false
		c.g.untrack(c)
	}
	if c.inflight {
		c.inflight = false
		c.g.inflight.Done()
	}
	c.g.releaseCall(c)
}

// Read forwards the upstream stream to the client, metering each chunk. When
// a chunk carries the final event (message_stop or error), everything before
// that event is returned at once, the call is settled and synced, and only
// then the final event goes out. When the upstream fails or falls silent,
// the call is settled and an error event is appended.
func (c *call) Read(p []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.streamPanicked(r)
			// What was read (and metered, so charged) goes out; the
			// error event follows on the next read.
			n, err = c.readInFlight, nil
		}
		c.readInFlight = 0
	}()
	for {
		switch c.phase {
		case phaseStream:
			testHook(stageStream)
			n, err := c.readMetered(p)
			c.readInFlight = n
			if n > 0 {
				if c.record.TTFBMs == 0 {
					c.record.TTFBMs = max(1, time.Since(c.start).Milliseconds())
					upstreamTTFB.UpdateDuration(c.start)
				}
				if c.obs.Result().End == meter.EndCutOff {
					c.nothingWritten = false
					return n, nil
				}
				cut := lastEventStart(p[:n])
				c.readInFlight = cut // the final event waits for the settlement
				if r := c.obs.Result(); r.End == meter.EndError {
					// The upstream's error event carries its own request ID
					// and wording: the client gets Tollgate's.
					c.pending = upstream.AppendOwnErrorEvent(c.bufs.pending[:0], r.ErrorType, c.requestID)
				} else {
					c.pending = append(c.bufs.pending[:0], p[cut:n]...)
				}
				c.bufs.pending = c.pending
				c.finishStream()
				c.phase = phaseSettled
				if cut > 0 {
					return cut, nil
				}
				continue
			}
			if err != nil {
				c.failStream(err)
				c.phase = phaseSettled
				continue
			}
			return 0, nil
		case phaseSettled:
			if len(c.pending) > 0 {
				n := copy(p, c.pending)
				c.pending = c.pending[n:]
				return n, nil
			}
			if !c.bodyOpen {
				c.phase = phaseDone
				continue
			}
			n, err := c.readRest(p)
			if err != nil {
				c.phase = phaseDone
			}
			if n > 0 || err == nil {
				return n, nil
			}
		case phaseDone:
			return 0, io.EOF
		}
	}
}

// readMetered reads the next bytes of the client's stream and meters them:
// the upstream's SSE as it is, or a bedrock event stream translated (which
// meters as it decodes).
func (c *call) readMetered(p []byte) (int, error) {
	if c.bedrockStream {
		return c.bedrock.Read(p)
	}
	n, err := c.upstreamBody.Read(p)
	c.obs.Write(p[:n])
	return n, err
}

// readRest reads what follows the final event, unmetered.
func (c *call) readRest(p []byte) (int, error) {
	if c.bedrockStream {
		return c.bedrock.Read(p)
	}
	return c.upstreamBody.Read(p)
}

// CloseWithError is called by fasthttp once it stopped writing the stream:
// after the end, or because writing to the client failed. A call not yet
// settled then lost its client.
func (c *call) CloseWithError(error) error {
	defer func() {
		if r := recover(); r != nil {
			c.g.logPanic("the end of a stream", c.requestID, r)
			c.poisoned = true
			c.resolveAfterPanic(true)
			c.finish()
		}
	}()
	if c.phase == phaseStream {
		c.clientLeft()
		return nil
	}
	c.finish()
	return nil
}

// finish releases the upstream connection and the call.
func (c *call) finish() {
	c.upstreamBody.Close()
	c.end()
}

// abortUpstream interrupts the upstream read (shutdown). Safe to call from
// another goroutine: fasthttp's stream close interrupts a blocked read.
func (c *call) abortUpstream() {
	c.aborted.Store(true)
	c.upstreamBody.Abort()
}

// cutOff reports whether shutdown cut the call off: it then ends by the
// recovery policy, whatever the upstream did.
func (c *call) cutOff() bool { return c.aborted.Load() || c.g.shuttingDown.Load() }

// finishStream settles a stream whose final event was just read.
func (c *call) finishStream() {
	r := c.obs.Result()
	upstream.CountMetricsDisagreement(&r)
	outcome := ledger.OutcomeOK
	switch {
	case r.End == meter.EndError:
		outcome = ledger.OutcomeStreamError
	case c.nothingWritten && c.probe.clientGone(c.clientConn):
		// The whole reply arrived in one read after the client left: it
		// never got any of it, and no write could tell yet.
		outcome = ledger.OutcomeClientDisconnected
	}
	c.settle(outcome, &r, r.Usage, false)
}

// failStream settles a stream the upstream ended without a final event, or
// that timed out or was cut off, and prepares the error event to append.
func (c *call) failStream(err error) {
	r := c.obs.Result()
	usage := r.Usage
	typ, msg := views.APIError, "the upstream stream ended unexpectedly"
	outcome := ledger.OutcomeStreamError
	estimated := false
	switch {
	case c.cutOff():
		// Cut off by shutdown: the recovery policy decides (void by default).
		c.pending = views.AppendErrorEvent(c.bufs.pending[:0], views.APIError, "the gateway is shutting down", c.requestID)
		c.bufs.pending = c.pending
		c.upstreamBody.Close()
		c.bodyOpen = false
		c.recover()
		return
	case upstream.IsTimeout(err):
		outcome = ledger.OutcomeTimeout
		typ, msg = views.TimeoutError, "the upstream stopped sending"
	}
	// Silent, past the total timeout, or gone mid-reply: the upstream did
	// at least the work it streamed, which may be more than its last usage
	// event says.
	usage.OutputTokens, estimated = c.estimateOutput(&r)
	c.settle(outcome, &r, usage, estimated)
	c.pending = views.AppendErrorEvent(c.bufs.pending[:0], typ, msg, c.requestID)
	c.bufs.pending = c.pending
	c.upstreamBody.Close()
	c.bodyOpen = false
}

// clientLeft handles a client that went away mid-stream: by policy, drain
// the upstream to its final usage in the bounded pool, or (pool full, or
// policy abort) stop it and charge what was seen plus an estimate.
func (c *call) clientLeft() {
	if c.g.cfg.DisconnectPolicy == PolicyDrain {
		if err := c.g.drains.Submit(c.drain); err == nil {
			drainsStarted.Inc()
			return
		}
		drainsRefused.Inc()
	}
	c.upstreamBody.Close()
	r := c.obs.Result()
	usage := r.Usage
	usage.OutputTokens, _ = c.estimateOutput(&r)
	c.settle(ledger.OutcomeClientDisconnected, &r, usage, true)
	c.finish()
}

// estimateOutput is the output of a stream cut short: what the upstream
// last reported plus an estimate of what streamed after that report, never
// above max_tokens (no call produces more), nor below the report.
// estimated tells whether anything was added to the report.
func (c *call) estimateOutput(r *meter.StreamResult) (int64, bool) {
	reported := r.Usage.OutputTokens
	est := max(min(meter.EstimateOutputTokens(r), c.inspected.MaxTokens), reported)
	return est, est > reported
}

// recover ends a call cut off by shutdown by the recovery policy: void
// (nothing charged) or charge_hold, with outcome recovered.
func (c *call) recover() {
	if c.g.cfg.RecoveryPolicy == PolicyChargeHold {
		c.record.UsageEstimated = true
		c.settleAt(ledger.OutcomeRecovered, c.obs.Result().Usage, true, c.holdNanos)
		return
	}
	c.void(ledger.OutcomeRecovered, ledger.ReasonRecovered)
}

// drainBufPool holds the buffers drains read into.
var drainBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// drain reads the rest of the upstream reply, metering it, within the drain
// timeout, and settles at what the upstream reported.
func (c *call) drain() {
	defer func() {
		if r := recover(); r != nil {
			c.g.logPanic("a drain", c.requestID, r)
			c.poisoned = true
			c.resolveAfterPanic(true)
			c.finish()
		}
	}()
	c.upstreamBody.SetDeadlines(c.g.cfg.IdleTimeout, time.Now().Add(c.g.cfg.DrainTimeout))
	buf := drainBufPool.Get().(*[]byte)
	for c.obs.Result().End == meter.EndCutOff {
		_, err := c.readMetered(*buf)
		if err != nil {
			break
		}
	}
	drainBufPool.Put(buf)
	if c.cutOff() {
		c.recover()
		drainsFinished.Inc()
		c.finish()
		return
	}
	r := c.obs.Result()
	upstream.CountMetricsDisagreement(&r)
	usage := r.Usage
	estimated := false
	if r.End == meter.EndCutOff {
		usage.OutputTokens, estimated = c.estimateOutput(&r)
	}
	c.settle(ledger.OutcomeClientDisconnected, &r, usage, estimated)
	drainsFinished.Inc()
	c.finish()
}

// settle charges the call for its reply, with its call record, and waits
// for the settlement to be durable: u is the top-level usage to bill (as
// reported, or estimated when estimated), r what the meter saw of the
// reply (iterations, the serving model, a refusal). The modifiers the
// request asked for are billed where the upstream does not report them.
func (c *call) settle(outcome ledger.Outcome, r *meter.StreamResult, u meter.Usage, estimated bool) {
	var disagreed bool
	u.Modifiers, disagreed = meter.SettledModifiers(c.inspected.Modifiers, r)
	if disagreed {
		modifierDisagreements.Inc()
	}
	ch, err := c.cat.Charge(c.model, u, r, c.start, meter.Multiplier(c.settings.Multiplier))
	if err != nil {
		// Usage beyond any real call (an overflowing price): charge the hold.
		c.g.logger.Printf("request %s: cannot price usage %+v: %s; charging the hold", c.requestID, u, err)
		ch.Price = c.holdNanos
	}
	if ch.UnknownModels > 0 {
		unknownServingModels.Add(ch.UnknownModels)
	}
	if ch.Refused {
		refusalsUnbilled.Inc()
	}
	c.served = ch.Served
	c.settleAt(outcome, u, estimated, ch.Price)
}

// settleAt settles at price.
func (c *call) settleAt(outcome ledger.Outcome, u meter.Usage, estimated bool, price int64) {
	testHook(stageSettle)
	c.fillRecord(outcome, u, estimated)
	commit, err := c.g.ledger.Settle(c.requestID, price, &c.record)
	if errors.Is(err, ledger.ErrNoOpenHold) {
		err = c.settleLate(price)
	} else if err == nil {
		err = commit.Wait()
	}
	if err != nil {
		c.g.logger.Printf("request %s: cannot settle: %s", c.requestID, err)
	}
	c.held = false
	c.limits.settle(u.TotalInputTokens() + u.OutputTokens)
	c.limits.release()
	observeCall(modelLabel(c.model), outcome, c.record.Status, c.holdNanos, price)
	callDuration.UpdateDuration(c.start)
}

// settleLate records a settlement whose hold is gone (voided by the
// sweeper or by recovery after all): the charge becomes a negative
// adjustment keyed by the request, and the call record is kept, so that the
// work is neither lost nor charged twice.
func (c *call) settleLate(price int64) error {
	lateSettlements.Inc()
	c.record.Charged = price
	if _, err := c.g.ledger.RecordCall(&c.record); err != nil {
		return err
	}
	if price == 0 {
		return nil
	}
	_, _, err := c.g.ledger.Adjust(ledger.AdjustRequest{Account: c.key.AccountID, Amount: -price,
		Reason: "late settlement of " + c.requestID, RequestID: c.requestID, IdempotencyKey: "late:" + c.requestID, Actor: "gateway"})
	return err
}

// void ends the hold without a charge and records the call.
func (c *call) void(outcome ledger.Outcome, reason string) {
	c.fillRecord(outcome, meter.Usage{}, false)
	commit, err := c.g.ledger.Void(c.requestID, reason, &c.record)
	if err == nil {
		err = commit.Wait()
	}
	if err != nil {
		c.g.logger.Printf("request %s: cannot void: %s", c.requestID, err)
	}
	c.held = false
	c.limits.settle(0)
	c.limits.release()
	observeCall(modelLabel(c.model), outcome, c.record.Status, c.holdNanos, 0)
	callDuration.UpdateDuration(c.start)
}

func (c *call) fillRecord(outcome ledger.Outcome, u meter.Usage, estimated bool) {
	r := &c.record
	r.Outcome = outcome
	if m := c.billedModel(); m != nil {
		r.ModelID = m.ID
	}
	r.Counts = u.Counts
	r.UsageEstimated = estimated
	r.DurationMs = max(r.TTFBMs, time.Since(c.start).Milliseconds())
	r.UpstreamRequestID = b2s(c.bufs.upReqID)
	if c.model != nil && c.up != nil && outcome != ledger.OutcomeUpstreamError {
		if cost, err := c.model.Cost(c.up.Kind(), u, c.start); err == nil {
			r.UpstreamCost = cost
		}
	}
}

// billedModel is the model the call is recorded under: the one that served
// the reply, else the one requested.
func (c *call) billedModel() *meter.Model {
	if c.served != nil {
		return c.served
	}
	return c.model
}

// lastEventStart returns the offset in chunk where its last event begins:
// just after the last blank line before the chunk's end (LF or CRLF framing),
// or 0 when the chunk holds a single (or the end of a split) event.
func lastEventStart(chunk []byte) int {
	end := len(chunk)
	// Skip the terminator of the final event itself.
	for end > 0 && (chunk[end-1] == '\n' || chunk[end-1] == '\r') {
		end--
	}
	for i := end - 1; i > 0; i-- {
		if chunk[i] == '\n' && (chunk[i-1] == '\n' || (chunk[i-1] == '\r' && i > 1 && chunk[i-2] == '\n')) {
			return i + 1
		}
	}
	return 0
}
