package ledger

import (
	"fmt"

	"github.com/tollgate/tollgate/wal"
)

// CallCursor is a position in the cross-account list of call records.
type CallCursor = wal.CallCursor

// decodeCall extracts the call record a settle, void or call record carries.
func decodeCall(v wal.RecordView) (*CallRecord, error) {
	switch recordKind(v.Kind) {
	case kindCall:
		return DecodeCallRecord(v.Body)
	case kindSettle, kindVoid:
		// Written before December 2026: the call record inside the entry.
		e, err := decodeEntry(v)
		if err != nil {
			return nil, err
		}
		if e.legacyCall == nil {
			return nil, fmt.Errorf("ledger: record %d carries no call record", v.Seq)
		}
		return e.legacyCall, nil
	}
	return nil, fmt.Errorf("ledger: record kind %d carries no call record", v.Kind)
}

// CallFilter selects call records; zero fields select everything.
type CallFilter struct {
	// SinceNanos and UntilNanos bound the call's start time: since
	// inclusive, until exclusive (0: unbounded).
	SinceNanos, UntilNanos int64
	// Model matches the client's model or the catalogue's ID; KeyID the
	// key; Outcome the outcome's contract name ("" matches any).
	Model, KeyID, Outcome string
}

func (f CallFilter) match(c *CallRecord) bool {
	return (f.SinceNanos == 0 || c.TimeNanos >= f.SinceNanos) && (f.UntilNanos == 0 || c.TimeNanos < f.UntilNanos) &&
		(f.Model == "" || f.Model == c.Model || f.Model == c.ModelID) && (f.KeyID == "" || f.KeyID == c.KeyID) &&
		(f.Outcome == "" || f.Outcome == c.Outcome.String())
}

// Calls returns up to limit call records of the account, newest first (by
// the time their call ended), older than the cursor before (0: from the
// newest), that match f; next is the cursor of the next page, 0 when there is
// none.
func (l *Ledger) Calls(accountID string, f CallFilter, before uint64, limit int) (calls []*CallRecord, next uint64, err error) {
	if l.log == nil {
		return nil, 0, nil
	}
	var last uint64
	more, err := l.log.Calls(accountID, before, limit, func(v wal.RecordView) (bool, error) {
		c, err := decodeCall(v)
		if err != nil {
			return false, fmt.Errorf("cannot decode call %d: %w", v.Seq, err)
		}
		if !f.match(c) {
			return false, nil
		}
		calls = append(calls, c)
		last = v.Seq
		return true, nil
	})
	if more {
		next = last
	}
	return calls, next, err
}

// CallsByTime returns up to limit call records of every account that ended
// in [sinceNanos, untilNanos), newest first, from cursor on, and the cursor
// of the next page (more false when there is none).
func (l *Ledger) CallsByTime(sinceNanos, untilNanos int64, cursor CallCursor, limit int) (calls []*CallRecord, next CallCursor, more bool, err error) {
	if l.log == nil {
		return nil, next, false, nil
	}
	next, more, err = l.log.CallsByTime(sinceNanos, untilNanos, cursor, limit, func(v wal.RecordView) (bool, error) {
		c, err := decodeCall(v)
		if err != nil {
			return false, fmt.Errorf("cannot decode call %d: %w", v.Seq, err)
		}
		calls = append(calls, c)
		return true, nil
	})
	return calls, next, more, err
}

// CallByRequestID returns the call record of requestID, or nil if there is
// none (never made, not yet ended, or pruned).
func (l *Ledger) CallByRequestID(requestID string) (*CallRecord, error) {
	if l.log == nil {
		return nil, nil
	}
	var c *CallRecord
	_, err := l.log.CallByRequestID(requestID, func(v wal.RecordView) error {
		var err error
		c, err = decodeCall(v)
		return err
	})
	return c, err
}

// PruneCalls deletes the call records of calls that ended before
// beforeNanos (ledger entries stay) and returns how many.
func (l *Ledger) PruneCalls(beforeNanos int64) (int, error) {
	if l.log == nil {
		return 0, nil
	}
	return l.log.PruneCalls(beforeNanos)
}

// RecordCall stores the record of a call that ended without a hold (rejected
// after authentication). The account must exist.
func (l *Ledger) RecordCall(call *CallRecord) (Commit, error) {
	if err := ValidID("request ID", call.RequestID); err != nil {
		return Commit{}, err
	}
	s := l.shardOf(call.AccountID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.accounts[call.AccountID] == nil {
		return Commit{}, fmt.Errorf("%w: %q", ErrUnknownAccount, call.AccountID)
	}
	var body []byte
	if l.recording() {
		body = appendCallRecord(s.mu.scratch[:0], call)
		s.mu.scratch = body
	}
	seq := l.appendCallLocked(kindCall, call.AccountID, l.now(), body, call.RequestID)
	return Commit{log: l.log, seq: seq}, nil
}

// call replays a call record: it changes no money; it is only checked to
// decode.
func (r *replayed) call() error {
	var c CallRecord
	r.d.callRecord(&c)
	return nil
}
