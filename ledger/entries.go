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
	case kindSettle:
		e.RequestID = d.string()
		e.Held = d.varint()
		e.Charged = d.varint()
		e.Amount = e.Held - e.Charged
		e.AvailableAfter = d.varint()
		e.Call = d.optionalCall()
	case kindVoid:
		e.RequestID = d.string()
		e.Amount = d.varint()
		e.Held = e.Amount
		e.Reason = d.string()
		e.AvailableAfter = d.varint()
		e.Call = d.optionalCall()
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

func (d *decoder) optionalCall() *CallRecord {
	if !d.bool() {
		return nil
	}
	c := new(CallRecord)
	d.callRecord(c)
	return c
}
