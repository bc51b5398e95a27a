package ledger

import (
	"fmt"
	"time"

	"github.com/tollgate/tollgate/internal/tokens"
	"github.com/tollgate/tollgate/wal"
)

// A statement covers the entries of an account whose time is in [from, to).
// Balances are available + held, so a hold or a void moves nothing: only
// top-ups, settlements (the charge), adjustments and expiries do, and
// closing = opening + top-ups + adjustments - charges - expiries, exactly.
//
// A statement starts from the account's latest statement snapshot taken at
// least snapshotMargin before from (SnapshotStatements writes them, daily by
// default), so it reads the entries of its period and a little before, not
// the account's whole history. The margin covers entries whose time and
// sequence order disagree by a clock step: an entry's time is read before
// its account's lock is taken.
const snapshotMargin = time.Minute

// Statement is an account's money over a period.
type Statement struct {
	Opening, TopUps, Adjustments, Charges, Expiries int64
	// ByModel sums the settlements by the catalogue model they were billed
	// at ("" for calls settled without one).
	ByModel map[string]*ModelCharges
}

// Closing is the balance at the end of the period.
func (s *Statement) Closing() int64 {
	return s.Opening + s.TopUps + s.Adjustments - s.Charges - s.Expiries
}

// ModelCharges are a statement's settlements of one model.
type ModelCharges struct {
	Calls int64
	tokens.Counts
	Amount int64
}

// Statement computes the account's statement for [fromNanos, toNanos).
func (l *Ledger) Statement(account string, fromNanos, toNanos int64) (Statement, error) {
	s := Statement{ByModel: map[string]*ModelCharges{}}
	if l.log == nil {
		return s, nil
	}
	snap, _, err := l.log.LatestSnapshot(account, fromNanos-int64(snapshotMargin))
	if err != nil {
		return s, err
	}
	s.Opening = snap.Balance // zero without a snapshot: from the start
	stop := toNanos + int64(snapshotMargin)
	err = l.log.EntriesAfter(account, snap.Seq, func(v wal.RecordView) (bool, error) {
		if v.TimeNanos >= stop {
			return false, nil
		}
		e, err := decodeEntry(v)
		if err != nil {
			return false, fmt.Errorf("cannot decode entry %d: %w", v.Seq, err)
		}
		s.add(&e, fromNanos, toNanos)
		return true, nil
	})
	return s, err
}

// add counts entry e in the statement of [from, to).
func (s *Statement) add(e *Entry, from, to int64) {
	var delta int64
	switch e.Kind {
	case EntryTopUp, EntryAdjust, EntryExpire:
		delta = e.Amount
	case EntrySettle:
		delta = -e.Charged
	}
	switch {
	case e.TimeNanos < from:
		s.Opening += delta
		return
	case e.TimeNanos >= to:
		return
	}
	switch e.Kind {
	case EntryTopUp:
		s.TopUps += e.Amount
	case EntryAdjust:
		s.Adjustments += e.Amount
	case EntryExpire:
		s.Expiries -= e.Amount
	case EntrySettle:
		s.Charges += e.Charged
		m := s.ByModel[e.ModelID]
		if m == nil {
			m = &ModelCharges{}
			s.ByModel[e.ModelID] = m
		}
		m.Calls++
		m.Amount += e.Charged
		m.Add(&e.Tokens)
	}
}

// SnapshotStatements stores a statement snapshot, at now, of every account
// whose money moved since its last one (a top-up, a charge, an adjustment
// or an expiry), once the entries it covers are synced. It returns how many
// it stored.
func (l *Ledger) SnapshotStatements(now int64) (int, error) {
	if l.log == nil {
		return 0, nil
	}
	type pending struct {
		account string
		snap    wal.Snapshot
	}
	var todo []pending
	var last uint64
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		seq := l.log.LastSeq() // every record of this shard's accounts up to it is applied
		for _, a := range s.mu.accounts {
			mark := moneyMark{a.toppedUp, a.adjusted, a.expired, a.charged}
			if mark == a.snapshotted {
				continue
			}
			a.snapshotted = mark
			todo = append(todo, pending{a.id, wal.Snapshot{TimeNanos: now, Seq: seq, Balance: a.toppedUp + a.adjusted - a.expired - a.charged}})
			last = seq
		}
		s.mu.Unlock()
	}
	if len(todo) == 0 {
		return 0, nil
	}
	if err := l.waitSynced(last); err != nil {
		return 0, err
	}
	for i, p := range todo {
		if err := l.log.PutSnapshot(p.account, p.snap); err != nil {
			return i, err
		}
	}
	return len(todo), nil
}

// moneyMark is what a statement snapshot of an account was taken at: its
// cumulative money, which changes whenever its balance can.
type moneyMark struct{ toppedUp, adjusted, expired, charged int64 }
