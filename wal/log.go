package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Mode says when an appended record is durable.
type Mode uint8

const (
	// ModeSync acknowledges a record only after a synced commit holds it.
	ModeSync Mode = iota
	// ModeInterval syncs every Config.Interval and acknowledges at once; a crash
	// loses the unsynced records of the last interval.
	ModeInterval
	// ModeNone never syncs on its own (benchmarks only); a crash can lose
	// everything Pebble had not yet written out.
	ModeNone
)

// ParseMode parses "sync", "interval" or "none".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "sync", "":
		return ModeSync, nil
	case "interval":
		return ModeInterval, nil
	case "none":
		return ModeNone, nil
	}
	return 0, fmt.Errorf("unknown wal mode %q (want sync, interval or none)", s)
}

// String returns the configuration name of m.
func (m Mode) String() string {
	switch m {
	case ModeSync:
		return "sync"
	case ModeInterval:
		return "interval"
	case ModeNone:
		return "none"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// FS is the file system the log's Pebble store lives on.
type FS = vfs.FS

// Config configures a [Log]. The zero value is valid: sync mode on the OS file
// system.
type Config struct {
	// Mode is the durability mode; default ModeSync.
	Mode Mode
	// Interval is the sync period in ModeInterval; default 10ms.
	Interval time.Duration
	// MaxPendingBytes bounds the records waiting for the committer. Append
	// blocks while the pending group is larger (backpressure when the disk
	// cannot keep up). Default 64 MiB.
	MaxPendingBytes int
	// FS is the file system; nil means the OS file system. Tests use
	// [NewCrashableFS].
	FS FS
	// Logger receives Pebble's warnings and errors; nil keeps them quiet except
	// for errors, which go to the standard logger.
	Logger pebble.Logger
	// StallTimeout bounds one commit (its write and sync): a commit that
	// runs longer fails the log, as a failed commit does, so that the owner
	// stops and replays instead of blocking every hold forever on a disk
	// that hangs. Default 30s; negative disables the watchdog.
	StallTimeout time.Duration
}

// Log is the durable, append-only record log. Append, Wait and WaitSynced are
// safe for concurrent use; Replay, LoadCheckpoint and the queries may run
// concurrently with appends.
type Log struct {
	db  *pebble.DB
	cfg Config
	// retention, when set, bounds which records a checkpoint deletes.
	retention atomic.Pointer[func() uint64]

	// wake tells the committer that a group has work (capacity 1: a pending
	// token is enough).
	wake chan struct{}
	// stop asks the committer to commit what is pending and exit.
	stop chan struct{}
	// done is closed when the committer has exited.
	done chan struct{}
	// failed is closed when a commit failed; the log is unusable from then on.
	failed     chan struct{}
	failedOnce sync.Once

	mu struct {
		sync.Mutex
		nextSeq uint64
		cur     *group
		spare   *group
		force   bool
		err     error
		closed  bool
	}
	// space is signalled (on mu) when the committer takes a group.
	space sync.Cond

	syncMu struct {
		sync.Mutex
		// committed is the highest sequence number written to Pebble.
		committed uint64
		// durable is the highest sequence number covered by a synced commit.
		durable uint64
		err     error
	}
	// synced is broadcast (on syncMu) after every commit.
	synced sync.Cond

	records atomic.Uint64
	commits atomic.Uint64
	// commitStart is when the commit in progress started (Unix nanoseconds),
	// 0 while none runs; the watchdog reads it.
	commitStart atomic.Int64
}

// group is the set of records one commit writes.
type group struct {
	buf  []byte
	recs []pendingRecord
	last uint64
}

type pendingRecord struct {
	start, end int // frame bounds in buf
	seq        uint64
	timeNanos  int64
	entry      bool
	account    string
	requestID  string
}

func (g *group) reset() {
	g.buf = g.buf[:0]
	clear(g.recs) // drop account strings
	g.recs = g.recs[:0]
	g.last = 0
}

var (
	commitDuration   = metrics.NewHistogram(`tollgate_wal_commit_duration_seconds`)
	recordsPerCommit = metrics.NewHistogram(`tollgate_wal_records_per_commit`)
	recordsTotal     = metrics.NewCounter(`tollgate_wal_records_total`)
	syncsTotal       = metrics.NewCounter(`tollgate_wal_syncs_total`)
	commitErrors     = metrics.NewCounter(`tollgate_wal_commit_errors_total`)
)

// ErrClosed is returned by waits on a log that was closed before their record
// was committed.
var ErrClosed = errors.New("wal: closed")

// Open opens (or creates) the log in dir and starts its committer.
func Open(dir string, cfg Config) (*Log, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Millisecond
	}
	if cfg.MaxPendingBytes <= 0 {
		cfg.MaxPendingBytes = 64 << 20
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = 30 * time.Second
	}
	opts := &pebble.Options{FS: cfg.FS, Logger: cfg.Logger}
	if opts.Logger == nil {
		opts.Logger = quietLogger{}
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open wal at %q: %w", dir, err)
	}
	l := &Log{
		db:     db,
		cfg:    cfg,
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		failed: make(chan struct{}),
	}
	l.space.L = &l.mu
	l.synced.L = &l.syncMu
	l.mu.cur, l.mu.spare = &group{}, &group{}
	last, err := l.lastSeq()
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	l.mu.nextSeq = last + 1
	l.syncMu.committed, l.syncMu.durable = last, last
	go l.run()
	if cfg.StallTimeout > 0 {
		go l.watch()
	}
	return l, nil
}

// ErrStalled is the failure of a log whose commit ran past StallTimeout.
var ErrStalled = errors.New("wal: a commit did not finish in time: the disk stalled")

// watch fails the log when a commit runs past StallTimeout; it stops with
// the committer.
func (l *Log) watch() {
	t := time.NewTicker(max(l.cfg.StallTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
			if age := l.CommitAge(); age > l.cfg.StallTimeout {
				l.fail(fmt.Errorf("%w: running for %s", ErrStalled, age.Round(time.Millisecond)))
				return
			}
		}
	}
}

// CommitAge is how long the commit in progress has been running, 0 when
// none is: a readiness check reads it.
func (l *Log) CommitAge() time.Duration {
	start := l.commitStart.Load()
	if start == 0 {
		return 0
	}
	return time.Duration(time.Now().UnixNano() - start)
}

// timed runs a write of the store as the watchdog's commit in progress.
func (l *Log) timed(write func() error) error {
	l.commitStart.Store(time.Now().UnixNano())
	defer l.commitStart.Store(0)
	return write()
}

// lastSeq returns the highest sequence number the store has seen: the last
// record's, or the latest checkpoint's when the records it covers are gone.
func (l *Log) lastSeq() (uint64, error) {
	var last uint64
	if m, ok, err := l.readManifest(); err != nil {
		return 0, err
	} else if ok {
		last = m.seq
	}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRecord}, UpperBound: []byte{prefixRecord + 1}})
	if err != nil {
		return 0, fmt.Errorf("cannot read last record: %w", err)
	}
	defer it.Close()
	if it.Last() {
		v, err := DecodeFrame(it.Value())
		if err != nil {
			return 0, fmt.Errorf("cannot decode last record %x: %w", it.Key(), err)
		}
		last = max(last, v.Seq)
	}
	return last, it.Error()
}

// Append stages r for the next commit and returns its sequence number.
// Records are committed in the order of their sequence numbers, which is the
// order of Append calls: call it while holding the lock under which the
// operation was applied. It copies r.Body and never allocates in steady state.
// It blocks while more than MaxPendingBytes wait for the committer. After a
// failure or Close the record is dropped and its Wait returns the error.
func (l *Log) Append(r *Record) uint64 {
	l.mu.Lock()
	for len(l.mu.cur.buf) > l.cfg.MaxPendingBytes && l.mu.err == nil && !l.mu.closed {
		l.space.Wait()
	}
	seq := l.mu.nextSeq
	l.mu.nextSeq++
	if l.mu.err != nil || l.mu.closed {
		l.mu.Unlock()
		return seq
	}
	g := l.mu.cur
	wasEmpty := len(g.recs) == 0
	start := len(g.buf)
	g.buf = appendFrame(g.buf, r, seq)
	if len(r.RequestID) > MaxRequestIDBytes {
		panic(fmt.Sprintf("BUG: request ID of %d bytes exceeds %d", len(r.RequestID), MaxRequestIDBytes))
	}
	g.recs = append(g.recs, pendingRecord{start: start, end: len(g.buf), seq: seq, timeNanos: r.TimeNanos,
		entry: r.Entry, account: r.Account, requestID: r.RequestID})
	g.last = seq
	l.mu.Unlock()
	if wasEmpty && l.cfg.Mode != ModeInterval {
		l.signal()
	}
	return seq
}

// LastSeq returns the sequence number of the last appended record.
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.nextSeq - 1
}

func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Wait blocks until the record with sequence number seq is acknowledged by
// the log's mode: synced in ModeSync, at once in the other modes. It returns
// the log's fatal error if a commit failed.
func (l *Log) Wait(seq uint64) error {
	if l.cfg.Mode != ModeSync {
		l.syncMu.Lock()
		err := l.syncMu.err
		l.syncMu.Unlock()
		return err
	}
	return l.waitDurable(seq)
}

// WaitSynced blocks until the record with sequence number seq is covered by a
// synced commit, forcing one in every mode.
func (l *Log) WaitSynced(seq uint64) error {
	l.syncMu.Lock()
	durable := l.syncMu.durable >= seq
	l.syncMu.Unlock()
	if !durable {
		l.mu.Lock()
		l.mu.force = true
		l.mu.Unlock()
		l.signal()
	}
	return l.waitDurable(seq)
}

func (l *Log) waitDurable(seq uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	for l.syncMu.durable < seq && l.syncMu.err == nil {
		l.synced.Wait()
	}
	if l.syncMu.durable >= seq {
		return nil
	}
	return l.syncMu.err
}

// Failed is closed when a commit failed. Every later operation fails; the
// owner must stop serving and restart, which replays the log.
func (l *Log) Failed() <-chan struct{} { return l.failed }

// Err returns the fatal error, if any.
func (l *Log) Err() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.syncMu.err
}

// run is the committer: it owns every Pebble write of records.
func (l *Log) run() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.cfg.Mode == ModeInterval {
		t := time.NewTicker(l.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		stopping := false
		select {
		case <-l.wake:
		case <-tick:
		case <-l.stop:
			stopping = true
		}
		for {
			l.mu.Lock()
			g := l.mu.cur
			if len(g.recs) == 0 || l.mu.err != nil {
				force := l.mu.force && l.mu.err == nil
				l.mu.force = false
				l.mu.Unlock()
				if force {
					// Everything is committed, but maybe not synced (ModeNone,
					// ModeInterval): a forced wait needs the sync alone.
					if err := l.syncCommitted(); err != nil {
						l.fail(err)
					}
				}
				break
			}
			force := l.mu.force
			l.mu.force = false
			l.mu.cur, l.mu.spare = l.mu.spare, g
			l.space.Broadcast()
			l.mu.Unlock()

			sync := l.cfg.Mode != ModeNone || force || stopping
			err := l.commit(g, sync)
			g.reset()
			if err != nil {
				l.fail(err)
				break
			}
			if l.cfg.Mode == ModeInterval && !stopping {
				break // the next group waits for the next tick or force
			}
		}
		if stopping {
			return
		}
	}
}

func (l *Log) commit(g *group, sync bool) error {
	start := time.Now()
	b := l.db.NewBatchWithSize(len(g.buf)*2 + len(g.recs)*64)
	var key [64 + MaxAccountBytes + MaxRequestIDBytes]byte
	var val [17 + MaxAccountBytes + MaxRequestIDBytes]byte
	for i := range g.recs {
		pr := &g.recs[i]
		frame := g.buf[pr.start:pr.end]
		err := b.Set(appendRecordKey(key[:0], pr.seq), frame, nil)
		if err == nil && pr.entry {
			err = b.Set(appendEntryKey(key[:0], pr.account, pr.seq), frame, nil)
		}
		if err == nil && pr.requestID != "" {
			err = b.Set(appendCallKey(key[:0], pr.account, pr.seq), frame, nil)
			if err == nil {
				v := append(append(val[:0], byte(len(pr.account))), pr.account...)
				err = b.Set(appendCallTimeKey(key[:0], pr.timeNanos, pr.seq), append(v, pr.requestID...), nil)
			}
			if err == nil {
				v := binary.BigEndian.AppendUint64(val[:0], pr.seq)
				v = binary.BigEndian.AppendUint64(v, uint64(pr.timeNanos))
				err = b.Set(appendCallIDKey(key[:0], pr.requestID), append(v, pr.account...), nil)
			}
		}
		if err != nil {
			_ = b.Close()
			return fmt.Errorf("cannot stage record %d: %w", pr.seq, err)
		}
	}
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	err := l.timed(func() error { return b.Commit(opts) })
	_ = b.Close()
	if err != nil {
		return fmt.Errorf("cannot commit %d records: %w", len(g.recs), err)
	}
	commitDuration.UpdateDuration(start)
	recordsPerCommit.Update(float64(len(g.recs)))
	recordsTotal.Add(len(g.recs))
	l.records.Add(uint64(len(g.recs)))
	l.commits.Add(1)
	if sync {
		syncsTotal.Inc()
	}
	l.syncMu.Lock()
	l.syncMu.committed = g.last
	if sync {
		l.syncMu.durable = g.last
	}
	l.syncMu.Unlock()
	l.synced.Broadcast()
	return nil
}

// syncCommitted syncs what was committed without a sync: Pebble syncs its
// WAL up to an empty LogData record written with pebble.Sync.
func (l *Log) syncCommitted() error {
	l.syncMu.Lock()
	committed, durable := l.syncMu.committed, l.syncMu.durable
	l.syncMu.Unlock()
	if durable >= committed {
		return nil
	}
	if err := l.timed(func() error { return l.db.LogData(nil, pebble.Sync) }); err != nil {
		return fmt.Errorf("cannot sync committed records: %w", err)
	}
	syncsTotal.Inc()
	l.syncMu.Lock()
	l.syncMu.durable = max(l.syncMu.durable, committed)
	l.syncMu.Unlock()
	l.synced.Broadcast()
	return nil
}

func (l *Log) fail(err error) {
	commitErrors.Inc()
	l.mu.Lock()
	if l.mu.err == nil {
		l.mu.err = err
	}
	l.mu.Unlock()
	l.syncMu.Lock()
	if l.syncMu.err == nil {
		l.syncMu.err = err
	}
	l.syncMu.Unlock()
	// Failed is closed before any waiter wakes with the error, so one that
	// returns with it finds the log marked failed.
	l.failedOnce.Do(func() { close(l.failed) })
	l.mu.Lock()
	l.space.Broadcast()
	l.mu.Unlock()
	l.synced.Broadcast()
}

// Stats are counters for benchmarks and reports.
type Stats struct {
	// Records is the number of records committed since Open.
	Records uint64
	// Commits is the number of Pebble commits (groups) since Open.
	Commits uint64
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	return Stats{Records: l.records.Load(), Commits: l.commits.Load()}
}

// Close commits and syncs what is pending, stops the committer and closes the
// store. Appends after Close are dropped.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	l.mu.closed = true
	l.space.Broadcast()
	l.mu.Unlock()
	l.syncMu.Lock()
	if l.syncMu.err == nil {
		l.syncMu.err = ErrClosed
	}
	l.syncMu.Unlock()
	l.synced.Broadcast()
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("cannot close wal: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of the store to dir (which must not
// exist), usable as the data directory of a new start.
func (l *Log) Backup(dir string) error {
	if err := l.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("cannot back up wal to %q: %w", dir, err)
	}
	return nil
}

// quietLogger drops Pebble's informational messages (one per flush and
// compaction) and keeps errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	pebble.DefaultLogger.Errorf(format, args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf(format, args...)
}
