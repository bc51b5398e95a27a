package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Limits and defaults of LoadConfig. Every load is bounded in time (at most
// MaxDuration plus one call's Timeout) and, optionally, in calls.
const (
	DefaultConcurrency = 64
	MaxConcurrency     = 10_000
	DefaultDuration    = 10 * time.Second
	MaxDuration        = time.Hour
	DefaultTimeout     = 30 * time.Second
	MaxTimeout         = 10 * time.Minute
	MaxRate            = 1_000_000
	// MaxReplyBytes bounds one reply the client reads; a longer one is cut
	// off and counted as ErrKindTooLarge.
	MaxReplyBytes = 64 << 20
	// DefaultProgressInterval is how often LoadConfig.Progress is called.
	DefaultProgressInterval = 500 * time.Millisecond
	// clientBufferBytes is each worker's read buffer and the client's
	// connection buffer size.
	clientBufferBytes = 16 << 10
)

// DefaultModel is the model of DefaultRequestBody: the gateway's catalogue
// maps it to the ID the built-in upstream answers with.
const DefaultModel = "claude-haiku-4-5"

// DefaultRequestBody is a streaming Messages request small enough that the
// request side costs little, with max_tokens 256 so that the gateway's hold
// is small against the accounts' credit.
func DefaultRequestBody() []byte {
	return []byte(`{"model":"` + DefaultModel + `","max_tokens":256,"stream":true,` +
		`"messages":[{"role":"user","content":"Say hello to the benchmark."}]}`)
}

// LoadConfig is one load: where to send it, how, and for how long.
type LoadConfig struct {
	// URL is the target's base URL, http://HOST:PORT with HOST a loopback
	// address or localhost; anything else is refused (ErrNotLoopback).
	URL string
	// MoreURLs are further targets serving the same accounts (the other
	// nodes of a cluster), each checked as URL is: calls go to URL and
	// MoreURLs in turn, as a round-robin balancer sends them, every key's
	// to each of them (loader.targetOf).
	MoreURLs []string
	// Path is the request path. Empty means /v1/messages.
	Path string
	// Keys are sent as x-api-key, one per call in turn. Empty sends none
	// (enough for the built-in upstream).
	Keys []string
	// Body is the request body, sent as application/json with
	// anthropic-version 2023-06-01. Nil means DefaultRequestBody().
	Body []byte
	// Concurrency is the number of clients in closed-loop mode, and the
	// most calls in flight in open-loop mode. Zero means
	// DefaultConcurrency; at most MaxConcurrency.
	Concurrency int
	// Rate, when positive, selects open-loop mode: calls start at this
	// fixed rate per second, whatever the target's latency, and latency is
	// measured from each call's intended start. Zero selects closed-loop
	// mode: each client starts its next call when the last one ends. At
	// most MaxRate.
	Rate float64
	// Duration bounds the measured load in time. Zero means
	// DefaultDuration when Requests is zero too, and MaxDuration as a
	// ceiling otherwise; at most MaxDuration. Calls in flight when it ends
	// are waited for (each at most Timeout).
	Duration time.Duration
	// Requests, when positive, bounds the measured load in calls started.
	Requests int64
	// Warmup, when positive, runs the same load unmeasured for this long
	// first, so that connections are open and pools warm. At most
	// MaxDuration.
	Warmup time.Duration
	// Timeout bounds one call, from sending to the last byte. Zero means
	// DefaultTimeout; at most MaxTimeout.
	Timeout time.Duration
	// DisconnectShare is the share of calls, 0 to 1, whose client leaves
	// mid-stream: it reads the reply until the first content_block_delta
	// has arrived, then closes the connection, as a person closing a chat
	// window does. The gateway then has to finish the call without its
	// client (drain the upstream in its pool of drain workers, or abort),
	// work no other load gives it. The calls that leave are chosen by
	// sequence number (disconnects), evenly spread and the same in every
	// run. Zero means every client reads to the end.
	DisconnectShare float64
	// Label names the load in progress reports and results.
	Label string
	// Progress, if set, is called every ProgressInterval from one
	// goroutine owned by the run, and once more at the end with Final
	// set. It must not block for long.
	Progress func(ProgressSnapshot)
	// ProgressInterval is the period of Progress calls. Zero means
	// DefaultProgressInterval.
	ProgressInterval time.Duration
}

// ProgressSnapshot is the state of a running load.
type ProgressSnapshot struct {
	// Label names the load or segment (LoadConfig.Label, "gateway 1/2").
	Label string
	// Done is the number of calls finished so far, Errors how many of them
	// failed.
	Done, Errors int64
	// Elapsed is the time since the load (or segment) started.
	Elapsed time.Duration
	// Final is set on the last snapshot of a load.
	Final bool
}

func (c LoadConfig) withDefaults() (LoadConfig, error) {
	if c.Path == "" {
		c.Path = "/v1/messages"
	}
	if c.Body == nil {
		c.Body = DefaultRequestBody()
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
		if c.Requests > 0 {
			c.Duration = MaxDuration
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	switch {
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return c, fmt.Errorf("bench: concurrency %d out of range 1..%d", c.Concurrency, MaxConcurrency)
	case c.Rate < 0 || c.Rate > MaxRate:
		return c, fmt.Errorf("bench: rate %g out of range 0..%d", c.Rate, MaxRate)
	case c.Duration < 0 || c.Duration > MaxDuration:
		return c, fmt.Errorf("bench: duration %s out of range 0..%s", c.Duration, MaxDuration)
	case c.Warmup < 0 || c.Warmup > MaxDuration:
		return c, fmt.Errorf("bench: warmup %s out of range 0..%s", c.Warmup, MaxDuration)
	case c.Requests < 0:
		return c, fmt.Errorf("bench: requests %d must not be negative", c.Requests)
	case !(c.DisconnectShare >= 0 && c.DisconnectShare <= 1): // NaN too
		return c, fmt.Errorf("bench: disconnect share %g out of range 0..1", c.DisconnectShare)
	case c.Timeout < 0 || c.Timeout > MaxTimeout:
		return c, fmt.Errorf("bench: timeout %s out of range 0..%s", c.Timeout, MaxTimeout)
	case c.ProgressInterval < 10*time.Millisecond:
		return c, fmt.Errorf("bench: progress interval %s below 10ms", c.ProgressInterval)
	}
	return c, nil
}

// LoadResult is what one load measured. Latencies are those of successful
// calls only; a failed call counts in Errors, a call whose client left on
// purpose in Disconnected, neither in the percentiles.
type LoadResult struct {
	Label       string  `json:"label,omitempty"`        // LoadConfig.Label, or the side
	Mode        string  `json:"mode"`                   // "closed" or "open"
	Concurrency int     `json:"concurrency"`            // LoadConfig.Concurrency
	RatePerSec  float64 `json:"rate_per_sec,omitempty"` // LoadConfig.Rate
	// Calls is the number of calls finished: OK + Disconnected + the
	// errors other than ErrKindNotStarted.
	Calls int64 `json:"calls"`
	// OK is the number of complete 200 replies ending in message_stop.
	OK int64 `json:"ok"`
	// Disconnected is the number of calls whose client left mid-stream
	// (LoadConfig.DisconnectShare), neither successes nor errors;
	// DisconnectedShare is their share of Calls.
	Disconnected      int64   `json:"disconnected"`
	DisconnectedShare float64 `json:"disconnected_share"`
	// Errors counts failed calls by kind (ErrKind… constants and
	// status_NNN); ErrorCount is their sum. Open-loop calls that could not
	// start in time count as ErrKindNotStarted, outside Calls.
	Errors     map[string]int64 `json:"errors"`
	ErrorCount int64            `json:"error_count"`
	// ElapsedSec is the measured wall time, up to the last call's end.
	ElapsedSec float64 `json:"elapsed_sec"`
	// RequestsPerSec is OK / ElapsedSec: complete calls only.
	RequestsPerSec float64 `json:"requests_per_sec"`
	// TTFB is the time to the first byte of the reply's body; Total the
	// time to its last byte. In open-loop mode both count from the call's
	// intended start.
	TTFB  Percentiles `json:"ttfb"`
	Total Percentiles `json:"total"`
	// BytesPerCall is the mean body size of the successful calls.
	BytesPerCall float64 `json:"bytes_per_call"`
	// ClientCPUMsPerCall is the CPU time of the tollbench process (load
	// generator, and the built-in upstream when it runs in-process) per
	// call; zero where /proc is not available.
	ClientCPUMsPerCall float64 `json:"client_cpu_ms_per_call"`

	ttfb, total latencyHistogram
	bytes       int64
	elapsed     time.Duration
	clientCPU   time.Duration
}

// merge adds another segment of the same load; summary figures are
// recomputed by finish.
func (r *LoadResult) merge(o *LoadResult) {
	r.Calls += o.Calls
	r.OK += o.OK
	r.Disconnected += o.Disconnected
	for k, v := range o.Errors {
		r.Errors[k] += v
	}
	r.ttfb.merge(o.ttfb)
	r.total.merge(o.total)
	r.bytes += o.bytes
	r.elapsed += o.elapsed
	r.clientCPU += o.clientCPU
}

// finish computes the summary figures from the raw ones.
func (r *LoadResult) finish() {
	r.ErrorCount = 0
	for _, v := range r.Errors {
		r.ErrorCount += v
	}
	r.ElapsedSec = r.elapsed.Seconds()
	r.RequestsPerSec = perSecond(r.OK, r.elapsed)
	r.DisconnectedShare = 0
	if r.Calls > 0 {
		r.DisconnectedShare = float64(r.Disconnected) / float64(r.Calls)
	}
	r.TTFB = r.ttfb.percentiles()
	r.Total = r.total.percentiles()
	r.BytesPerCall = 0
	if r.OK > 0 {
		r.BytesPerCall = float64(r.bytes) / float64(r.OK)
	}
	r.ClientCPUMsPerCall = 0
	if r.Calls > 0 {
		r.ClientCPUMsPerCall = float64(r.clientCPU) / 1e6 / float64(r.Calls)
	}
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// RunLoad runs one load against one target: the warm-up, if any, then the
// measured part. It returns when every call has ended; ctx cancellation
// stops starting new calls.
func RunLoad(ctx context.Context, cfg LoadConfig) (*LoadResult, error) {
	l, err := newLoader(cfg)
	if err != nil {
		return nil, err
	}
	defer l.close()
	if l.cfg.Warmup > 0 {
		l.run(ctx, segment{label: l.cfg.Label + " warm-up", duration: l.cfg.Warmup})
	}
	r := l.run(ctx, segment{label: l.cfg.Label, duration: l.cfg.Duration, requests: l.cfg.Requests})
	r.finish()
	return r, ctx.Err()
}

// loader is a load generator bound to one target, keeping its connections
// across segments so that interleaved segments do not each pay for
// connecting. Its methods are not safe for concurrent use.
type loader struct {
	cfg     LoadConfig
	targets []target
}

// target is one address the loader sends calls to.
type target struct {
	uri string
	hc  *fasthttp.HostClient
}

func newLoader(cfg LoadConfig) (*loader, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &loader{cfg: c}
	for _, u := range append([]string{c.URL}, c.MoreURLs...) {
		addr, err := CheckLoopbackURL(u)
		if err != nil {
			return nil, err
		}
		l.targets = append(l.targets, target{uri: "http://" + addr + c.Path, hc: &fasthttp.HostClient{
			Addr:               addr,
			Name:               "tollbench",
			MaxConns:           c.Concurrency,
			MaxConnWaitTimeout: c.Timeout,
			// Streaming lets the client see the first byte of the body when
			// it arrives, instead of when the whole reply has been buffered.
			StreamResponseBody:     true,
			ReadBufferSize:         clientBufferBytes,
			WriteBufferSize:        clientBufferBytes,
			MaxIdleConnDuration:    time.Minute,
			DisablePathNormalizing: true,
		}})
	}
	return l, nil
}

// targetOf is the target of call seq: in turn, but shifted by one after
// every round of the keys, so that each key's calls reach every target
// (keys and targets in step would pin each account to one node).
func (l *loader) targetOf(seq int64) int64 {
	keys := max(1, int64(len(l.cfg.Keys)))
	return (seq + seq/keys) % int64(len(l.targets))
}

// close drops the idle connections; the client has no goroutines left
// once every call has ended.
func (l *loader) close() {
	for _, t := range l.targets {
		t.hc.CloseIdleConnections()
	}
}

// segment is one stretch of a load.
type segment struct {
	label    string
	duration time.Duration
	requests int64 // 0: no count bound
}

// run runs one segment and returns its raw result (finish not called).
func (l *loader) run(ctx context.Context, seg segment) *LoadResult {
	rec := newRecorder()
	var done, failed atomic.Int64
	start := time.Now()
	cpuBefore, cpuErr := selfCPU()

	stopProgress := make(chan struct{})
	var progressWG sync.WaitGroup
	snapshot := func(final bool) ProgressSnapshot {
		return ProgressSnapshot{Label: seg.label, Done: done.Load(), Errors: failed.Load(), Elapsed: time.Since(start), Final: final}
	}
	if l.cfg.Progress != nil {
		progressWG.Go(func() {
			t := time.NewTicker(l.cfg.ProgressInterval)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					l.cfg.Progress(snapshot(false))
				}
			}
		})
	}

	ended := func(o callOutcome) {
		done.Add(1)
		if o == callFailed {
			failed.Add(1)
		}
	}
	var notStarted int64
	if l.cfg.Rate > 0 {
		notStarted = l.runOpen(ctx, seg, start, rec, ended)
	} else {
		l.runClosed(ctx, seg, start, rec, ended)
	}
	elapsed := time.Since(start)
	close(stopProgress)
	progressWG.Wait()
	if l.cfg.Progress != nil {
		l.cfg.Progress(snapshot(true))
	}

	r := &LoadResult{Label: seg.label, Mode: "closed", Concurrency: l.cfg.Concurrency, RatePerSec: l.cfg.Rate, elapsed: elapsed}
	if l.cfg.Rate > 0 {
		r.Mode = "open"
	}
	r.ttfb, r.total, r.OK, r.bytes, r.Errors, r.Disconnected = rec.collect()
	r.Calls = done.Load()
	if notStarted > 0 {
		r.Errors[ErrKindNotStarted] += notStarted
	}
	if cpuAfter, err := selfCPU(); err == nil && cpuErr == nil {
		r.clientCPU = cpuAfter - cpuBefore
	}
	return r
}

// runClosed runs Concurrency workers, each calling in a loop until the
// segment's time or call budget is spent.
func (l *loader) runClosed(ctx context.Context, seg segment, start time.Time, rec *recorder, ended func(callOutcome)) {
	end := start.Add(seg.duration)
	var issued atomic.Int64
	var wg sync.WaitGroup
	for i := range l.cfg.Concurrency {
		wg.Go(func() {
			w := newWorker(i, l)
			defer w.release()
			for ctx.Err() == nil && time.Now().Before(end) {
				seq := issued.Add(1) - 1
				if seg.requests > 0 && seq >= seg.requests {
					return
				}
				ended(w.call(l, seq, time.Now(), rec))
			}
		})
	}
	wg.Wait()
}

// openJob is one call of the open-loop schedule.
type openJob struct {
	seq      int64
	intended time.Time
}

// runOpen dispatches calls at their intended start times to Concurrency
// workers. When all of them are busy the dispatcher waits, and the calls
// it could not hand out on time start late, their latency still counted
// from the intended start. It returns how many calls were due within the
// segment but could not start before it ended.
func (l *loader) runOpen(ctx context.Context, seg segment, start time.Time, rec *recorder, ended func(callOutcome)) (notStarted int64) {
	end := start.Add(seg.duration)
	p := newPacer(start, l.cfg.Rate)
	planned := p.dueBy(end.Add(-1))
	if seg.requests > 0 {
		planned = min(planned, seg.requests)
	}
	jobs := make(chan openJob)
	var wg sync.WaitGroup
	for i := range l.cfg.Concurrency {
		wg.Go(func() {
			w := newWorker(i, l)
			defer w.release()
			for j := range jobs {
				ended(w.call(l, j.seq, j.intended, rec))
			}
		})
	}
	endTimer := time.NewTimer(time.Until(end))
	defer endTimer.Stop()
	wait := time.NewTimer(0)
	defer wait.Stop()
	seq := int64(0)
dispatch:
	for ; seq < planned; seq++ {
		at := p.at(seq)
		if d := time.Until(at); d > 0 {
			wait.Reset(d)
			select {
			case <-wait.C:
			case <-endTimer.C:
				break dispatch
			case <-ctx.Done():
				break dispatch
			}
		}
		select {
		case jobs <- openJob{seq: seq, intended: at}:
		case <-endTimer.C:
			break dispatch
		case <-ctx.Done():
			break dispatch
		}
	}
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		return 0
	}
	return planned - seq
}

// worker is one client's state, reused across its calls.
type worker struct {
	id   int
	req  *fasthttp.Request
	resp *fasthttp.Response
	buf  []byte
	scan eventScanner
}

func newWorker(id int, l *loader) *worker {
	w := &worker{id: id, req: fasthttp.AcquireRequest(), resp: fasthttp.AcquireResponse(), buf: make([]byte, clientBufferBytes)}
	w.req.Header.SetMethod(fasthttp.MethodPost)
	w.req.Header.SetContentType("application/json")
	w.req.Header.Set("anthropic-version", "2023-06-01")
	w.req.SetBody(l.cfg.Body)
	return w
}

func (w *worker) release() {
	fasthttp.ReleaseRequest(w.req)
	fasthttp.ReleaseResponse(w.resp)
}

// callOutcome is how one call ended, for the progress counters.
type callOutcome uint8

const (
	callOK callOutcome = iota
	callFailed
	callDisconnected // the client left on purpose (DisconnectShare)
)

// disconnects reports whether call seq (0-based) is one whose client
// leaves mid-stream: those where floor((seq+1)·share) passes
// floor(seq·share). That spreads them evenly (every fifth call at 0.2),
// makes floor(n·share) of the first n calls leave, and needs no random
// source, so two runs and two sides of a comparison disconnect alike.
func disconnects(seq int64, share float64) bool {
	return share > 0 && math.Floor(float64(seq+1)*share) > math.Floor(float64(seq)*share)
}

// call makes call seq, timed from start, reads its reply to the end (or,
// for a call chosen by disconnects, to its first delta) and records it.
func (w *worker) call(l *loader, seq int64, start time.Time, rec *recorder) callOutcome {
	if keys := l.cfg.Keys; len(keys) > 0 {
		w.req.Header.Set("x-api-key", keys[seq%int64(len(keys))])
	}
	t := l.targets[l.targetOf(seq)]
	w.req.SetRequestURI(t.uri)
	if err := t.hc.DoDeadline(w.req, w.resp, time.Now().Add(l.cfg.Timeout)); err != nil {
		rec.fail(w.id, transportKind(err))
		return callFailed
	}
	status := w.resp.StatusCode()
	leave := status == fasthttp.StatusOK && disconnects(seq, l.cfg.DisconnectShare)
	w.scan.reset()
	ttfb, n, left, readErr := w.readReply(w.resp.BodyStream(), start, leave)
	total := time.Since(start)
	// Closing a body not read to its end closes the connection (fasthttp
	// cannot reuse it): for a client that leaves, that is how the gateway
	// learns it has gone.
	_ = w.resp.CloseBodyStream()
	switch {
	case n > MaxReplyBytes:
		rec.fail(w.id, ErrKindTooLarge)
	case status != fasthttp.StatusOK:
		rec.fail(w.id, statusKind(status))
	case readErr != nil:
		rec.fail(w.id, transportKind(readErr))
	case left:
		rec.disconnected(w.id)
		return callDisconnected
	case w.scan.sawError:
		rec.fail(w.id, ErrKindStreamError)
	case !w.scan.sawStop:
		rec.fail(w.id, ErrKindTruncated)
	default:
		if ttfb == 0 {
			ttfb = total
		}
		rec.ok(w.id, ttfb, total, n)
		return callOK
	}
	return callFailed
}

// readReply reads a streamed body to its end, or, when leave is set, until
// the first content_block_delta has arrived (left reports that it stopped
// there). It returns the time to the first byte (zero if none came), the
// bytes read, and a read error other than io.EOF. Bounded by MaxReplyBytes
// and by the connection's read deadline, which the client set to the
// call's deadline.
func (w *worker) readReply(body io.Reader, start time.Time, leave bool) (ttfb time.Duration, n int64, left bool, err error) {
	for body != nil && n <= MaxReplyBytes {
		m, rerr := body.Read(w.buf)
		if m > 0 {
			if ttfb == 0 {
				ttfb = time.Since(start)
			}
			n += int64(m)
			w.scan.feed(w.buf[:m])
			if leave && w.scan.sawDelta {
				return ttfb, n, true, nil
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				err = rerr
			}
			break
		}
	}
	return ttfb, n, false, err
}
