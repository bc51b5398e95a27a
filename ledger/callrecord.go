package ledger

import (
	"fmt"

	"github.com/tollgate/tollgate/internal/tokens"
)

// Outcome is how a call ended (contract section 4).
type Outcome uint8

// Outcomes. The values are stored in records: never renumber.
const (
	OutcomeOK                 Outcome = 1
	OutcomeRejected           Outcome = 2
	OutcomeUpstreamError      Outcome = 3
	OutcomeStreamError        Outcome = 4
	OutcomeClientDisconnected Outcome = 5
	OutcomeTimeout            Outcome = 6
	OutcomeRecovered          Outcome = 7
)

var outcomeNames = [...]string{
	OutcomeOK:                 "ok",
	OutcomeRejected:           "rejected",
	OutcomeUpstreamError:      "upstream_error",
	OutcomeStreamError:        "stream_error",
	OutcomeClientDisconnected: "client_disconnected",
	OutcomeTimeout:            "timeout",
	OutcomeRecovered:          "recovered",
}

// String returns the contract's name of o.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && outcomeNames[o] != "" {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Attempt is one try of a call against one upstream.
type Attempt struct {
	Upstream   string
	Status     int
	ErrorType  string
	DurationMs int64
}

// CallRecord is the record of one authenticated call (contract section 4),
// stored with the settlement or void that ends its hold, or alone for a call
// rejected before any hold. Token counts are as folded from the stream.
type CallRecord struct {
	RequestID string
	AccountID string
	KeyID     string
	TimeNanos int64
	// Model is the model as the client asked for it; when the client's
	// string was not a valid model name, its truncated, sanitised form with
	// ModelTruncated set.
	Model          string
	ModelTruncated bool
	Status         int
	Outcome        Outcome

	// ModelID is the catalogue's ID of the model, "" when the request named
	// none the catalogue knows.
	ModelID string
	// Front is the client API the call came in on.
	Front Front

	tokens.Counts

	Held           int64
	Charged        int64
	UsageEstimated bool
	// SourceIPDigest is the keyed digest of the client's address (hex), never
	// the address itself.
	SourceIPDigest string
	DurationMs     int64
	TTFBMs         int64

	// Admin-only fields.
	Upstream          string
	UpstreamRequestID string
	UpstreamCost      int64
	Attempts          []Attempt
}

// callRecordVersion is the first byte of an encoded call record. Each
// version appends fields to the previous one's layout, and the decoder reads
// every earlier version: 1 has the fields up to the attempts, 2 adds
// modelTruncated and modelID, 3 the front.
const callRecordVersion = 3

// Front is the client API a call came in on.
type Front uint8

const (
	// FrontAnthropic is POST /v1/messages (and count_tokens).
	FrontAnthropic Front = iota
	// FrontOpenAI is POST /v1/chat/completions.
	FrontOpenAI
)

// String is the front's name in call records: "anthropic" or "openai".
func (f Front) String() string {
	if f == FrontOpenAI {
		return "openai"
	}
	return "anthropic"
}

// appendCallRecord encodes c. Layout: version byte, then the fields in
// declaration order (but ModelTruncated, ModelID and Front last, as
// versions 2 and 3 added them; the seven token counts in tokens.Counts' order): strings as
// uvarint length + bytes, integers as varints, bools as one byte, attempts
// as a uvarint count followed by each attempt's fields.
func appendCallRecord(dst []byte, c *CallRecord) []byte {
	dst = append(dst, callRecordVersion)
	dst = appendString(dst, c.RequestID)
	dst = appendString(dst, c.AccountID)
	dst = appendString(dst, c.KeyID)
	dst = appendVarint(dst, c.TimeNanos)
	dst = appendString(dst, c.Model)
	dst = appendVarint(dst, int64(c.Status))
	dst = append(dst, byte(c.Outcome))
	dst = appendTokens(dst, &c.Counts)
	dst = appendVarint(dst, c.Held)
	dst = appendVarint(dst, c.Charged)
	dst = appendBool(dst, c.UsageEstimated)
	dst = appendString(dst, c.SourceIPDigest)
	dst = appendVarint(dst, c.DurationMs)
	dst = appendVarint(dst, c.TTFBMs)
	dst = appendString(dst, c.Upstream)
	dst = appendString(dst, c.UpstreamRequestID)
	dst = appendVarint(dst, c.UpstreamCost)
	dst = appendUvarint(dst, uint64(len(c.Attempts)))
	for i := range c.Attempts {
		a := &c.Attempts[i]
		dst = appendString(dst, a.Upstream)
		dst = appendVarint(dst, int64(a.Status))
		dst = appendString(dst, a.ErrorType)
		dst = appendVarint(dst, a.DurationMs)
	}
	dst = appendBool(dst, c.ModelTruncated)
	dst = appendString(dst, c.ModelID)
	return append(dst, byte(c.Front))
}

// appendTokens appends the seven counters in their declaration order.
func appendTokens(dst []byte, t *tokens.Counts) []byte {
	dst = appendVarint(dst, t.InputTokens)
	dst = appendVarint(dst, t.OutputTokens)
	dst = appendVarint(dst, t.CacheCreationInputTokens)
	dst = appendVarint(dst, t.CacheCreation5mInputTokens)
	dst = appendVarint(dst, t.CacheCreation1hInputTokens)
	dst = appendVarint(dst, t.CacheReadInputTokens)
	return appendVarint(dst, t.WebSearchRequests)
}

func (d *decoder) tokens(t *tokens.Counts) {
	t.InputTokens = d.varint()
	t.OutputTokens = d.varint()
	t.CacheCreationInputTokens = d.varint()
	t.CacheCreation5mInputTokens = d.varint()
	t.CacheCreation1hInputTokens = d.varint()
	t.CacheReadInputTokens = d.varint()
	t.WebSearchRequests = d.varint()
}

// maxAttempts bounds the attempts a decoded call record may list.
const maxAttempts = 64

func (d *decoder) callRecord(c *CallRecord) {
	v := d.byte()
	if (v < 1 || v > callRecordVersion) && d.err == nil {
		d.fail(fmt.Errorf("ledger: unknown call record version %d", v))
		return
	}
	c.RequestID = d.string()
	c.AccountID = d.string()
	c.KeyID = d.string()
	c.TimeNanos = d.varint()
	c.Model = d.string()
	c.Status = int(d.varint())
	c.Outcome = Outcome(d.byte())
	d.tokens(&c.Counts)
	c.Held = d.varint()
	c.Charged = d.varint()
	c.UsageEstimated = d.bool()
	c.SourceIPDigest = d.string()
	c.DurationMs = d.varint()
	c.TTFBMs = d.varint()
	c.Upstream = d.string()
	c.UpstreamRequestID = d.string()
	c.UpstreamCost = d.varint()
	n := d.uvarint()
	if n > maxAttempts {
		d.fail(fmt.Errorf("ledger: call record lists %d attempts", n))
		return
	}
	if n > 0 {
		c.Attempts = make([]Attempt, n)
		for i := range c.Attempts {
			a := &c.Attempts[i]
			a.Upstream = d.string()
			a.Status = int(d.varint())
			a.ErrorType = d.string()
			a.DurationMs = d.varint()
		}
	}
	if v >= 2 {
		c.ModelTruncated = d.bool()
		c.ModelID = d.string()
	}
	if v >= 3 {
		c.Front = Front(d.byte())
	}
}

// DecodeCallRecord reads a call record as the WAL encodes it (cluster mode
// stores call records in PostgreSQL so, as Ledger.Shippable hands them).
func DecodeCallRecord(b []byte) (*CallRecord, error) {
	c := new(CallRecord)
	d := decoder{b: b}
	d.callRecord(c)
	return c, d.done()
}
