package notify

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/wal"
)

// clock is the test's clock, moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// receiver is a webhook endpoint that checks every signature and keeps
// what it got; it can be down (503) or fail once after taking an event.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []payload
	down   bool
	failAt string // an event ID to take and then answer 500, once
	srv    *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
		if !Verify(r.secret, id, ts, req.Header.Get("webhook-signature"), body) {
			t.Errorf("a delivery of %s does not verify", id)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p payload
		if err := json.Unmarshal(body, &p); err != nil || p.ID != id {
			t.Errorf("bad payload %s: %v", body, err)
		}
		r.got = append(r.got, p)
		if id == r.failAt {
			r.failAt = ""
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, p := range r.got {
		out = append(out, p.Type)
	}
	return out
}

func (r *receiver) set(f func(r *receiver)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

// mailbox is an SMTP server (go-smtp) keeping the messages it gets.
type mailbox struct {
	mu   sync.Mutex
	msgs []string
	addr string
}

type mailSession struct{ box *mailbox }

func (s *mailSession) Reset()                               {}
func (s *mailSession) Logout() error                        { return nil }
func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, string(b))
	s.box.mu.Unlock()
	return err
}

func newMailbox(t *testing.T) *mailbox {
	box := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{box}, nil }))
	srv.Domain, srv.AllowInsecureAuth = "localhost", true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	box.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return box
}

func (b *mailbox) subjects() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		for _, line := range strings.Split(m, "\r\n") {
			if s, ok := strings.CutPrefix(line, "Subject: "); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// world is a ledger, a notifier on it, a receiver per webhook, a mailbox.
type world struct {
	t        *testing.T
	dir      string
	clk      *clock
	log      *wal.Log
	led      *ledger.Ledger
	n        *Notifier
	acct     *receiver // acme's webhook
	platform *receiver
	mail     *mailbox
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, dir: t.TempDir(), clk: &clock{now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)},
		acct: newReceiver(t), platform: newReceiver(t), mail: newMailbox(t)}
	w.open()
	if _, err := w.led.CreateAccount(ledger.AccountSpec{ID: "acme", Limits: ledger.DefaultLimits}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := w.n.SetSettings("acme", Settings{Emails: []string{"ada@acme.test"}, WebhookURL: w.acct.srv.URL, LowBalance: 12_000_000_000})
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("settings: %q %v", secret, err)
	}
	w.acct.secret = secret
	_, w.platform.secret, err = w.n.SetSettings("", Settings{WebhookURL: w.platform.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// open opens (or reopens, after a stop that lost everything in memory)
// the log, the ledger and the notifier.
func (w *world) open() {
	w.t.Helper()
	var err error
	if w.log, err = wal.Open(w.dir, wal.Config{}); err != nil {
		w.t.Fatal(err)
	}
	if w.led, err = ledger.Open(w.log, ledger.Config{Shards: 4, Now: w.clk.Now}); err != nil {
		w.t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(w.mail.addr)
	p := 0
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	w.n, err = New(Config{Ledger: w.led, Log: w.log, Now: w.clk.Now, Logger: log.New(io.Discard, "", 0),
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Timeout: 5 * time.Second,
		SMTP: &SMTP{Host: host, Port: p, TLS: "none", From: "Billing <billing@platform.test>"}})
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) close() {
	w.n.running.Wait()
	w.log.Close()
}

// settle steps the notifier until cond holds (deliveries run behind it).
func (w *world) settle(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: account got %v, platform %v, mail %v", what, w.acct.types(), w.platform.types(), w.mail.subjects())
		}
		w.n.Step(context.Background())
		time.Sleep(5 * time.Millisecond)
		w.clk.advance(time.Second) // retries become due
	}
}

func (w *world) spend(requestID string, amount int64) {
	w.t.Helper()
	if _, err := w.led.Hold("acme", requestID, "", amount); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.led.Settle(requestID, amount, nil); err != nil {
		w.t.Fatal(err)
	}
}

// TestAccountLife: an account's life with the clock moved through it;
// every notice arrives by webhook (signed) and email, in order, once;
// the platform's webhook gets them all; a restart between the change and
// the delivery loses nothing; an injected failure makes the one duplicate;
// a receiver down for an hour gets everything in order when it is back.
func TestAccountLife(t *testing.T) {
	w := newWorld(t)
	defer func() { w.close() }()
	day := 24 * time.Hour
	if _, _, err := w.led.TopUp(ledger.TopUpRequest{Account: "acme", Amount: 10_000_000_000, OrderID: "o1", Credit: ledger.CreditPaid}); err != nil {
		t.Fatal(err)
	}
	gift := w.clk.Now().Add(40 * day).UnixNano()
	if _, _, err := w.led.TopUp(ledger.TopUpRequest{Account: "acme", Amount: 3_000_000_000, OrderID: "g1", Credit: ledger.CreditGift, ExpiresAtNanos: gift}); err != nil {
		t.Fatal(err)
	}
	// A restart before anything was delivered: the events come from the
	// WAL's records, so nothing is lost.
	w.close()
	w.open()
	w.spend("req_1", 1_000_000_000) // 13 → 12: not under 12 yet
	w.spend("req_2", 1_000_000_000) // 12 → 11: low, once
	w.spend("req_3", 500_000_000)   // 11 → 10.5: no second notice (the gift, spent first, keeps 0.5)
	w.settle("top-ups and a low balance", func() bool { return len(w.acct.types()) == 3 })

	w.clk.advance(11 * day) // the gift has 29 days left
	w.settle("30-day reminder", func() bool { return len(w.acct.types()) == 4 })
	w.clk.advance(23 * day) // 6 days left
	w.settle("7-day reminder", func() bool { return len(w.acct.types()) == 5 })
	w.clk.advance(7 * day)
	if _, err := w.led.Expire(w.clk.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	w.settle("the expiry", func() bool { return len(w.acct.types()) == 6 })
	w.n.Catalogue([]meter.CatalogueNotice{
		{Kind: PriceScheduled, Model: "claude-x", At: w.clk.Now().Add(30 * day), Prices: meter.Rates{Input: 4_000_000_000}},
		{Kind: ModelRetiring, Model: "claude-old", At: w.clk.Now().Add(60 * day), Successor: "claude-x"},
	})
	if err := w.led.SetFrozen("acme", true, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := w.led.SetFrozen("acme", false, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.led.FileDispute(ledger.Dispute{ID: "dsp_1", AccountID: "acme", RequestID: "req_2", Reason: "wrong"}); err != nil {
		t.Fatal(err)
	}
	// The receiver takes dispute.opened but answers 500: it gets it twice.
	filed := "evt_" + strconv.FormatUint(w.log.LastSeq(), 10)
	w.acct.set(func(r *receiver) { r.failAt = filed })
	if _, err := w.led.AcceptDispute("dsp_1", 1_000_000_000, "sorry", "admin"); err != nil {
		t.Fatal(err)
	}
	w.settle("the rest", func() bool { return len(w.acct.types()) == 13 })
	want := []string{TopUpReceived, TopUpReceived, BalanceLow, CreditExpiring, CreditExpiring, CreditExpired, PriceScheduled, ModelRetiring,
		AccountFrozen, AccountUnfrozen, DisputeOpened, DisputeOpened, DisputeResolved}
	if got := w.acct.types(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("the account's webhook got\n%v\nwant\n%v", got, want)
	}
	w.settle("the platform's webhook and the emails", func() bool {
		return len(w.platform.types()) == 12 && len(w.mail.subjects()) == 12
	})
	subjects := strings.Join(w.mail.subjects(), "\n")
	for _, s := range []string{"10 credits added to your account", "Your balance is low: 11 credits", "0.5 credits expire on", "0.5 credits expired",
		"Price change for claude-x from", "claude-old retires on", "Your account is frozen", "Your dispute dsp_1 was accepted"} {
		if !strings.Contains(subjects, s) {
			t.Errorf("no email %q in\n%s", s, subjects)
		}
	}

	// Down for an hour: the retries back off (at most 10 minutes apart)
	// and everything arrives in order when it is back.
	w.acct.set(func(r *receiver) { r.down = true })
	w.led.CreateKey(ledger.Key{ID: "key_1", AccountID: "acme", Name: "ci", Hash: [32]byte{7}})
	w.led.RevokeKey("key_1")
	for range 12 {
		w.n.Step(context.Background())
		time.Sleep(20 * time.Millisecond)
		w.clk.advance(5 * time.Minute)
	}
	if d := w.n.Destinations("acme"); d[1].Attempts < 3 || d[1].Pending != 2 {
		t.Fatalf("while down: %+v", d[1])
	}
	w.acct.set(func(r *receiver) { r.down = false })
	w.clk.advance(10 * time.Minute)
	w.settle("after the outage", func() bool { return len(w.acct.types()) == 15 })
	if got := w.acct.types()[13:]; got[0] != KeyCreated || got[1] != KeyRevoked {
		t.Fatalf("after the outage, in order: %v", got)
	}
}

// TestInvitationMailed: an invitation's link goes by email at once.
func TestInvitationMailed(t *testing.T) {
	w := newWorld(t)
	defer w.close()
	err := w.n.MailInvitation(context.Background(), "bob@acme.test", map[string]string{"console": "customers'", "account": "acme",
		"link": "http://127.0.0.1:8080/console/invite?token=tgi-x", "expires_at": "2026-12-14T12:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	w.mail.mu.Lock()
	defer w.mail.mu.Unlock()
	if len(w.mail.msgs) != 1 || !strings.Contains(w.mail.msgs[0], "Subject: Your invitation to the customers' console") ||
		!strings.Contains(w.mail.msgs[0], "/console/invite?token=3Dtgi-x") && !strings.Contains(w.mail.msgs[0], "/console/invite?token=tgi-x") {
		t.Fatalf("the invitation mail: %q", w.mail.msgs)
	}
	if (*Notifier)(nil).MailInvitation(context.Background(), "x@y.z", nil) != ErrNoEmail {
		t.Fatal("no SMTP must say so")
	}
}

// TestLowBalanceInLogOrder: a crossing, a top-up and a second crossing
// read in one step are two notices; a crossing then a top-up leaves the
// next crossing armed.
func TestLowBalanceInLogOrder(t *testing.T) {
	w := newWorld(t)
	defer w.close()
	topUp := func(order string, amount int64) {
		t.Helper()
		if _, _, err := w.led.TopUp(ledger.TopUpRequest{Account: "acme", Amount: amount, OrderID: order, Credit: ledger.CreditPaid}); err != nil {
			t.Fatal(err)
		}
	}
	topUp("o1", 13_000_000_000)
	w.spend("r1", 2_000_000_000) // 11: crossing
	topUp("o2", 5_000_000_000)   // 16: re-armed
	w.spend("r2", 5_000_000_000) // 11: crossing again
	topUp("o3", 5_000_000_000)   // 16: re-armed
	w.settle("two crossings in one step", func() bool { return len(w.acct.types()) == 5 })
	w.spend("r3", 5_000_000_000) // 11: a third crossing, in a later step
	w.settle("the third crossing", func() bool { return len(w.acct.types()) == 6 })
	low := 0
	for _, typ := range w.acct.types() {
		if typ == BalanceLow {
			low++
		}
	}
	if low != 3 {
		t.Fatalf("balance.low %d times: %v", low, w.acct.types())
	}
}

// TestDisabledDestinationDoesNotHoldThePrune: events a disabled
// destination never took are pruned once the others have them.
func TestDisabledDestinationDoesNotHoldThePrune(t *testing.T) {
	w := newWorld(t)
	defer w.close()
	w.acct.set(func(r *receiver) { r.down = true })
	if _, _, err := w.led.TopUp(ledger.TopUpRequest{Account: "acme", Amount: 1_000_000_000, OrderID: "o1", Credit: ledger.CreditPaid}); err != nil {
		t.Fatal(err)
	}
	for range 40 { // 72 h of failures, 10 minutes apart at most
		w.n.Step(context.Background())
		time.Sleep(10 * time.Millisecond)
		w.clk.advance(3 * time.Hour)
	}
	var disabled bool
	for _, d := range w.n.Destinations("acme") {
		disabled = disabled || d.Disabled && d.Channel == Webhook
	}
	if !disabled {
		t.Fatalf("the failing webhook is not disabled: %+v", w.n.Destinations("acme"))
	}
	w.settle("the email and the platform", func() bool { return len(w.platform.types()) == 1 && len(w.mail.subjects()) == 1 })
	w.clk.advance(8 * 24 * time.Hour)
	w.n.Step(context.Background())
	if n := len(w.n.Events("", 100)); n != 0 {
		t.Fatalf("%d events kept for a disabled destination", n)
	}
}
