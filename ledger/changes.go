package ledger

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/tollgate/tollgate/wal"
)

// ChangeKind names what a ledger record changed, as notifications see it.
type ChangeKind uint8

// The kinds of change; ChangeOther is every record that tells nothing by
// itself (accounts created or updated, keys updated, calls).
const (
	ChangeOther ChangeKind = iota
	// ChangeEntry is a money entry: a top-up, hold, settlement, void,
	// adjustment or expiry (Change.Entry).
	ChangeEntry
	ChangeFreeze
	ChangeUnfreeze
	ChangeClose
	ChangeKeyCreate
	ChangeKeyRevoke
	ChangeDisputeFile
	ChangeDisputeResolve
)

// Change is one ledger record, decoded for those who act on changes.
type Change struct {
	Seq       uint64
	Kind      ChangeKind
	Account   string
	TimeNanos int64
	Entry     *Entry
	// KeyID is the key created or revoked; KeyName the created key's name.
	KeyID, KeyName string
	// Dispute is the dispute filed (ID, request, reason) or resolved (ID,
	// state, resolution, refund; its request as filed).
	Dispute *Dispute
}

// Changes calls fn with every record after seq, in order, decoded. The log
// keeps records past the latest checkpoint only while a reader asked it to
// (wal.Log.SetRetention).
func (l *Ledger) Changes(after uint64, fn func(Change) error) error {
	if l.log == nil {
		return nil
	}
	return l.log.Replay(after, func(v wal.RecordView) error {
		c, err := l.changeOf(v)
		if err != nil {
			return err
		}
		return fn(c)
	})
}

func (l *Ledger) changeOf(v wal.RecordView) (Change, error) {
	c := Change{Seq: v.Seq, Account: string(v.Account), TimeNanos: v.TimeNanos}
	d := decoder{b: v.Body}
	switch kind := recordKind(v.Kind); kind {
	case kindTopUp, kindHold, kindSettle, kindVoid, kindAdjust, kindExpire:
		e, err := decodeEntry(v)
		c.Kind, c.Entry = ChangeEntry, &e
		return c, err
	case kindFreeze, kindUnfreeze, kindAccountClose:
		c.Kind = map[recordKind]ChangeKind{kindFreeze: ChangeFreeze, kindUnfreeze: ChangeUnfreeze, kindAccountClose: ChangeClose}[kind]
		return c, nil
	case kindKeyCreate:
		c.Kind, c.KeyID = ChangeKeyCreate, d.string()
		d.bytes() // the hash
		c.KeyName = d.string()
		return c, nil
	case kindKeyRevoke:
		c.Kind, c.KeyID = ChangeKeyRevoke, d.string()
		return c, d.done()
	case kindDisputeFile:
		c.Kind, c.Dispute = ChangeDisputeFile, &Dispute{AccountID: c.Account, FiledAt: v.TimeNanos, ID: d.string(), RequestID: d.string(), Reason: d.string()}
		return c, d.done()
	case kindDisputeResolve:
		x := Dispute{AccountID: c.Account, ResolvedAt: v.TimeNanos}
		d.resolution(&x)
		if filed, ok := l.Dispute(x.ID); ok {
			x.RequestID, x.Reason, x.FiledAt = filed.RequestID, filed.Reason, filed.FiledAt
		}
		c.Kind, c.Dispute = ChangeDisputeResolve, &x
		return c, d.done()
	case kindAccountCreate, kindAccountUpdate, kindKeyUpdate, kindCall:
		return c, nil
	}
	return c, fmt.Errorf("%w: unknown record kind %d", ErrReplay, v.Kind)
}

// Shippable calls settle with the settle entries and call with the call
// records (decoded, and as encoded in the WAL: a copy DecodeCallRecord
// reads) after seq up to and including upto, in order, and returns the
// last record's sequence number read (shippable or not). It decodes only
// those two kinds: cluster mode's shipper reads every call's records with
// it.
func (l *Ledger) Shippable(after, upto uint64, settle func(Entry) error, call func(c *CallRecord, encoded []byte) error) (last uint64, err error) {
	last = after
	if l.log == nil {
		return last, nil
	}
	err = l.log.Replay(after, func(v wal.RecordView) error {
		if v.Seq > upto {
			return errPastUpto
		}
		var err error
		switch recordKind(v.Kind) {
		case kindSettle:
			var e Entry
			if e, err = decodeEntry(v); err == nil {
				err = settle(e)
			}
		case kindCall:
			var c *CallRecord
			if c, err = DecodeCallRecord(v.Body); err == nil {
				err = call(c, bytes.Clone(v.Body))
			}
		}
		if err == nil {
			last = v.Seq
		}
		return err
	})
	if errors.Is(err, errPastUpto) {
		err = nil
	}
	return last, err
}

var errPastUpto = errors.New("ledger: past the last record asked for")
