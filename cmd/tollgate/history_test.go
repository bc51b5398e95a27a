package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/money"
)

// TestHistory is a Jepsen-style test of `tollgate serve` as a whole. Clients
// issue random operations over HTTP (top-ups and adjustments with reused
// order IDs and idempotency keys, streaming and non-streaming calls, key
// creation and revocation, freezes) and record each one in a history: its
// inputs, start and end time, and the answer, or "unknown" when the
// connection failed (the process may have been killed mid-request). The
// process is killed with SIGKILL and restarted on the same data directory a
// few times. At the end a checker that knows only the history and the final
// state read through the admin API verifies:
//   - idempotency: an order_id or idempotency_key is
//     answered 201 at most once, 409 only when another body could have taken
//     effect first, 200 only for a repeat of the body that did, naming its
//     entry; the whole ledger holds at most one entry per key;
//   - durability: every acknowledged write took effect exactly once,
//     every unknown one at most once, nothing appeared that no one sent;
//   - money: per account, available + held + charged = Σ acknowledged
//     or observed top-ups and adjustments − Σ expired;
//   - calls: a call the client saw complete has one hold and one
//     settlement (outcome ok); every hold ended exactly once; refused calls
//     held nothing; nothing is held once the gateway is idle;
//   - keys and freezes: 401 and 403 only once a revocation or freeze
//     had begun; a revoked key or a frozen account never makes a call after
//     the revocation or freeze was acknowledged; acknowledged changes
//     survive kills;
//   - `tollgate verify` accepts the data directory after every kill and
//     after the final stop.
//
// The workload makes the dangerous races likely: racers send one order_id
// (or idempotency key) to two to four accounts at the same instant, released
// together by closing a channel. The ledger locks one shard per account, so
// accounts in different shards contend for the key only through whatever
// guards the key itself.
//
// The seed (TOLLGATE_HISTORY_SEED, else the clock) picks every client's
// choices and the kill times. Timing is not reproducible, but a seed that
// failed once tends to fail again. TOLLGATE_SOAK=1 runs longer with more
// kills.
func TestHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	seed := historySeed(t)
	t.Logf("seed %d (replay with TOLLGATE_HISTORY_SEED=%d)", seed, seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("failed with seed %d: replay with TOLLGATE_HISTORY_SEED=%d", seed, seed)
		}
	})
	params := historyShort
	if os.Getenv("TOLLGATE_SOAK") != "" {
		params = historySoak
	}
	r := newHistoryRun(t, seed, params)
	r.setUp()
	aborted := r.runWorkload()

	c := &historyChecker{run: r, ops: r.hist.all()}
	if aborted != "" {
		c.failf("%s", aborted)
	}
	c.checkHistoryOnly()
	if aborted == "" {
		r.waitIdle()
		c.checkState(r.readState())
		if out, err := r.stopAndVerify(); err != nil {
			c.failf("tollgate verify refuses the data directory after the final stop: %v\n%s", err, out)
		}
	}
	t.Logf("%s", r.summary(c.ops))
	c.report(t, seed)
}

// historyParams sizes a run.
type historyParams struct {
	duration      time.Duration // of the workload
	kills         int           // SIGKILLs (each followed by a restart)
	accounts      int
	callClients   int // goroutines making calls
	ledgerClients int // goroutines sending top-ups and adjustments with reused keys
}

var (
	// historyShort keeps TestHistory within about 45 s in `make test`.
	historyShort = historyParams{duration: 25 * time.Second, kills: 4, accounts: 8, callClients: 4, ledgerClients: 3}
	historySoak  = historyParams{duration: 3 * time.Minute, kills: 30, accounts: 12, callClients: 6, ledgerClients: 4}
)

func historySeed(t *testing.T) uint64 {
	s := os.Getenv("TOLLGATE_HISTORY_SEED")
	if s == "" {
		return uint64(time.Now().UnixNano())
	}
	seed, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("unexpected TOLLGATE_HISTORY_SEED; got %q; want an unsigned integer", s)
	}
	return seed
}

// ---------------------------------------------------------------------------
// The history.

// opKind names an operation of the workload.
type opKind string

const (
	opTopUp     opKind = "topup"
	opAdjust    opKind = "adjust"
	opCall      opKind = "call"
	opCreateKey opKind = "create_key"
	opRevokeKey opKind = "revoke_key"
	opFreeze    opKind = "freeze"
	opUnfreeze  opKind = "unfreeze"
)

// statusUnknown is the status of a request whose answer never arrived in
// full: it may or may not have taken effect.
const statusUnknown = 0

// historyOp is one request of the history. Only the client that made it
// writes it, and only until it is added to the history.
type historyOp struct {
	id         int
	client     string
	kind       opKind
	account    string
	idem       string // order_id (top-ups) or idempotency_key (adjustments)
	amount     int64  // nano-credits (top-ups, adjustments)
	keyID      string // the key a call used, or the key created or revoked
	stream     bool
	start, end time.Time
	run        int // the gateway incarnation the request was sent to

	status    int    // HTTP status, or statusUnknown
	entryID   string // the entry a top-up or adjustment answered with
	answer    string // that entry's account and amount, as answered
	requestID string // the call's request-id header
	complete  bool   // the call's reply arrived in full (message_stop, or a whole message)
}

// sameBody tells whether two top-ups or adjustments with one key carry the
// same request body (the reason and the credit kind are fixed).
func sameBody(a, b *historyOp) bool { return a.account == b.account && a.amount == b.amount }

// mayHaveTakenEffect: a write answered 201 or 204, or never answered (a
// 200 to a top-up or adjustment is a repeat, which changes nothing).
func (o *historyOp) mayHaveTakenEffect() bool {
	return o.status == http.StatusCreated || o.status == http.StatusNoContent || o.status == statusUnknown
}

func (o *historyOp) describe(t0 time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "op#%d %s %s(account=%s", o.id, o.client, o.kind, o.account)
	switch o.kind {
	case opTopUp:
		fmt.Fprintf(&b, " order_id=%s amount=%s", o.idem, money.Format(o.amount))
	case opAdjust:
		fmt.Fprintf(&b, " idempotency_key=%s amount=%s", o.idem, money.Format(o.amount))
	case opCall:
		fmt.Fprintf(&b, " key=%s stream=%v", o.keyID, o.stream)
	case opCreateKey, opRevokeKey:
		fmt.Fprintf(&b, " key=%s", o.keyID)
	}
	fmt.Fprintf(&b, ") run %d, %.3fs..%.3fs: ", o.run, o.start.Sub(t0).Seconds(), o.end.Sub(t0).Seconds())
	if o.status == statusUnknown {
		b.WriteString("unknown")
	} else {
		fmt.Fprintf(&b, "%d", o.status)
	}
	if o.entryID != "" {
		fmt.Fprintf(&b, " entry %s", o.entryID)
	}
	if o.requestID != "" {
		fmt.Fprintf(&b, " request %s complete=%v", o.requestID, o.complete)
	}
	return b.String()
}

// history is the record of every request, in the order they ended. Safe for
// concurrent use.
type history struct {
	mu  sync.Mutex
	ops []*historyOp
}

func (h *history) add(op *historyOp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	op.id = len(h.ops)
	h.ops = append(h.ops, op)
}

func (h *history) all() []*historyOp {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// ---------------------------------------------------------------------------
// The system under test and the requests the workload sends it.

// historyRun is one run of TestHistory: the gateway process (replaced at
// every restart), the history, and what the clients share.
type historyRun struct {
	t        *testing.T
	seed     uint64
	params   historyParams
	dataDir  string
	t0       time.Time
	http     *http.Client
	accounts []string
	hist     history
	dead     atomic.Bool // the gateway cannot be restarted: clients stop
	races    atomic.Int64

	mu struct {
		sync.Mutex
		gw   *gatewayProcess
		down bool // between a kill and the restart
		run  int
		cond *sync.Cond
	}
	keysMu struct {
		sync.Mutex
		current  map[string]apiKey // account → the key its calls use
		previous map[string]apiKey // account → the key before (revoked, or being revoked)
	}
	poolMu struct {
		sync.Mutex
		recent map[opKind][]*historyOp // recent writes whose keys and bodies get reused
	}
}

type apiKey struct{ id, secret string }

func newHistoryRun(t *testing.T, seed uint64, params historyParams) *historyRun {
	r := &historyRun{t: t, seed: seed, params: params, dataDir: t.TempDir(), t0: time.Now()}
	// Enough idle connections that a racer's requests leave at once instead
	// of waiting to dial.
	r.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(r.http.CloseIdleConnections)
	r.mu.cond = sync.NewCond(&r.mu.Mutex)
	r.keysMu.current = map[string]apiKey{}
	r.keysMu.previous = map[string]apiKey{}
	r.poolMu.recent = map[opKind][]*historyOp{}
	for i := range params.accounts {
		r.accounts = append(r.accounts, fmt.Sprintf("hist-%d", i))
	}
	return r
}

// setUp starts the gateway and gives every account credit and a key. The
// top-ups and keys are part of the history like every other request.
func (r *historyRun) setUp() {
	r.mu.gw = startGateway(r.t, r.dataDir)
	for _, a := range r.accounts {
		if st, out := r.mu.gw.adminDo("POST", "/admin/v1/accounts", `{"id":"`+a+`"}`); st != http.StatusCreated {
			r.t.Fatalf("seed %d: unexpected status creating account %s; got %d %v; want 201", r.seed, a, st, out)
		}
		if op := r.ledgerWrite("setup", opTopUp, a, "setup-"+a, 1000*nanosPerCredit); op.status != http.StatusCreated {
			r.t.Fatalf("seed %d: unexpected setup top-up; got %s; want 201", r.seed, op.describe(r.t0))
		}
		if op := r.createKey("setup", a); op.status != http.StatusCreated {
			r.t.Fatalf("seed %d: unexpected setup key; got %s; want 201", r.seed, op.describe(r.t0))
		}
	}
}

const nanosPerCredit = 1_000_000_000

// serving returns the gateway once it serves, waiting through a restart.
func (r *historyRun) serving() (*gatewayProcess, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.mu.down {
		r.mu.cond.Wait()
	}
	return r.mu.gw, r.mu.run
}

// send makes one request for op and fills in op's times and answer; the
// caller adds op to the history once it has read what it needs from the
// returned body (nil when unknown). A request whose answer does not arrive
// in full is unknown: the gateway may have acted on it.
func (r *historyRun) send(op *historyOp, newRequest func(gw *gatewayProcess) *http.Request) []byte {
	gw, run := r.serving()
	req := newRequest(gw)
	op.run = run
	op.start = time.Now()
	resp, err := r.http.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if op.kind == opCall {
			op.requestID = resp.Header.Get("request-id")
		}
		if err == nil {
			op.status = resp.StatusCode
		}
	}
	op.end = time.Now()
	if err != nil {
		body = nil
		// The gateway is being killed or restarted: do not spin.
		time.Sleep(10 * time.Millisecond)
	}
	return body
}

func (r *historyRun) adminRequest(method, path, body string) func(gw *gatewayProcess) *http.Request {
	return func(gw *gatewayProcess) *http.Request {
		req, _ := http.NewRequest(method, "http://"+gw.admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+gw.token)
		return req
	}
}

// ledgerWrite sends a top-up or an adjustment.
func (r *historyRun) ledgerWrite(client string, kind opKind, account, idem string, amount int64) *historyOp {
	op := &historyOp{client: client, kind: kind, account: account, idem: idem, amount: amount}
	amt := money.Format(amount)
	var req func(*gatewayProcess) *http.Request
	if kind == opTopUp {
		req = r.adminRequest("POST", "/admin/v1/accounts/"+account+"/topups",
			`{"amount":"`+amt+`","order_id":"`+idem+`","kind":"paid"}`)
	} else {
		req = r.adminRequest("POST", "/admin/v1/adjustments",
			`{"account":"`+account+`","amount":"`+amt+`","reason":"history test","idempotency_key":"`+idem+`"}`)
	}
	body := r.send(op, req)
	var answer struct {
		ID      string `json:"id"`
		Account string `json:"account_id"`
		Amount  string `json:"amount"`
	}
	if op.status == http.StatusOK || op.status == http.StatusCreated {
		_ = json.Unmarshal(body, &answer)
		op.entryID, op.answer = answer.ID, answer.Account+" "+answer.Amount
	}
	r.hist.add(op)
	return op
}

// call makes one call with the account's current key, or with the key
// before it (which a revocation should have made fail).
func (r *historyRun) call(client, account string, previousKey, stream bool, text string) *historyOp {
	r.keysMu.Lock()
	key, ok := r.keysMu.previous[account]
	if !previousKey || !ok {
		key = r.keysMu.current[account]
	}
	r.keysMu.Unlock()
	op := &historyOp{client: client, kind: opCall, account: account, keyID: key.id, stream: stream}
	payload := fmt.Sprintf(`{"model":"claude-haiku-4-5","max_tokens":16,"stream":%v,"messages":[{"role":"user","content":%q}]}`, stream, text)
	body := r.send(op, func(gw *gatewayProcess) *http.Request {
		req, _ := http.NewRequest("POST", "http://"+gw.client+"/v1/messages", strings.NewReader(payload))
		req.Header.Set("x-api-key", key.secret)
		req.Header.Set("anthropic-version", "2023-06-01")
		req.Header.Set("content-type", "application/json")
		return req
	})
	if op.status == http.StatusOK {
		op.complete = replyComplete(body, stream)
	}
	r.hist.add(op)
	return op
}

// replyComplete tells whether a reply arrived whole: a stream up to
// message_stop, or a whole message.
func replyComplete(body []byte, stream bool) bool {
	if stream {
		return strings.Contains(string(body), "event: message_stop")
	}
	var msg struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(body, &msg) == nil && msg.Type == "message"
}

// createKey creates a key and, once acknowledged, makes it the account's
// current key.
func (r *historyRun) createKey(client, account string) *historyOp {
	op := &historyOp{client: client, kind: opCreateKey, account: account}
	body := r.send(op, r.adminRequest("POST", "/admin/v1/accounts/"+account+"/keys", `{"name":"history"}`))
	var answer struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if op.status == http.StatusCreated && json.Unmarshal(body, &answer) == nil {
		op.keyID = answer.ID
		r.keysMu.Lock()
		if old, ok := r.keysMu.current[account]; ok {
			r.keysMu.previous[account] = old
		}
		r.keysMu.current[account] = apiKey{answer.ID, answer.Key}
		r.keysMu.Unlock()
	}
	r.hist.add(op)
	return op
}

func (r *historyRun) revokeKey(client, account, keyID string) *historyOp {
	op := &historyOp{client: client, kind: opRevokeKey, account: account, keyID: keyID}
	r.send(op, r.adminRequest("DELETE", "/admin/v1/keys/"+keyID, ""))
	r.hist.add(op)
	return op
}

func (r *historyRun) setFrozen(client, account string, frozen bool) *historyOp {
	op := &historyOp{client: client, kind: opUnfreeze, account: account}
	path := "/admin/v1/accounts/" + account + "/unfreeze"
	if frozen {
		op.kind, path = opFreeze, "/admin/v1/accounts/"+account+"/freeze"
	}
	r.send(op, r.adminRequest("POST", path, ""))
	r.hist.add(op)
	return op
}

// ---------------------------------------------------------------------------
// The workload and the nemesis.

// runWorkload runs the clients for the run's duration while killing and
// restarting the gateway. It returns why it stopped early, or "".
func (r *historyRun) runWorkload() (aborted string) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	client := func(name string, rngStream uint64, body func(name string, rng *rand.Rand, stop *atomic.Bool)) {
		rng := rand.New(rand.NewPCG(r.seed, rngStream))
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(name, rng, &stop)
		}()
	}
	for i := range r.params.callClients {
		client(fmt.Sprintf("caller-%d", i), uint64(100+i), r.callClient)
	}
	for i := range r.params.ledgerClients {
		client(fmt.Sprintf("writer-%d", i), uint64(200+i), r.ledgerClient)
	}
	client("race-topup", 300, func(name string, rng *rand.Rand, stop *atomic.Bool) { r.racer(name, opTopUp, rng, stop) })
	client("race-adjust", 301, func(name string, rng *rand.Rand, stop *atomic.Bool) { r.racer(name, opAdjust, rng, stop) })
	client("keeper", 400, r.keeper)

	rng := rand.New(rand.NewPCG(r.seed, 1))
	start := time.Now()
	for i, at := range killTimes(rng, r.params.duration, r.params.kills) {
		time.Sleep(time.Until(start.Add(at)))
		if err := r.killAndRestart(); err != nil {
			aborted = fmt.Sprintf("kill %d of %d at %.1fs: %s", i+1, r.params.kills, time.Since(r.t0).Seconds(), err)
			break
		}
	}
	if aborted == "" {
		time.Sleep(time.Until(start.Add(r.params.duration)))
	}
	stop.Store(true)
	wg.Wait()
	return aborted
}

// killTimes spreads n kills at random over the middle of the run.
func killTimes(rng *rand.Rand, d time.Duration, n int) []time.Duration {
	times := make([]time.Duration, n)
	for i := range times {
		times[i] = d/10 + time.Duration(rng.Int64N(int64(d*8/10)))
	}
	slices.Sort(times)
	return times
}

// killAndRestart kills the gateway with SIGKILL, checks with `tollgate
// verify` that the data directory replays, and starts a new gateway on it.
// An error means the data directory is refused: the run cannot go on.
func (r *historyRun) killAndRestart() error {
	r.mu.Lock()
	r.mu.down = true
	gw := r.mu.gw
	r.mu.Unlock()
	gw.cmd.Process.Kill()
	<-gw.exited
	gw.exited <- nil
	if out, err := verifyDataDir(r.dataDir); err != nil {
		// Let the clients see the dead gateway and stop.
		r.dead.Store(true)
		r.mu.Lock()
		r.mu.down = false
		r.mu.cond.Broadcast()
		r.mu.Unlock()
		return fmt.Errorf("the data directory does not replay after SIGKILL: %v\n%s", err, out)
	}
	next := startGateway(r.t, r.dataDir)
	r.mu.Lock()
	r.mu.gw, r.mu.down = next, false
	r.mu.run++
	r.mu.cond.Broadcast()
	r.mu.Unlock()
	return nil
}

func verifyDataDir(dataDir string) (string, error) {
	out, err := exec.Command(tollgateBin, "verify", "--data-dir", dataDir).CombinedOutput()
	return string(out), err
}

func (r *historyRun) stopped(stop *atomic.Bool) bool { return stop.Load() || r.dead.Load() }

// callClient makes streaming and non-streaming calls on random accounts,
// one in ten with a key that was rotated out.
func (r *historyRun) callClient(name string, rng *rand.Rand, stop *atomic.Bool) {
	for i := 0; !r.stopped(stop); i++ {
		account := r.accounts[rng.IntN(len(r.accounts))]
		r.call(name, account, rng.IntN(10) == 0, rng.IntN(2) == 0, fmt.Sprintf("%s call %d", name, i))
		thinkTime(rng, 2*time.Millisecond)
	}
}

// ledgerClient sends top-ups and adjustments whose keys are often reused:
// by this client or another, with the same body (a retry: 200 expected) or
// with another account or amount (409 expected).
func (r *historyRun) ledgerClient(name string, rng *rand.Rand, stop *atomic.Bool) {
	for i := 0; !r.stopped(stop); i++ {
		kind := opTopUp
		if rng.IntN(2) == 0 {
			kind = opAdjust
		}
		account := r.accounts[rng.IntN(len(r.accounts))]
		idem := fmt.Sprintf("%s-%s-%d", name, kind, i)
		amount := randomAmount(rng, kind)
		switch prev := r.recentWrite(rng, kind); {
		case prev == nil:
		case rng.IntN(2) == 0:
			account, idem, amount = prev.account, prev.idem, prev.amount
		default:
			idem = prev.idem
		}
		r.remember(r.ledgerWrite(name, kind, account, idem, amount))
		thinkTime(rng, 4*time.Millisecond)
	}
}

// thinkTime pauses a client between requests for up to max: the machine
// that runs `make test` is small and shared, and the racers need only a few
// hundred rounds to make a lost race likely.
func thinkTime(rng *rand.Rand, max time.Duration) { time.Sleep(time.Duration(rng.Int64N(int64(max)))) }

// recentWrite returns a recent write of kind to reuse, or nil (fresh key).
func (r *historyRun) recentWrite(rng *rand.Rand, kind opKind) *historyOp {
	r.poolMu.Lock()
	defer r.poolMu.Unlock()
	recent := r.poolMu.recent[kind]
	if len(recent) == 0 || rng.IntN(5) < 2 {
		return nil
	}
	return recent[rng.IntN(len(recent))]
}

// maxRecentWrites bounds the pool of reusable keys.
const maxRecentWrites = 64

func (r *historyRun) remember(op *historyOp) {
	r.poolMu.Lock()
	defer r.poolMu.Unlock()
	recent := append(r.poolMu.recent[op.kind], op)
	if len(recent) > maxRecentWrites {
		recent = recent[1:]
	}
	r.poolMu.recent[op.kind] = recent
}

// randomAmount: top-ups of 1, 2 or 5 credits; adjustments of 0.5, 1 or
// -0.25 (small enough never to leave an account without credit).
func randomAmount(rng *rand.Rand, kind opKind) int64 {
	if kind == opTopUp {
		return []int64{1, 2, 5}[rng.IntN(3)] * nanosPerCredit
	}
	return []int64{nanosPerCredit / 2, nanosPerCredit, -nanosPerCredit / 4}[rng.IntN(3)]
}

// racer sends one fresh key to two to four accounts at the same instant, over
// and over: the senders wait on one channel, closed once they are all
// parked. Distinct accounts (most likely in distinct ledger shards) must
// get one 201 and 409s; a quarter of the rounds also send the same body
// twice, which must get 201 and 200 naming one entry.
func (r *historyRun) racer(name string, kind opKind, rng *rand.Rand, stop *atomic.Bool) {
	for i := 0; !r.stopped(stop); i++ {
		idem := fmt.Sprintf("%s-%d", name, i)
		senders := r.raceSenders(rng, kind)
		var ready, done sync.WaitGroup
		release := make(chan struct{})
		for _, s := range senders {
			ready.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				ready.Done()
				<-release
				r.ledgerWrite(name, kind, s.account, idem, s.amount)
			}()
		}
		ready.Wait()
		close(release)
		done.Wait()
		r.races.Add(1)
		thinkTime(rng, 4*time.Millisecond)
	}
}

type raceSender struct {
	account string
	amount  int64
}

func (r *historyRun) raceSenders(rng *rand.Rand, kind opKind) []raceSender {
	perm := rng.Perm(len(r.accounts))
	amount := randomAmount(rng, kind)
	var senders []raceSender
	for _, i := range perm[:2+rng.IntN(3)] {
		s := raceSender{r.accounts[i], amount}
		if rng.IntN(3) == 0 {
			s.amount = randomAmount(rng, kind)
		}
		senders = append(senders, s)
	}
	if rng.IntN(4) == 0 {
		senders = append(senders, senders[0])
	}
	return senders
}

// keeper rotates keys (create the new one, switch, revoke the old one) and
// freezes accounts briefly, one change at a time, so that each account's
// freezes and unfreezes form a sequence.
func (r *historyRun) keeper(name string, rng *rand.Rand, stop *atomic.Bool) {
	for !r.stopped(stop) {
		account := r.accounts[rng.IntN(len(r.accounts))]
		if rng.IntN(2) == 0 {
			r.rotateKey(name, account)
		} else {
			r.setFrozen(name, account, true)
			time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
			r.unfreeze(name, account)
		}
		time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
	}
}

func (r *historyRun) rotateKey(client, account string) {
	r.keysMu.Lock()
	old := r.keysMu.current[account]
	r.keysMu.Unlock()
	if r.createKey(client, account).status == http.StatusCreated {
		r.revokeKey(client, account, old.id)
	}
}

// unfreeze retries until acknowledged, so that accounts do not stay frozen
// for the rest of the run because a kill swallowed the answer.
func (r *historyRun) unfreeze(client, account string) {
	for range 100 {
		if r.setFrozen(client, account, false).status == http.StatusNoContent || r.dead.Load() {
			return
		}
	}
}

// ---------------------------------------------------------------------------
// The final state, read through the admin API.

type stateAccount struct {
	Available string `json:"available"`
	Held      string `json:"held"`
	Frozen    bool   `json:"frozen"`
}

type stateEntry struct {
	ID             string `json:"id"`
	Kind           string `json:"kind"`
	Amount         string `json:"amount"`
	OrderID        string `json:"order_id"`
	IdempotencyKey string `json:"idempotency_key"`
	RequestID      string `json:"request_id"`
	Charged        string `json:"charged"`
	account        string // the account whose list held it
}

type stateCall struct {
	RequestID string `json:"request_id"`
	Status    int    `json:"status"`
	Outcome   string `json:"outcome"`
	Charged   string `json:"charged"`
}

type stateKey struct {
	ID      string `json:"id"`
	Revoked bool   `json:"revoked"`
	account string
}

// finalState is what the admin API shows once the workload stopped.
type finalState struct {
	accounts map[string]stateAccount
	entries  []stateEntry
	calls    map[string]stateCall // by request ID
	keys     map[string]stateKey  // by key ID
}

func (r *historyRun) gateway() *gatewayProcess {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.gw
}

// adminGet reads one admin resource into v; any failure ends the test.
func (r *historyRun) adminGet(path string, v any) {
	gw := r.gateway()
	req, _ := http.NewRequest("GET", "http://"+gw.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+gw.token)
	resp, err := r.http.Do(req)
	if err != nil {
		r.t.Fatalf("seed %d: cannot read %s: %v", r.seed, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		r.t.Fatalf("seed %d: unexpected answer to GET %s; got %d %s (%v); want 200", r.seed, path, resp.StatusCode, body, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		r.t.Fatalf("seed %d: cannot decode %s: %v\n%s", r.seed, path, err, body)
	}
}

// listAll reads every page of an admin list.
func listAll[T any](r *historyRun, path string) []T {
	var all []T
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for cursor := ""; ; {
		p := path + sep + "limit=1000"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		var page struct {
			Data       []T     `json:"data"`
			HasMore    bool    `json:"has_more"`
			NextCursor *string `json:"next_cursor"`
		}
		r.adminGet(p, &page)
		all = append(all, page.Data...)
		if !page.HasMore || page.NextCursor == nil {
			return all
		}
		cursor = *page.NextCursor
	}
}

// waitIdle waits (a bounded time) for holds of calls still settling; the
// checker then reports any hold left.
func (r *historyRun) waitIdle() {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		idle := true
		for _, a := range r.accounts {
			var acct stateAccount
			r.adminGet("/admin/v1/accounts/"+a, &acct)
			idle = idle && acct.Held == "0"
		}
		if idle {
			return
		}
	}
}

func (r *historyRun) readState() finalState {
	s := finalState{accounts: map[string]stateAccount{}, calls: map[string]stateCall{}, keys: map[string]stateKey{}}
	for _, a := range r.accounts {
		var acct stateAccount
		r.adminGet("/admin/v1/accounts/"+a, &acct)
		s.accounts[a] = acct
		for _, e := range listAll[stateEntry](r, "/admin/v1/accounts/"+a+"/entries") {
			e.account = a
			s.entries = append(s.entries, e)
		}
		for _, c := range listAll[stateCall](r, "/admin/v1/calls?account="+a) {
			s.calls[c.RequestID] = c
		}
		for _, k := range listAll[stateKey](r, "/admin/v1/accounts/"+a+"/keys") {
			k.account = a
			s.keys[k.ID] = k
		}
	}
	return s
}

// stopAndVerify stops the gateway with SIGTERM and runs `tollgate verify`.
func (r *historyRun) stopAndVerify() (string, error) {
	gw := r.gateway()
	gw.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-gw.exited:
		gw.exited <- nil
		if err != nil {
			return gw.stderr.String(), fmt.Errorf("unexpected exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		return "", fmt.Errorf("the gateway did not exit within 30 s of SIGTERM")
	}
	return verifyDataDir(r.dataDir)
}

func (r *historyRun) summary(ops []*historyOp) string {
	counts := map[string]int{}
	for _, o := range ops {
		status := "unknown"
		if o.status != statusUnknown {
			status = strconv.Itoa(o.status)
		}
		if o.kind == opCall && o.complete {
			status += "+complete"
		}
		counts[string(o.kind)+" "+status]++
	}
	var lines []string
	for k, n := range counts {
		lines = append(lines, fmt.Sprintf("%s: %d", k, n))
	}
	slices.Sort(lines)
	r.mu.Lock()
	restarts := r.mu.run
	r.mu.Unlock()
	return fmt.Sprintf("%d ops, %d race rounds, %d restarts, %.1fs:\n  %s",
		len(ops), r.races.Load(), restarts, time.Since(r.t0).Seconds(), strings.Join(lines, "\n  "))
}

// ---------------------------------------------------------------------------
// The checker: the history and the final state only.

// historyChecker collects violations; report prints them with the seed.
type historyChecker struct {
	run      *historyRun
	ops      []*historyOp
	findings []finding
}

// finding is one violation; findings with one format are one kind.
type finding struct{ format, text string }

func (c *historyChecker) failf(format string, args ...any) {
	c.findings = append(c.findings, finding{format, fmt.Sprintf(format, args...)})
}

// maxReportedPerKind bounds the findings printed of each kind (one race
// bug may produce hundreds); the count says how many more there were.
const maxReportedPerKind = 4

func (c *historyChecker) report(t *testing.T, seed uint64) {
	perKind := map[string]int{}
	for _, f := range c.findings {
		if perKind[f.format]++; perKind[f.format] <= maxReportedPerKind {
			t.Errorf("seed %d: %s", seed, f.text)
		}
	}
	for _, f := range c.findings {
		if n := perKind[f.format]; n > maxReportedPerKind {
			t.Errorf("seed %d: ... and %d more findings like %q", seed, n-maxReportedPerKind, f.format)
			perKind[f.format] = 0
		}
	}
}

func (c *historyChecker) describe(ops []*historyOp) string {
	var b strings.Builder
	for i, o := range ops {
		if i == 8 {
			fmt.Fprintf(&b, "\n    ... %d more", len(ops)-i)
			break
		}
		b.WriteString("\n    " + o.describe(c.run.t0))
	}
	return b.String()
}

// byKey groups the top-ups (or adjustments) by order_id (idempotency_key);
// the keys come in the order they were first used, so that findings read
// in time order.
func (c *historyChecker) byKey(kind opKind) (map[string][]*historyOp, []string) {
	m := map[string][]*historyOp{}
	var keys []string
	for _, o := range c.ops {
		if o.kind != kind {
			continue
		}
		if _, seen := m[o.idem]; !seen {
			keys = append(keys, o.idem)
		}
		m[o.idem] = append(m[o.idem], o)
	}
	return m, keys
}

func keyName(kind opKind) string {
	if kind == opTopUp {
		return "order_id"
	}
	return "idempotency_key"
}

// checkHistoryOnly runs the checks that need no final state, so that they
// also run when the gateway could not be restarted.
func (c *historyChecker) checkHistoryOnly() {
	c.checkIdempotentAnswers(opTopUp)
	c.checkIdempotentAnswers(opAdjust)
	c.checkStatuses()
	c.checkRefusals()
}

func (c *historyChecker) checkState(s finalState) {
	credited := map[string]int64{}
	c.checkIdempotentEffects(opTopUp, s, credited)
	c.checkIdempotentEffects(opAdjust, s, credited)
	c.checkBalances(s, credited)
	c.checkCalls(s)
	c.checkKeysAndFreezes(s)
}

// checkIdempotentAnswers: for one key, at most one 201; a 200 only for a
// repeat of a body that may have taken effect before it ended; a 409 only
// when another body may have taken effect before it ended; every success
// names the same entry.
func (c *historyChecker) checkIdempotentAnswers(kind opKind) {
	groups, keys := c.byKey(kind)
	for _, key := range keys {
		ops := groups[key]
		var created []*historyOp
		entries := map[string]bool{}
		for _, o := range ops {
			if o.status == http.StatusCreated {
				created = append(created, o)
			}
			if o.entryID != "" {
				entries[o.entryID] = true
			}
		}
		if len(created) > 1 {
			c.failf("unexpected answers to "+keyName(kind)+" %q; got 201 %d times (for accounts %v); want at most once:%s",
				key, len(created), accountsOf(created), c.describe(ops))
			continue
		}
		if len(entries) > 1 {
			c.failf("unexpected answers to "+keyName(kind)+" %q; got %d different entries; want one:%s", key, len(entries), c.describe(ops))
			continue
		}
		for _, o := range ops {
			c.checkRepeatAnswer(o, ops)
			if want := o.account + " " + money.Format(o.amount); o.entryID != "" && o.answer != want {
				c.failf("unexpected entry in the answer to %s; got %s; want %s", o.describe(c.run.t0), o.answer, want)
			}
		}
	}
}

// checkRepeatAnswer checks a 200 or a 409 against the other requests with
// its key.
func (c *historyChecker) checkRepeatAnswer(o *historyOp, group []*historyOp) {
	identical := o.status == http.StatusOK
	if o.status != http.StatusOK && o.status != http.StatusConflict {
		return
	}
	for _, p := range group {
		if p != o && p.mayHaveTakenEffect() && p.start.Before(o.end) && sameBody(p, o) == identical {
			return
		}
	}
	want := "another body that may have taken effect first"
	if identical {
		want = "an identical request that may have taken effect first"
	}
	c.failf("unexpected %d to "+keyName(o.kind)+" %q (op#%d); got no %s:%s", o.status, o.idem, o.id, want, c.describe(group))
}

func accountsOf(ops []*historyOp) []string {
	var out []string
	for _, o := range ops {
		out = append(out, o.account)
	}
	return out
}

// wantStatuses lists the answers each kind of request may get; anything
// else (a 5xx, say) is a finding.
var wantStatuses = map[opKind][]int{
	opTopUp:     {200, 201, 409},
	opAdjust:    {200, 201, 409},
	opCall:      {200, 401, 402, 403},
	opCreateKey: {201},
	opRevokeKey: {204},
	opFreeze:    {204},
	opUnfreeze:  {204},
}

func (c *historyChecker) checkStatuses() {
	for _, o := range c.ops {
		if o.status != statusUnknown && !slices.Contains(wantStatuses[o.kind], o.status) {
			c.failf("unexpected status; got %s; want one of %v", o.describe(c.run.t0), wantStatuses[o.kind])
		}
		if o.kind == opCall && o.status == http.StatusOK && !o.complete {
			c.failf("unexpected reply; got %s with an incomplete body; want the whole reply", o.describe(c.run.t0))
		}
	}
}

// checkRefusals: a 401 needs a revocation of its key, a 403 a freeze of its
// account, begun before the call ended; a call that worked must not follow
// an acknowledged revocation of its key, nor an acknowledged freeze with no
// unfreeze begun since.
func (c *historyChecker) checkRefusals() {
	revokes := map[string][]*historyOp{}   // by key ID
	freezes := map[string][]*historyOp{}   // by account
	unfreezes := map[string][]*historyOp{} // by account
	for _, o := range c.ops {
		switch o.kind {
		case opRevokeKey:
			revokes[o.keyID] = append(revokes[o.keyID], o)
		case opFreeze:
			freezes[o.account] = append(freezes[o.account], o)
		case opUnfreeze:
			unfreezes[o.account] = append(unfreezes[o.account], o)
		}
	}
	for _, call := range c.ops {
		if call.kind != opCall {
			continue
		}
		begunBefore := func(p *historyOp) bool { return p.start.Before(call.end) }
		switch {
		case call.status == http.StatusUnauthorized && !anyOp(revokes[call.keyID], begunBefore):
			c.failf("unexpected 401; got %s; want a revocation of key %s begun before it", call.describe(c.run.t0), call.keyID)
		case call.status == http.StatusForbidden && !anyOp(freezes[call.account], begunBefore):
			c.failf("unexpected 403; got %s; want a freeze of %s begun before it", call.describe(c.run.t0), call.account)
		case call.complete:
			for _, p := range revokes[call.keyID] {
				if p.status == http.StatusNoContent && p.end.Before(call.start) {
					c.failf("unexpected call with a revoked key; got %s after %s; want 401", call.describe(c.run.t0), p.describe(c.run.t0))
				}
			}
			for _, f := range freezes[call.account] {
				// An unfreeze that may have taken effect, begun after the
				// freeze and before the call ended, excuses the call.
				thawed := func(u *historyOp) bool {
					return !u.start.Before(f.end) && u.start.Before(call.end) && u.mayHaveTakenEffect()
				}
				if f.status == http.StatusNoContent && f.end.Before(call.start) && !anyOp(unfreezes[call.account], thawed) {
					c.failf("unexpected call on a frozen account; got %s after %s; want 403", call.describe(c.run.t0), f.describe(c.run.t0))
				}
			}
		}
	}
}

func anyOp(ops []*historyOp, f func(*historyOp) bool) bool { return slices.ContainsFunc(ops, f) }

// checkIdempotentEffects: the whole ledger holds at most one entry per key;
// an acknowledged write is that entry (same ID, account and amount); with
// only unknown writes, the entry (if any) is one of theirs; with none that
// may have taken effect, there is no entry; no entry has a key no one sent.
// It adds to credited, per account, what the history says was credited: the
// 201s, and unknown writes seen in the ledger.
func (c *historyChecker) checkIdempotentEffects(kind opKind, s finalState, credited map[string]int64) {
	groups, keys := c.byKey(kind)
	ledgerKind, entries := string(kind), map[string][]stateEntry{}
	for _, e := range s.entries {
		if e.Kind == ledgerKind {
			k := e.OrderID
			if kind == opAdjust {
				k = e.IdempotencyKey
			}
			entries[k] = append(entries[k], e)
		}
	}
	for _, key := range keys {
		c.checkKeyEffect(kind, key, groups[key], entries[key], credited)
		delete(entries, key)
	}
	for key, es := range entries {
		c.failf("unexpected %s entries for %s %q that no request carried; got %v; want none", kind, keyName(kind), key, es)
	}
}

func (c *historyChecker) checkKeyEffect(kind opKind, key string, ops []*historyOp, entries []stateEntry, credited map[string]int64) {
	var created, repeated, unknown []*historyOp
	for _, o := range ops {
		switch o.status {
		case http.StatusCreated:
			created = append(created, o)
			credited[o.account] += o.amount
		case http.StatusOK:
			repeated = append(repeated, o)
		case statusUnknown:
			unknown = append(unknown, o)
		}
	}
	if len(entries) > 1 {
		c.failf("unexpected ledger for "+keyName(kind)+" %q; got %d entries (%s); want at most one across the ledger:%s",
			key, len(entries), describeEntries(entries), c.describe(ops))
	}
	if len(created)+len(repeated) > 0 && len(entries) == 0 {
		c.failf("acknowledged %s lost; got no entry for %s %q; want one:%s", kind, keyName(kind), key, c.describe(ops))
	}
	for _, e := range entries {
		amount := c.nanos(e.Amount)
		matches := func(o *historyOp) bool { return o.account == e.account && o.amount == amount }
		if slices.ContainsFunc(created, func(o *historyOp) bool { return o.entryID == e.ID && matches(o) }) {
			continue
		}
		i := slices.IndexFunc(unknown, matches)
		if i < 0 || len(created) > 0 {
			c.failf("unexpected entry for %s %q; got %s; want the acknowledged one or one unknown request's:%s",
				keyName(kind), key, describeEntries([]stateEntry{e}), c.describe(ops))
			continue
		}
		credited[e.account] += amount
		unknown = slices.Delete(unknown, i, i+1) // one request, one effect at most
	}
	for _, o := range repeated {
		if !slices.ContainsFunc(entries, func(e stateEntry) bool { return e.ID == o.entryID && e.account == o.account }) {
			c.failf("unexpected 200 to %s %q; got entry %s, which the ledger does not hold for %s; want the first result:%s",
				keyName(kind), key, o.entryID, o.account, c.describe(ops))
		}
	}
}

func describeEntries(es []stateEntry) string {
	var parts []string
	for _, e := range es {
		parts = append(parts, fmt.Sprintf("entry %s %s %s on %s", e.ID, e.Kind, e.Amount, e.account))
	}
	return strings.Join(parts, ", ")
}

func (c *historyChecker) nanos(s string) int64 {
	n, err := money.Parse(s)
	if err != nil {
		c.failf("unexpected amount; got %q; want a decimal string: %v", s, err)
	}
	return n
}

// checkBalances: per account, available + held + charged equals what the
// history credited minus what expired, and the entries sum to available.
func (c *historyChecker) checkBalances(s finalState, credited map[string]int64) {
	charged, expired, sum := map[string]int64{}, map[string]int64{}, map[string]int64{}
	for _, e := range s.entries {
		amount := c.nanos(e.Amount)
		sum[e.account] += amount
		switch e.Kind {
		case "settle":
			charged[e.account] += c.nanos(e.Charged)
		case "expire":
			expired[e.account] -= amount
		}
	}
	for _, a := range c.run.accounts {
		acct := s.accounts[a]
		available, held := c.nanos(acct.Available), c.nanos(acct.Held)
		if got, want := available+held+charged[a], credited[a]-expired[a]; got != want {
			c.failf("unexpected balance of %s; got available %s + held %s + charged %s = %s; want credited %s - expired %s = %s",
				a, acct.Available, acct.Held, money.Format(charged[a]), money.Format(got),
				money.Format(credited[a]), money.Format(expired[a]), money.Format(want))
		}
		if sum[a] != available {
			c.failf("unexpected entries of %s; got a sum of %s; want available %s", a, money.Format(sum[a]), acct.Available)
		}
		if held != 0 {
			c.failf("unexpected hold on idle account %s; got held %s; want 0", a, acct.Held)
		}
	}
}

// callEntries counts one call's ledger entries.
type callEntries struct {
	holds, settles, voids int
	charged               string
	account               string
}

// checkCalls: every hold ends exactly once; a call the client saw complete
// has one hold and one settlement, a call record of outcome ok charging what
// the settlement charged; a refused call holds nothing.
func (c *historyChecker) checkCalls(s finalState) {
	byRequest := map[string]*callEntries{}
	for _, e := range s.entries {
		if e.RequestID == "" || (e.Kind != "hold" && e.Kind != "settle" && e.Kind != "void") {
			continue
		}
		ce := byRequest[e.RequestID]
		if ce == nil {
			ce = &callEntries{account: e.account}
			byRequest[e.RequestID] = ce
		}
		switch e.Kind {
		case "hold":
			ce.holds++
		case "settle":
			ce.settles++
			ce.charged = e.Charged
		case "void":
			ce.voids++
		}
	}
	for id, ce := range byRequest {
		if ce.holds != 1 || ce.settles+ce.voids != 1 {
			c.failf("unexpected entries for call %s on %s; got %d holds, %d settles, %d voids; want one hold ended once", id, ce.account, ce.holds, ce.settles, ce.voids)
		}
	}
	for _, o := range c.ops {
		if o.kind != opCall || o.requestID == "" {
			continue
		}
		ce := byRequest[o.requestID]
		switch {
		case o.complete:
			c.checkCompleteCall(o, ce, s.calls[o.requestID])
		case o.status == 401 || o.status == 402 || o.status == 403:
			if ce != nil {
				c.failf("unexpected hold for a refused call; got %d holds for %s; want none", ce.holds, o.describe(c.run.t0))
			}
		}
	}
}

func (c *historyChecker) checkCompleteCall(o *historyOp, ce *callEntries, rec stateCall) {
	if ce == nil || ce.holds != 1 || ce.settles != 1 || ce.voids != 0 || ce.account != o.account {
		c.failf("unexpected entries for a completed call; got %+v for %s; want one hold and one settle on %s", ce, o.describe(c.run.t0), o.account)
		return
	}
	if rec.Outcome != "ok" || rec.Status != http.StatusOK || rec.Charged != ce.charged {
		c.failf("unexpected call record for a completed call; got %+v for %s; want outcome ok, status 200, charged %s", rec, o.describe(c.run.t0), ce.charged)
	}
}

// checkKeysAndFreezes: acknowledged key changes survive, and each account's
// frozen flag is what its last acknowledged freeze or unfreeze left, or
// what an unknown one after it asked for.
func (c *historyChecker) checkKeysAndFreezes(s finalState) {
	lastFrozen := map[string][]bool{} // account → allowed final values
	for _, o := range c.ops {
		switch {
		case o.kind == opCreateKey && o.status == http.StatusCreated:
			if _, ok := s.keys[o.keyID]; !ok {
				c.failf("acknowledged key lost; got no key %s on %s; want it listed", o.keyID, o.account)
			}
		case o.kind == opRevokeKey && o.status == http.StatusNoContent:
			if k := s.keys[o.keyID]; !k.Revoked {
				c.failf("acknowledged revocation lost; got key %+v; want revoked (%s)", k, o.describe(c.run.t0))
			}
		case o.kind == opFreeze || o.kind == opUnfreeze:
			frozen := o.kind == opFreeze
			switch o.status {
			case http.StatusNoContent:
				lastFrozen[o.account] = []bool{frozen}
			case statusUnknown:
				if _, ok := lastFrozen[o.account]; !ok {
					lastFrozen[o.account] = []bool{false}
				}
				lastFrozen[o.account] = append(lastFrozen[o.account], frozen)
			}
		}
	}
	for _, a := range c.run.accounts {
		allowed, ok := lastFrozen[a]
		if !ok {
			allowed = []bool{false}
		}
		if got := s.accounts[a].Frozen; !slices.Contains(allowed, got) {
			c.failf("unexpected frozen flag of %s; got %v; want one of %v", a, got, allowed)
		}
	}
}
