package ledger

import (
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/coarseclock"
	"github.com/tollgate/tollgate/internal/invariants"
	"github.com/tollgate/tollgate/wal"
)

// Config configures a [Ledger]. Zero fields take the documented defaults.
type Config struct {
	// Shards is the number of lock shards for accounts and for open holds; a
	// power of two. Default 64.
	Shards int
	// HoldTimeout is the age after which SweepHolds voids a hold. It must
	// exceed the longest a call can run (upstream total timeout plus drain
	// timeout). Default 15 minutes.
	HoldTimeout time.Duration
	// PaidCreditLifetime is how long paid credit lasts after the account's
	// most recent paid top-up. Default 365 days.
	PaidCreditLifetime time.Duration
	// MaxGiftBuckets bounds the gift credits with distinct expiry times one
	// account may hold. Default 256.
	MaxGiftBuckets int
	// Now is the clock; default the process's coarse clock (10 ms
	// resolution, one atomic load: internal/coarseclock). Tests inject
	// their own.
	Now func() time.Time
}

// Limits on identifiers, so that records and maps stay bounded.
const (
	// MaxIDBytes bounds account, key, request, order and idempotency IDs.
	MaxIDBytes = 128
	// MaxTextBytes bounds reasons, names, e-mail addresses and actors.
	MaxTextBytes = 1024
)

func (c *Config) setDefaults() error {
	if c.Shards == 0 {
		c.Shards = 64
	}
	if c.Shards < 1 || c.Shards > 1<<16 || bits.OnesCount(uint(c.Shards)) != 1 {
		return fmt.Errorf("%w: shard count %d is not a power of two in [1, 65536]", ErrInvalid, c.Shards)
	}
	if c.HoldTimeout == 0 {
		c.HoldTimeout = 15 * time.Minute
	}
	if c.PaidCreditLifetime == 0 {
		c.PaidCreditLifetime = 365 * 24 * time.Hour
	}
	if c.MaxGiftBuckets == 0 {
		c.MaxGiftBuckets = 256
	}
	return nil
}

// cacheLinePad keeps neighbouring shards' mutexes on separate cache lines.
const cacheLinePad = 128

// shard holds the accounts whose ID hashes to it.
type shard struct {
	mu struct {
		sync.Mutex
		accounts map[string]*account
		// scratch is the buffer record bodies are encoded into.
		scratch []byte
	}
	// locks counts lock acquisitions on the hot path, to sample the wait.
	locks atomic.Uint32
	_     [cacheLinePad]byte
}

// lockWaitSampleMask samples one hot-path lock acquisition in 64 for the
// lock-wait histogram: timing every one would cost two clock reads a call.
const lockWaitSampleMask = 63

// lock takes s.mu, timing one acquisition in 64; for a sampled one it
// returns the time it started, so that the caller can time the whole
// operation too (zero otherwise).
func (s *shard) lock() time.Time {
	if s.locks.Add(1)&lockWaitSampleMask != 0 {
		s.mu.Lock()
		return time.Time{}
	}
	t := time.Now()
	s.mu.Lock()
	shardLockWait.UpdateDuration(t)
	return t
}

// Ledger holds every account's balance, open holds and API keys in memory,
// lock-sharded by account, and records every change in a [wal.Log]. All
// methods are safe for concurrent use.
//
// Lock order, wherever several are taken: account shards in ascending index,
// then hold shards in ascending index, then orders, then idempotency keys,
// then keys. No lock is held across a wait for the log.
type Ledger struct {
	cfg    Config
	log    *wal.Log
	mask   uint64
	seed   maphash.Seed
	shards []shard
	holds  []holdShard

	orders struct {
		sync.Mutex
		m map[string]Entry
	}
	idem struct {
		sync.Mutex
		m map[string]Entry
	}
	keys struct {
		sync.RWMutex
		byHash map[[32]byte]*Key
		byID   map[string]*Key
	}
	// disputes are guarded by disputesMu, taken after a shard's lock.
	disputesMu sync.Mutex
	disputes   disputes

	// coarseClock is set when Config.Now is the default clock, which now
	// reads without building a time.Time.
	coarseClock bool
	// memSeq numbers entries when there is no log.
	memSeq atomic.Uint64
	// lastCheckpoint is the sequence number of the latest checkpoint.
	lastCheckpoint atomic.Uint64
}

func newLedger(log *wal.Log, cfg Config) (*Ledger, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	l := &Ledger{
		cfg:    cfg,
		log:    log,
		mask:   uint64(cfg.Shards - 1),
		seed:   maphash.MakeSeed(),
		shards: make([]shard, cfg.Shards),
		holds:  make([]holdShard, cfg.Shards),
	}
	for i := range l.shards {
		l.shards[i].mu.accounts = map[string]*account{}
		l.holds[i].mu.holds = map[string]*hold{}
	}
	l.orders.m = map[string]Entry{}
	l.idem.m = map[string]Entry{}
	l.keys.byHash = map[[32]byte]*Key{}
	l.keys.byID = map[string]*Key{}
	l.disputes = disputes{byID: map[string]*Dispute{}, byRequest: map[string]*Dispute{}}
	if l.cfg.Now == nil {
		l.cfg.Now, l.coarseClock = coarseclock.Now, true
	}
	return l, nil
}

// NewMemory returns a ledger without a log: nothing is durable. It serves
// benchmarks and tests of the in-memory rules.
func NewMemory(cfg Config) (*Ledger, error) { return newLedger(nil, cfg) }

// Open returns the ledger recorded in log: the latest checkpoint plus every
// record after it, each applied and checked as it is read. The ledger appends
// its operations to log from then on; the caller closes log after the last
// operation.
func Open(log *wal.Log, cfg Config) (*Ledger, error) {
	l, err := newLedger(log, cfg)
	if err != nil {
		return nil, err
	}
	if err := l.replay(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Ledger) shardOf(accountID string) *shard {
	return &l.shards[maphash.String(l.seed, accountID)&l.mask]
}

func (l *Ledger) holdShardOf(requestID string) *holdShard {
	return &l.holds[maphash.String(l.seed, requestID)&l.mask]
}

func (l *Ledger) now() int64 {
	if l.coarseClock {
		return coarseclock.Nanos()
	}
	return l.cfg.Now().UnixNano()
}

// recording reports whether operations are written to a log; a memory-only
// ledger skips encoding their records.
func (l *Ledger) recording() bool { return l.log != nil }

// Commit is the durability handle of an operation: Wait returns once the
// operation's record is acknowledged by the log's mode. The zero Commit and
// the Commits of a ledger without a log wait for nothing.
type Commit struct {
	log *wal.Log
	seq uint64
}

// Wait blocks until the operation is durable (see wal.Log.Wait).
func (c Commit) Wait() error {
	if c.log == nil {
		return nil
	}
	return c.log.Wait(c.seq)
}

// Seq is the sequence number of the operation's last record.
func (c Commit) Seq() uint64 { return c.seq }

// appendLocked records one operation. The caller holds the lock under which
// it applied the operation, so records reach the log in apply order.
func (l *Ledger) appendLocked(kind recordKind, accountID string, timeNanos int64, body []byte) uint64 {
	return l.appendCallLocked(kind, accountID, timeNanos, body, "")
}

// appendCallLocked is appendLocked for a record that carries the call record
// of requestID (when not empty), which the log then indexes as a call.
func (l *Ledger) appendCallLocked(kind recordKind, accountID string, timeNanos int64, body []byte, requestID string) uint64 {
	if invariants.Enabled {
		if a := l.shardOf(accountID).mu.accounts[accountID]; a != nil {
			a.checkAccount(timeNanos)
		}
	}
	if l.log == nil {
		return l.memSeq.Add(1)
	}
	return l.log.Append(&wal.Record{Kind: uint8(kind), Entry: kind.isEntry(), TimeNanos: timeNanos, Account: accountID, Body: body, RequestID: requestID})
}

// waitSynced waits until seq is synced whatever the log's mode: the
// acknowledgement rule of top-ups, adjustments, account and key changes.
func (l *Ledger) waitSynced(seq uint64) error {
	if l.log == nil {
		return nil
	}
	return l.log.WaitSynced(seq)
}

// Durable waits until every record appended so far is synced, whatever the
// log's mode, and returns the last one's sequence number: what a reader of
// the ledger's state or log saw before the call is then safe from a crash.
func (l *Ledger) Durable() (uint64, error) {
	if l.log == nil {
		return 0, nil
	}
	seq := l.log.LastSeq()
	return seq, l.log.WaitSynced(seq)
}

// ValidID checks an identifier (account, key, order, idempotency key) as
// the ledger does: 1 to MaxIDBytes letters, digits, '_', '-', '.' or ':'.
// what names it in the error.
func ValidID(what, id string) error {
	if len(id) == 0 || len(id) > MaxIDBytes {
		return fmt.Errorf("%w: %s must have 1 to %d characters", ErrInvalid, what, MaxIDBytes)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return fmt.Errorf("%w: %s may contain only letters, digits, '_', '-', '.' and ':'", ErrInvalid, what)
		}
	}
	return nil
}

// ValidText checks a free text field (email, name, reason) as the ledger
// does: at most MaxTextBytes.
func ValidText(what, s string) error {
	if len(s) > MaxTextBytes {
		return fmt.Errorf("%w: %s exceeds %d bytes", ErrInvalid, what, MaxTextBytes)
	}
	return nil
}
