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

// decodeEntry turns an entry record into an Entry.
func decodeEntry(v wal.RecordView) (Entry, error) {
	e := Entry{ID: v.Seq, TimeNanos: v.TimeNanos, Kind: EntryKind(v.Kind), Account: string(v.Account)}
	d := decoder{b: v.Body}
	switch v.Kind {
	case kindTopUp:
		e.Amount = d.varint()
		e.OrderID = d.string()
		e.Credit = Credit(d.byte())
		e.ExpiresAtNanos = d.varint()
		_ = d.uvarint() // bucket
		e.Actor = d.string()
		e.AvailableAfter = d.varint()
	case kindHold:
		e.RequestID = d.string()
		e.Amount = -d.varint()
		_ = d.string() // key
		e.AvailableAfter = d.varint()
	case kindSettle, kindVoid:
		var he holdEnd
		d.holdEnd(v.Kind, &he)
		e.RequestID, e.Held, e.Charged, e.Reason = he.requestID, he.held, he.charged, he.reason
		e.Amount = he.held - he.charged
		e.AvailableAfter = he.availableAfter
		e.ModelID, e.Tokens, e.legacyCall = he.modelID, he.tokens, he.call
	case kindAdjust:
		e.Amount = d.varint()
		e.Reason = d.string()
		e.RequestID = d.string()
		e.IdempotencyKey = d.string()
		e.Actor = d.string()
		e.AvailableAfter = d.varint()
	case kindExpire:
		_ = d.uvarint() // bucket
		e.Credit = Credit(d.byte())
		e.ExpiresAtNanos = d.varint()
		e.Amount = -d.varint()
		e.AvailableAfter = d.varint()
	default:
		return e, fmt.Errorf("ledger: record kind %d is not an entry", v.Kind)
	}
	return e, d.done()
}
