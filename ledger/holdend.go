package ledger

import (
	"fmt"

	"github.com/tollgate/tollgate/internal/tokens"
)

// holdEnd is the body of a settle or void record: how the hold ended and
// what a statement needs of the call (its catalogue model and token
// counts). Nothing the client sent is in it: the call record, with the
// client's strings, is a record of its own that retention prunes.
type holdEnd struct {
	requestID      string
	held, charged  int64
	reason         string // of a void
	availableAfter int64
	// modelID and tokens summarise the call; a legacy record may instead
	// carry its whole call record, decoded into call.
	modelID string
	tokens  tokens.Counts
	call    *CallRecord
}

// Formats of a hold end's usage part.
const (
	holdEndNoUsage    = 0
	holdEndCallRecord = 1 // legacy: the whole call record
	holdEndUsage      = 2
)

func appendHoldEnd(dst []byte, kind uint8, e *holdEnd) []byte {
	dst = appendString(dst, e.requestID)
	dst = appendVarint(dst, e.held)
	if kind == kindVoid {
		dst = appendString(dst, e.reason)
	} else {
		dst = appendVarint(dst, e.charged)
	}
	dst = appendVarint(dst, e.availableAfter)
	dst = append(dst, holdEndUsage)
	dst = appendString(dst, e.modelID)
	return appendTokens(dst, &e.tokens)
}

func (d *decoder) holdEnd(kind uint8, e *holdEnd) {
	e.requestID = d.string()
	e.held = d.varint()
	if kind == kindVoid {
		e.reason = d.string()
	} else {
		e.charged = d.varint()
	}
	e.availableAfter = d.varint()
	switch f := d.byte(); f {
	case holdEndNoUsage:
	case holdEndCallRecord:
		e.call = new(CallRecord)
		d.callRecord(e.call)
		e.modelID, e.tokens = e.call.Model, e.call.Counts
	case holdEndUsage:
		e.modelID = d.string()
		d.tokens(&e.tokens)
	default:
		d.fail(fmt.Errorf("ledger: unknown hold end format %d", f))
	}
}
