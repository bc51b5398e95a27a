package notify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/wal"
)

// Store keeps the outbox's state: a single node's WAL state area, or in
// cluster mode PostgreSQL's shared states.
type Store interface {
	States(prefix string, fn func(name string, value []byte) error) error
	// SetStates writes states (a nil value deletes) at once.
	SetStates(states ...wal.State) error
}

// Source is where events come from: the changes of the books, in one
// order, and the accounts (for credit reminders).
type Source interface {
	// Changes calls fn with every change after seq, in order.
	Changes(after uint64, fn func(ledger.Change) error) error
	// Last is the last change's seq: where a new outbox starts.
	Last() (uint64, error)
	// Accounts calls fn with every account and its credit.
	Accounts(fn func(ledger.AccountInfo)) error
}

// Lock makes several processes' notifiers one (cluster mode): each change
// to the outbox's state happens under it, after the state the others
// wrote is read. The Store's writes tell the Lock (a version bumped in the
// writes' own transaction), so a process that dies between a write and
// the unlock still has the others read it.
type Lock interface {
	// Lock waits for the lock and says whether another process wrote
	// since this one last read; unlock releases it, saying whether this
	// process holds the state as stored (false: it failed to read it, and
	// reads it again next time).
	Lock(ctx context.Context) (changed bool, unlock func(current bool), err error)
}

// ledgerSource is a single node's source: its ledger's records, read from
// its WAL (kept until the notifier's cursor passed them).
type ledgerSource struct {
	l   *ledger.Ledger
	log *wal.Log
}

func (s ledgerSource) Changes(after uint64, fn func(ledger.Change) error) error {
	return s.l.Changes(after, fn)
}

func (s ledgerSource) Last() (uint64, error) { return s.log.LastSeq(), nil }

func (s ledgerSource) Accounts(fn func(ledger.AccountInfo)) error { return s.l.Accounts(fn) }

// coordinated runs fn as the only notifier of the cluster at that moment,
// the state other processes wrote read first (without a Lock: fn alone).
func (n *Notifier) coordinated(fn func() error) error {
	if n.cfg.Lock == nil {
		return fn()
	}
	// One waiter per process: each holds a database connection while it
	// waits, and the holder needs others for its work.
	n.coord.Lock()
	defer n.coord.Unlock()
	changed, unlock, err := n.cfg.Lock.Lock(context.Background())
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	current := true
	defer func() { unlock(current) }()
	if changed {
		if err := n.reload(); err != nil {
			current = false
			return err
		}
	}
	return fn()
}

// refresh reads what other processes wrote, for a view; a view served
// from what was last read is better than none, so a failure is logged.
func (n *Notifier) refresh() {
	if err := n.coordinated(func() error { return nil }); err != nil {
		n.cfg.Logger.Printf("notify: showing the outbox as last read: %s", err)
	}
}

// save writes states to the store.
func (n *Notifier) save(states ...wal.State) error {
	return n.cfg.Store.SetStates(states...)
}

// snapshot is the outbox's state as stored.
type snapshot struct {
	fresh    bool // no cursor yet: a new outbox
	cursor   cursorState
	events   []*Event
	once     map[string]int64
	low      map[string]bool
	settings map[string]*Settings
	dests    map[string]*destination
}

// readState reads the outbox's state from st.
func readState(st Store) (*snapshot, error) {
	s := &snapshot{fresh: true, once: map[string]int64{}, low: map[string]bool{}, settings: map[string]*Settings{}, dests: map[string]*destination{}}
	err := errors.Join(
		st.States(cursorName, func(_ string, v []byte) error { s.fresh = false; return sonic.Unmarshal(v, &s.cursor) }),
		st.States(eventPrefix, func(_ string, v []byte) error {
			e := new(Event)
			s.events = append(s.events, e)
			return sonic.Unmarshal(v, e)
		}),
		st.States(oncePrefix, func(name string, v []byte) error {
			until, err := strconv.ParseInt(string(v), 10, 64)
			s.once[name[len(oncePrefix):]] = until
			return err
		}),
		st.States(lowPrefix, func(name string, _ []byte) error { s.low[name[len(lowPrefix):]] = true; return nil }),
		st.States(destPrefix, func(_ string, v []byte) error {
			d := new(destination)
			if err := sonic.Unmarshal(v, d); err != nil {
				return err
			}
			s.dests[d.ID] = d
			return nil
		}),
		st.States(settingsName, func(name string, v []byte) error { return s.addSettings(name[len(settingsName):], v) }),
		st.States(platformName, func(_ string, v []byte) error { return s.addSettings("", v) }),
	)
	if err != nil {
		return nil, fmt.Errorf("notify: cannot load the outbox: %w", err)
	}
	// Stores list by name; events are named by their order, zero-padded.
	sort.Slice(s.events, func(i, j int) bool { return s.events[i].Order < s.events[j].Order })
	return s, nil
}

func (s *snapshot) addSettings(account string, v []byte) error {
	x := new(Settings)
	if err := sonic.Unmarshal(v, x); err != nil {
		return err
	}
	s.settings[account] = x
	return nil
}

// use makes s the notifier's state (its deliveries in flight stay
// counted: inFlight is by destination).
func (n *Notifier) use(s *snapshot) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seq.Store(s.cursor.Seq)
	n.order = s.cursor.Order
	n.events, n.byID = s.events, make(map[string]*Event, len(s.events))
	for _, e := range s.events {
		n.byID[e.ID] = e
	}
	n.once, n.low, n.settings, n.dests = s.once, s.low, s.settings, s.dests
}

// reload reads the state again (another process changed it).
func (n *Notifier) reload() error {
	s, err := readState(n.cfg.Store)
	if err != nil {
		return err
	}
	n.use(s)
	return nil
}
