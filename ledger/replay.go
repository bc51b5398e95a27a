package ledger

import (
	"errors"
	"fmt"

	"github.com/tollgate/tollgate/wal"
)

// ErrReplay reports a record that cannot be applied to the state replay has
// built so far: the log contradicts itself. The wrapping error names the
// record.
var ErrReplay = errors.New("ledger: record does not apply")

// replay rebuilds the state from the latest checkpoint and the records after
// it.
func (l *Ledger) replay() error {
	seq, state, ok, err := l.log.LoadCheckpoint()
	if err != nil {
		return fmt.Errorf("cannot load checkpoint: %w", err)
	}
	if ok {
		if err := l.decodeState(state); err != nil {
			return fmt.Errorf("cannot decode checkpoint %d: %w", seq, err)
		}
		l.lastCheckpoint.Store(seq)
	}
	return l.log.Replay(seq, l.apply)
}

// replayed is the record replay is applying, with the shard it touches
// (locked) and the account (nil until the record that creates it).
type replayed struct {
	l *Ledger
	s *shard
	a *account
	d decoder
	v *wal.RecordView
	// after is the available balance the record says the operation left,
	// compared once it is applied when checkAfter.
	after      int64
	checkAfter bool
}

// availableAfter notes the balance the record says the operation left.
func (r *replayed) availableAfter(v int64) { r.after, r.checkAfter = v, true }

// replayers apply each kind of record with the same code its live operation
// used (its file holds both, with the record's encoding).
var replayers = [...]func(*replayed) error{
	kindAccountCreate:  (*replayed).accountCreate,
	kindAccountUpdate:  (*replayed).accountUpdate,
	kindFreeze:         (*replayed).freeze,
	kindUnfreeze:       (*replayed).freeze,
	kindTopUp:          (*replayed).topUp,
	kindHold:           (*replayed).hold,
	kindSettle:         (*replayed).endHold,
	kindVoid:           (*replayed).endHold,
	kindAdjust:         (*replayed).adjust,
	kindExpire:         (*replayed).expire,
	kindKeyCreate:      (*replayed).keyCreate,
	kindKeyUpdate:      (*replayed).keyChange,
	kindKeyRevoke:      (*replayed).keyChange,
	kindCall:           (*replayed).call,
	kindAccountClose:   (*replayed).accountClose,
	kindDisputeFile:    (*replayed).disputeFile,
	kindDisputeResolve: (*replayed).disputeResolve,
}

// apply applies one replayed record and checks the balance the record says
// the operation left.
func (l *Ledger) apply(v wal.RecordView) error {
	kind := recordKind(v.Kind)
	if int(kind) >= len(replayers) || replayers[kind] == nil {
		return fmt.Errorf("%w: unknown record kind %d", ErrReplay, v.Kind)
	}
	accountID := string(v.Account)
	r := replayed{l: l, s: l.shardOf(accountID), d: decoder{b: v.Body}, v: &v}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.a = r.s.mu.accounts[accountID]
	if r.a == nil && kind != kindAccountCreate && kind != kindCall {
		return fmt.Errorf("%w: unknown account %q", ErrReplay, accountID)
	}
	if err := replayers[kind](&r); err != nil {
		return err
	}
	if err := r.d.done(); err != nil {
		return err
	}
	if r.checkAfter && r.a.available() != r.after {
		return fmt.Errorf("%w: account %q available %d after replay, record says %d", ErrReplay, accountID, r.a.available(), r.after)
	}
	if r.a != nil {
		r.a.checkAccount(v.TimeNanos)
	}
	return nil
}
