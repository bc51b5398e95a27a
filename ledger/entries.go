package ledger

import (
	"fmt"

	"github.com/tollgate/tollgate/wal"
)

// Entries returns up to limit entries of the account, newest first, older
// than the entry ID before (0: from the newest), and whether older entries
// remain. It needs a log: a memory-only ledger keeps no entries.
func (l *Ledger) Entries(accountID string, before uint64, limit int) ([]Entry, bool, error) {
	if l.log == nil {
		return nil, false, nil
	}
	var out []Entry
	more, err := l.log.Entries(accountID, before, limit, func(v wal.RecordView) error {
		e, err := decodeEntry(v)
		if err != nil {
			return fmt.Errorf("cannot decode entry %d: %w", v.Seq, err)
		}
		out = append(out, e)
		return nil
	})
	return out, more, err
}

// decodeEntry turns an entry record into an Entry, with the decoders the
// replay uses.
func decodeEntry(v wal.RecordView) (Entry, error) {
	e := Entry{ID: v.Seq, TimeNanos: v.TimeNanos, Kind: EntryKind(v.Kind), Account: string(v.Account)}
	d := decoder{b: v.Body}
	switch kind := recordKind(v.Kind); kind {
	case kindTopUp:
		d.topUp(&e)
	case kindHold:
		var h holdRecord
		d.holdRecord(&h)
		e.RequestID, e.Amount, e.AvailableAfter = h.requestID, -h.amount, h.availableAfter
	case kindSettle, kindVoid:
		var he holdEnd
		d.holdEnd(kind, &he)
		e.RequestID, e.Held, e.Charged, e.Reason = he.requestID, he.held, he.charged, he.reason
		e.Amount = he.held - he.charged
		e.AvailableAfter = he.availableAfter
		e.ModelID, e.Tokens, e.legacyCall = he.modelID, he.tokens, he.call
	case kindAdjust:
		d.adjust(&e)
	case kindExpire:
		var x expiry
		d.expiry(&x)
		e.Credit, e.ExpiresAtNanos, e.Amount, e.AvailableAfter = x.credit, x.expiresAt, -x.amount, x.availableAfter
	default:
		return e, fmt.Errorf("ledger: record kind %d is not an entry", v.Kind)
	}
	return e, d.done()
}
