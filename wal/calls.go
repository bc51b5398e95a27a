package wal

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Call records are records appended with a RequestID. Besides the sequence
// and entry copies, the log keeps them under three more keys (keys.go): per
// account in sequence order (the account's call list, newest first), by
// record time (cross-account time queries and pruning), and by request ID.
// Checkpoints do not compact them; PruneCalls removes them by age.

// Calls calls fn for the call records of account, newest first, starting
// below the sequence number before (0: from the newest). fn returns whether
// the record counts towards limit (a filter may skip records); iteration
// stops once limit records counted, and more reports whether older call
// records remain.
func (l *Log) Calls(account string, before uint64, limit int, fn func(v RecordView) (bool, error)) (more bool, err error) {
	lower := appendCallKey(nil, account, 0)
	upper := append(append([]byte{prefixCall}, account...), 1)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return false, fmt.Errorf("cannot iterate calls: %w", err)
	}
	defer it.Close()
	var ok bool
	if before == 0 {
		ok = it.Last()
	} else {
		ok = it.SeekLT(appendCallKey(nil, account, before))
	}
	n := 0
	for ; ok; ok = it.Prev() {
		if n == limit {
			return true, nil
		}
		v, err := DecodeFrame(it.Value())
		if err != nil {
			return false, fmt.Errorf("cannot decode call at key %x: %w", it.Key(), err)
		}
		take, err := fn(v)
		if err != nil {
			return false, err
		}
		if take {
			n++
		}
	}
	if err := it.Error(); err != nil {
		return false, fmt.Errorf("cannot iterate calls: %w", err)
	}
	return false, nil
}

// CallCursor is a position in the time index: records strictly older than
// (TimeNanos, Seq) come next. The zero cursor starts from the newest.
type CallCursor struct {
	TimeNanos int64
	Seq       uint64
}

// CallsByTime calls fn for the call records of every account whose record
// time is in [sinceNanos, untilNanos), newest first, from cursor on. fn
// returns whether the record counts towards limit. It returns the cursor of
// the next page, and whether there is one.
func (l *Log) CallsByTime(sinceNanos, untilNanos int64, cursor CallCursor, limit int, fn func(v RecordView) (bool, error)) (next CallCursor, more bool, err error) {
	lower := appendCallTimeKey(nil, max(sinceNanos, 0), 0)
	upper := appendCallTimeKey(nil, untilNanos, 0)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return next, false, fmt.Errorf("cannot iterate calls by time: %w", err)
	}
	defer it.Close()
	var ok bool
	if cursor == (CallCursor{}) {
		ok = it.Last()
	} else {
		ok = it.SeekLT(appendCallTimeKey(nil, cursor.TimeNanos, cursor.Seq))
	}
	n := 0
	for ; ok; ok = it.Prev() {
		k := it.Key()
		t, seq := int64(binary.BigEndian.Uint64(k[1:])), binary.BigEndian.Uint64(k[9:])
		if n == limit {
			return CallCursor{TimeNanos: t, Seq: seq + 1}, true, nil
		}
		account, _, err := splitCallTimeValue(it.Value())
		if err != nil {
			return next, false, fmt.Errorf("cannot decode call index at key %x: %w", k, err)
		}
		take, err := l.readCall(account, seq, fn)
		if err != nil {
			return next, false, err
		}
		if take {
			n++
		}
	}
	return next, false, it.Error()
}

func splitCallTimeValue(v []byte) (account, requestID []byte, err error) {
	if len(v) < 1 || len(v) < 1+int(v[0]) {
		return nil, nil, ErrCorrupt
	}
	return v[1 : 1+int(v[0])], v[1+int(v[0]):], nil
}

func (l *Log) readCall(account []byte, seq uint64, fn func(v RecordView) (bool, error)) (bool, error) {
	frame, closer, err := l.db.Get(appendCallKey(nil, string(account), seq))
	if err == pebble.ErrNotFound {
		return false, nil // pruned meanwhile
	}
	if err != nil {
		return false, fmt.Errorf("cannot read call %d: %w", seq, err)
	}
	defer closer.Close()
	v, err := DecodeFrame(frame)
	if err != nil {
		return false, fmt.Errorf("cannot decode call %d: %w", seq, err)
	}
	return fn(v)
}

// CallByRequestID calls fn with the call record of requestID and reports
// whether there is one.
func (l *Log) CallByRequestID(requestID string, fn func(v RecordView) error) (bool, error) {
	val, closer, err := l.db.Get(appendCallIDKey(nil, requestID))
	if err == pebble.ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot look up call %q: %w", requestID, err)
	}
	if len(val) < 16 {
		closer.Close()
		return false, fmt.Errorf("%w: call index of %q", ErrCorrupt, requestID)
	}
	seq := binary.BigEndian.Uint64(val)
	account := []byte(string(val[16:]))
	closer.Close()
	return l.readCall(account, seq, func(v RecordView) (bool, error) { return true, fn(v) })
}

// MaxPruneBatch bounds the call records PruneCalls deletes in one batch, so
// that pruning never holds a huge batch in memory or stalls commits.
const MaxPruneBatch = 10_000

// PruneCalls deletes the call records whose record time is before
// beforeNanos, in batches of at most MaxPruneBatch, and returns how many it
// deleted. Ledger entries are not touched. It may run while the log is in
// use; a crash between batches leaves the remaining records for the next run.
func (l *Log) PruneCalls(beforeNanos int64) (int, error) {
	total := 0
	for {
		n, err := l.pruneBatch(beforeNanos)
		total += n
		if err != nil || n < MaxPruneBatch {
			return total, err
		}
	}
}

func (l *Log) pruneBatch(beforeNanos int64) (int, error) {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixCallTime}, UpperBound: appendCallTimeKey(nil, beforeNanos, 0)})
	if err != nil {
		return 0, fmt.Errorf("cannot iterate calls to prune: %w", err)
	}
	defer it.Close()
	b := l.db.NewBatch()
	defer b.Close()
	n := 0
	for ok := it.First(); ok && n < MaxPruneBatch; ok = it.Next() {
		seq := binary.BigEndian.Uint64(it.Key()[9:])
		account, requestID, err := splitCallTimeValue(it.Value())
		if err != nil {
			return 0, fmt.Errorf("cannot decode call index at key %x: %w", it.Key(), err)
		}
		err = b.Delete(appendCallKey(nil, string(account), seq), nil)
		if err == nil {
			err = b.Delete(appendCallIDKey(nil, string(requestID)), nil)
		}
		if err == nil {
			err = b.Delete(it.Key(), nil)
		}
		if err != nil {
			return 0, fmt.Errorf("cannot stage pruning: %w", err)
		}
		n++
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("cannot iterate calls to prune: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("cannot commit pruning: %w", err)
	}
	return n, nil
}
