package ledger

import (
	"fmt"

	"github.com/tollgate/tollgate/wal"
)

// Reconcile checks the entries against the state: for every account, the
// signed amounts of all its entries sum to its available balance, and its
// latest entry's available-after equals it. It reads every entry, so it is
// for offline checks (tollgate verify), with the ledger otherwise idle. It
// returns the number of entries read.
func (l *Ledger) Reconcile() (int, error) {
	if l.log == nil {
		return 0, nil
	}
	type tally struct {
		sum, lastAfter int64
		lastSeq        uint64
	}
	byAccount := map[string]*tally{}
	n := 0
	err := l.log.AllEntries(func(v wal.RecordView) error {
		e, err := decodeEntry(v)
		if err != nil {
			return fmt.Errorf("cannot decode entry %d: %w", v.Seq, err)
		}
		n++
		t := byAccount[e.Account]
		if t == nil {
			t = &tally{}
			byAccount[e.Account] = t
		}
		t.sum += e.Amount
		if e.ID > t.lastSeq {
			t.lastSeq, t.lastAfter = e.ID, e.AvailableAfter
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	var bad []string
	l.Accounts(func(a AccountInfo) {
		t := byAccount[a.ID]
		if t == nil {
			t = &tally{}
		}
		if t.sum != a.Available || (t.lastSeq != 0 && t.lastAfter != a.Available) {
			bad = append(bad, fmt.Sprintf("account %q: available %d, entries sum to %d, last entry leaves %d", a.ID, a.Available, t.sum, t.lastAfter))
		}
		delete(byAccount, a.ID)
	})
	for id := range byAccount {
		bad = append(bad, fmt.Sprintf("entries of unknown account %q", id))
	}
	if len(bad) > 0 {
		if len(bad) > maxViolations {
			bad = bad[:maxViolations]
		}
		return n, fmt.Errorf("%w: %v", ErrViolation, bad)
	}
	return n, nil
}
