package wal

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Statement snapshots let a statement start from a known balance instead of
// summing an account's whole history: a snapshot taken at time T says that
// the account's entries up to sequence number Seq add up to Balance. It is
// derived data: written only once the entries it covers are synced, so a
// crash can lose a snapshot but never leave one that claims more than the
// log holds; and a statement without one scans from the start, as before.

// Snapshot is one statement snapshot of an account.
type Snapshot struct {
	// TimeNanos is when it was taken, Seq the last sequence number it covers.
	TimeNanos int64
	Seq       uint64
	// Balance is available + held after every entry up to Seq.
	Balance int64
}

// PutSnapshot stores s for account. The caller has waited for s.Seq to be
// synced. Not synced itself: a crash may lose it, which costs only a longer
// statement.
func (l *Log) PutSnapshot(account string, s Snapshot) error {
	var v [16]byte
	binary.BigEndian.PutUint64(v[:8], s.Seq)
	binary.BigEndian.PutUint64(v[8:], uint64(s.Balance))
	if err := l.db.Set(appendSnapshotKey(nil, account, s.TimeNanos), v[:], pebble.NoSync); err != nil {
		return fmt.Errorf("cannot store a statement snapshot of %q: %w", account, err)
	}
	return nil
}

// LatestSnapshot returns the account's latest snapshot taken at or before
// atNanos, if any.
func (l *Log) LatestSnapshot(account string, atNanos int64) (Snapshot, bool, error) {
	lower := appendSnapshotKey(nil, account, 0)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: appendSnapshotKey(nil, account, atNanos+1)})
	if err != nil {
		return Snapshot{}, false, fmt.Errorf("cannot read statement snapshots: %w", err)
	}
	defer it.Close()
	if !it.Last() {
		return Snapshot{}, false, it.Error()
	}
	k, v := it.Key(), it.Value()
	if len(v) != 16 || len(k) < 8 {
		return Snapshot{}, false, fmt.Errorf("%w: statement snapshot at key %x", ErrCorrupt, k)
	}
	return Snapshot{TimeNanos: int64(binary.BigEndian.Uint64(k[len(k)-8:])), Seq: binary.BigEndian.Uint64(v[:8]),
		Balance: int64(binary.BigEndian.Uint64(v[8:]))}, true, nil
}

// EntriesAfter calls fn for the account's entries after sequence number
// after, oldest first, until fn returns false.
func (l *Log) EntriesAfter(account string, after uint64, fn func(v RecordView) (bool, error)) error {
	lower := appendEntryKey(nil, account, after+1)
	upper := append(append([]byte{prefixEntry}, account...), 1)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("cannot iterate entries: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := DecodeFrame(it.Value())
		if err != nil {
			return fmt.Errorf("cannot decode entry at key %x: %w", it.Key(), err)
		}
		more, err := fn(v)
		if err != nil || !more {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("cannot iterate entries: %w", err)
	}
	return nil
}
