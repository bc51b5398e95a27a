package notify

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/wal"
)

// Config is what the notifier needs.
type Config struct {
	// Ledger and Log are a single node's source and store: events come
	// from the ledger's records, the outbox is kept in the WAL's state
	// area, and the WAL holds the records until the notifier read them.
	Ledger *ledger.Ledger
	Log    *wal.Log
	// Source, Store and Lock replace them in cluster mode: the changes
	// and the outbox's state in PostgreSQL, and the lock that makes the
	// nodes' notifiers one.
	Source Source
	Store  Store
	Lock   Lock
	// RemindEvery is how often accounts are scanned for credit about to
	// expire (default: every Tick).
	RemindEvery time.Duration
	// SMTP sends email (nil: no email channel).
	SMTP *SMTP
	// TemplatesDir holds email template overrides ("" for none).
	TemplatesDir string
	// AllowNetworks are the internal networks (loopback, private, ...)
	// every webhook may reach, customers' included (none by default);
	// PlatformAllowNetworks those only the platform's webhook may.
	AllowNetworks, PlatformAllowNetworks []netip.Prefix
	// Timeout bounds one delivery (default 10 s).
	Timeout time.Duration
	// DisableAfter is how long a destination may fail before it is
	// disabled and operators alerted (default 72 h).
	DisableAfter time.Duration
	// Tick is how often the outbox is read and deliveries tried (default
	// 1 s).
	Tick time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now    func() time.Time
	Logger *log.Logger
}

// Backoff of a failing destination: the first retry after backoffBase,
// doubling, at most backoffMax apart.
const (
	backoffBase = 5 * time.Second
	backoffMax  = 10 * time.Minute
	// retain is how long delivered events stay visible.
	retain = 7 * 24 * time.Hour
	// maxAttemptsShown is the attempts a destination keeps for operators.
	maxAttemptsShown = 20
	// deliverers bounds the deliveries in flight.
	deliverers = 16
)

// Notifier turns ledger changes, credit about to expire and catalogue
// notices into events, keeps them in a durable outbox, and delivers them
// at least once, in order per destination, with retries.
//
// Why the outbox is the WAL: the events of money changes are read from
// the ledger's own records (ledger.Changes) after a cursor kept with the
// events derived from them, so an event exists exactly when its record
// does: a crash before the record is synced leaves neither, a crash after
// it leaves the record, which the notifier reads again at start. The WAL
// keeps records until the cursor has passed them (wal.Log.SetRetention).
type Notifier struct {
	cfg    Config
	mailer *mailer
	// http posts customers' webhooks, platformHTTP the platform's.
	http, platformHTTP *http.Client
	wake               chan struct{}
	sem                chan struct{}
	// seq is the last ledger record read (what the WAL must keep after).
	seq atomic.Uint64
	// coord serialises coordinated within the process.
	coord sync.Mutex
	// scanned is when credit reminders were last looked for.
	scanned time.Time

	mu       sync.Mutex
	order    uint64 // the last event's order
	events   []*Event
	byID     map[string]*Event
	once     map[string]int64
	low      map[string]bool // accounts told of a low balance, not re-armed
	settings map[string]*Settings
	dests    map[string]*destination
	// inFlight names the destinations with a delivery running.
	inFlight map[string]bool
	running  sync.WaitGroup
}

// destination is one place events go, with its place in the outbox.
type destination struct {
	ID      string `json:"id"`
	Account string `json:"account"` // "" for the platform's
	Channel string `json:"channel"` // webhook or email
	// Cursor is the order of the last event delivered or passed over.
	Cursor       uint64    `json:"cursor"`
	Replays      []string  `json:"replays,omitempty"`
	Attempts     int       `json:"attempts"`
	NextAt       int64     `json:"next_at"`
	FailingSince int64     `json:"failing_since"`
	Disabled     bool      `json:"disabled"`
	Log          []Attempt `json:"log"`
	busy         bool
}

// Attempt is one try of a delivery.
type Attempt struct {
	EventID string `json:"event_id"`
	At      int64  `json:"at"`
	OK      bool   `json:"ok"`
	Status  int    `json:"status,omitempty"`
	Error   string `json:"error,omitempty"`
}

// The outbox's names in the state area.
const (
	cursorName   = "notify/cursor"
	eventPrefix  = "notify/event/"
	oncePrefix   = "notify/once/"
	lowPrefix    = "notify/low/"
	destPrefix   = "notify/dest/"
	settingsName = "notify/settings/"
	platformName = "notify/platform"
)

type cursorState struct {
	Seq   uint64 `json:"seq"`
	Order uint64 `json:"order"`
}

// New loads the outbox and returns a Notifier; Run delivers.
func New(cfg Config) (*Notifier, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.DisableAfter == 0 {
		cfg.DisableAfter = 72 * time.Hour
	}
	if cfg.Tick == 0 {
		cfg.Tick = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	n := &Notifier{cfg: cfg, http: webhookClient(cfg.Timeout, cfg.AllowNetworks),
		platformHTTP: webhookClient(cfg.Timeout, append(slices.Clone(cfg.AllowNetworks), cfg.PlatformAllowNetworks...)), wake: make(chan struct{}, 1), sem: make(chan struct{}, deliverers),
		byID: map[string]*Event{}, once: map[string]int64{}, low: map[string]bool{}, settings: map[string]*Settings{}, dests: map[string]*destination{}, inFlight: map[string]bool{}}
	if cfg.SMTP != nil {
		n.mailer = &mailer{cfg: *cfg.SMTP, dir: cfg.TemplatesDir}
		if err := n.mailer.checkOverrides(); err != nil {
			return nil, err
		}
	}
	if n.cfg.Source == nil {
		n.cfg.Source, n.cfg.Store = ledgerSource{l: cfg.Ledger, log: cfg.Log}, cfg.Log
		cfg.Log.SetRetention(n.seq.Load)
	}
	if err := n.coordinated(n.load); err != nil {
		return nil, err
	}
	return n, nil
}

// load reads the outbox; a new one starts with the changes to come, not
// the history of books that notifications were turned on for.
func (n *Notifier) load() error {
	s, err := readState(n.cfg.Store)
	if err != nil {
		return err
	}
	n.use(s)
	if !s.fresh {
		return nil
	}
	last, err := n.cfg.Source.Last()
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return n.record(nil, last, nil, nil)
}

// Run reads the outbox's sources and delivers every Tick, and at once
// when woken, until ctx ends; it then waits for deliveries in flight.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.Tick)
	defer t.Stop()
	for {
		n.Step(ctx)
		select {
		case <-ctx.Done():
			n.running.Wait()
			return
		case <-t.C:
		case <-n.wake:
		}
	}
}

// Step reads new ledger changes and due reminders into the outbox, then
// starts the deliveries that are due.
func (n *Notifier) Step(ctx context.Context) {
	err := n.coordinated(func() error {
		if err := n.tail(); err != nil {
			n.cfg.Logger.Printf("notify: cannot read the books' changes: %s", err)
		}
		if now := n.cfg.Now(); now.Sub(n.scanned) >= n.cfg.RemindEvery {
			n.scanned = now
			if err := n.scanExpiring(); err != nil {
				n.cfg.Logger.Printf("notify: cannot record credit reminders: %s", err)
			}
		}
		if err := n.prune(); err != nil {
			n.cfg.Logger.Printf("notify: %s", err)
		}
		n.dispatch(ctx)
		return nil
	})
	if err != nil {
		n.cfg.Logger.Printf("notify: %s", err)
	}
}

// Wake asks Run for a step now (after a change that has events).
func (n *Notifier) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// tail reads the ledger's records after the cursor into events, kept with
// the new cursor in one write.
func (n *Notifier) tail() error {
	var found []Event
	told := map[string]bool{} // accounts whose low-balance state the batch changes
	last := n.seq.Load()
	err := n.cfg.Source.Changes(last, func(c ledger.Change) error {
		last = c.Seq
		found = append(found, eventsOf(c)...)
		if c.Kind != ledger.ChangeEntry {
			return nil
		}
		if c.Entry.Kind == ledger.EntryTopUp {
			told[c.Account] = false // re-armed
		}
		if e, ok := n.lowBalance(c, told); ok {
			found, told[c.Account] = append(found, e), true
		}
		return nil
	})
	if err != nil || last == n.seq.Load() {
		return err
	}
	return n.record(found, last, func(puts []wal.State) []wal.State {
		for a, t := range told {
			st := wal.State{Name: lowPrefix + a}
			if t {
				st.Value = []byte("1")
			}
			puts = append(puts, st)
		}
		return puts
	}, func() {
		for a, t := range told {
			if t {
				n.low[a] = true
			} else {
				delete(n.low, a)
			}
		}
	})
}

// lowBalance is the balance.low event of an entry that takes the
// account's available balance from its threshold or above to under it,
// once per crossing: a top-up re-arms it (a hold released and taken again
// does not). batch holds the states the changes read so far set, in log
// order; the others are as last recorded.
func (n *Notifier) lowBalance(c ledger.Change, batch map[string]bool) (Event, bool) {
	n.mu.Lock()
	s := n.settings[c.Account]
	told, changed := batch[c.Account]
	if !changed {
		told = n.low[c.Account]
	}
	n.mu.Unlock()
	before := c.Entry.AvailableAfter - c.Entry.Amount
	if s == nil || s.LowBalance == 0 || told || before < s.LowBalance || c.Entry.AvailableAfter >= s.LowBalance {
		return Event{}, false
	}
	return Event{ID: "evt_" + strconv.FormatUint(c.Seq, 10) + "_low", Type: BalanceLow, Time: time.Unix(0, c.TimeNanos).UTC(), Account: c.Account,
		Data: map[string]string{"available": credits(c.Entry.AvailableAfter), "threshold": credits(s.LowBalance)}}, true
}

// record keeps events in the outbox with the cursor seq (the last ledger
// record read; n.seq.Load() when it does not move) and what extra adds, in
// one write, then in memory (and apply).
func (n *Notifier) record(events []Event, seq uint64, extra func([]wal.State) []wal.State, apply func()) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	seq = max(seq, n.seq.Load()) // a catalogue's notices may race the tail
	order := n.order
	puts := make([]wal.State, 0, len(events)+1)
	fresh := events[:0]
	for _, e := range events {
		if n.byID[e.ID] != nil {
			continue // a catalogue notice told already
		}
		order++
		e.Order = order
		b, err := sonic.Marshal(e)
		if err != nil {
			return err
		}
		puts = append(puts, wal.State{Name: eventName(order), Value: b})
		fresh = append(fresh, e)
	}
	cur, _ := sonic.Marshal(cursorState{Seq: seq, Order: order})
	puts = append(puts, wal.State{Name: cursorName, Value: cur})
	if extra != nil {
		puts = extra(puts)
	}
	if err := n.save(puts...); err != nil {
		return err
	}
	for i := range fresh {
		e := fresh[i]
		n.events, n.byID[e.ID] = append(n.events, &e), &e
	}
	n.order = order
	n.seq.Store(seq)
	if apply != nil {
		apply()
	}
	return nil
}

func eventName(order uint64) string { return fmt.Sprintf("%s%020d", eventPrefix, order) }

// The reminders of expiring credit, before the credit expires.
var reminders = []struct {
	days   int
	before time.Duration
}{{30, 30 * 24 * time.Hour}, {7, 7 * 24 * time.Hour}}

// scanExpiring records credit.expiring for every credit bucket with
// something left that expires within 30 days, and again within 7, once
// each per bucket (a bucket is its kind and expiry: paid credit's expiry
// moves with each paid top-up, and so its reminders do).
func (n *Notifier) scanExpiring() error {
	now := n.cfg.Now()
	var events []Event
	var marks []wal.State
	err := n.cfg.Source.Accounts(func(a ledger.AccountInfo) {
		for _, b := range a.Credits {
			left := time.Duration(b.ExpiresAtNanos - now.UnixNano())
			if b.ExpiresAtNanos == 0 || b.Remaining <= 0 || left <= 0 {
				continue
			}
			for i, r := range reminders {
				id := fmt.Sprintf("exp%d_%s_%s_%d", r.days, a.ID, b.Credit, b.ExpiresAtNanos)
				if left > r.before || n.toldOnce(id) {
					continue
				}
				until := []byte(strconv.FormatInt(b.ExpiresAtNanos+int64(24*time.Hour), 10))
				for _, earlier := range reminders[:i] { // a reminder overtaken is not sent late
					marks = append(marks, wal.State{Name: oncePrefix + fmt.Sprintf("exp%d_%s_%s_%d", earlier.days, a.ID, b.Credit, b.ExpiresAtNanos), Value: until})
				}
				marks = append(marks, wal.State{Name: oncePrefix + id, Value: until})
				events = append(events, Event{ID: id, Type: CreditExpiring, Time: now.UTC(), Account: a.ID, Data: map[string]string{
					"amount": credits(b.Remaining), "credit": b.Credit.String(), "expires_at": timeOf(b.ExpiresAtNanos),
					"days": strconv.Itoa(int((left + 24*time.Hour - 1) / (24 * time.Hour)))}})
			}
		}
	})
	if err != nil || len(events) == 0 {
		return err
	}
	return n.record(events, n.seq.Load(), func(p []wal.State) []wal.State { return append(p, marks...) }, func() {
		for _, m := range marks {
			until, _ := strconv.ParseInt(string(m.Value), 10, 64)
			n.once[m.Name[len(oncePrefix):]] = until
		}
	})
}

func (n *Notifier) toldOnce(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.once[id]
	return ok
}

// Catalogue records the platform-wide events of a catalogue's notices
// (price.scheduled, model.retiring), each once. A nil Notifier (no
// notifications) records nothing.
func (n *Notifier) Catalogue(notices []meter.CatalogueNotice) error {
	if n == nil {
		return nil
	}
	var events []Event
	for _, x := range notices {
		events = append(events, catalogueEvent(x, n.cfg.Now()))
	}
	if len(events) == 0 {
		return nil
	}
	defer n.Wake()
	return n.coordinated(func() error { return n.record(events, n.seq.Load(), nil, nil) })
}

// sortedDests are the destinations in ID order (deliveries start in a
// stable order).
func (n *Notifier) sortedDests() []*destination {
	out := make([]*destination, 0, len(n.dests))
	for _, d := range n.dests {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
