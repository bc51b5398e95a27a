package ledger

import (
	"fmt"

	"github.com/tollgate/tollgate/internal/tokens"
)

// Credit is the kind of credit a top-up adds.
type Credit uint8

const (
	// CreditPaid is bought credit; it expires PaidCreditLifetime after the
	// account's most recent paid top-up.
	CreditPaid Credit = 1
	// CreditGift is granted credit with its own expiry time.
	CreditGift Credit = 2
	// CreditAdjust is credit from positive adjustments: it never expires and
	// is spent last. No top-up may name it (ParseCredit refuses it).
	CreditAdjust Credit = 3
)

// String returns the contract's name of c.
func (c Credit) String() string {
	switch c {
	case CreditPaid:
		return "paid"
	case CreditGift:
		return "gift"
	case CreditAdjust:
		return "adjust"
	}
	return fmt.Sprintf("Credit(%d)", uint8(c))
}

// ParseCredit parses "paid" or "gift".
func ParseCredit(s string) (Credit, error) {
	switch s {
	case "paid":
		return CreditPaid, nil
	case "gift":
		return CreditGift, nil
	}
	return 0, fmt.Errorf("%w: credit kind %q (want paid or gift)", ErrInvalid, s)
}

// EntryKind is the kind of a ledger entry, as the entries API names it.
type EntryKind uint8

// Entry kinds. Their values are the record kinds of the WAL (see record.go).
const (
	EntryTopUp  EntryKind = EntryKind(kindTopUp)
	EntryHold   EntryKind = EntryKind(kindHold)
	EntrySettle EntryKind = EntryKind(kindSettle)
	EntryVoid   EntryKind = EntryKind(kindVoid)
	EntryAdjust EntryKind = EntryKind(kindAdjust)
	EntryExpire EntryKind = EntryKind(kindExpire)
	// EntryUsage is cluster mode's entry of a node's usage report: the
	// charges of the calls it settled since its previous report (no WAL
	// record has this kind).
	EntryUsage EntryKind = 200
)

// String returns the contract's name of k.
func (k EntryKind) String() string {
	switch k {
	case EntryTopUp:
		return "topup"
	case EntryHold:
		return "hold"
	case EntrySettle:
		return "settle"
	case EntryVoid:
		return "void"
	case EntryAdjust:
		return "adjust"
	case EntryExpire:
		return "expire"
	case EntryUsage:
		return "usage"
	}
	return fmt.Sprintf("EntryKind(%d)", uint8(k))
}

// Limits are request, token and concurrency limits. A negative value means
// "use the configured default"; 0 means unlimited.
type Limits struct {
	// RPM is requests per minute.
	RPM int64
	// TPM is tokens per minute.
	TPM int64
	// Concurrency is calls in flight.
	Concurrency int64
}

// DefaultLimits leaves every limit to the configuration.
var DefaultLimits = Limits{RPM: -1, TPM: -1, Concurrency: -1}

// Entry is one ledger entry of an account: a top-up, hold, settlement, void,
// adjustment or expiry. Amount is the signed change to the account's
// available balance.
type Entry struct {
	ID             uint64
	TimeNanos      int64
	Kind           EntryKind
	Account        string
	Amount         int64
	AvailableAfter int64
	RequestID      string
	OrderID        string
	Reason         string
	Actor          string
	IdempotencyKey string
	// Held and Charged are set on settle entries.
	Held, Charged int64
	// Credit and ExpiresAtNanos are set on top-up and expire entries.
	Credit         Credit
	ExpiresAtNanos int64
	// ModelID and Tokens are the catalogue model and the token counts of
	// the call a settle or void ended (a void's are zero); what statements
	// sum, kept for good, while the call record itself is pruned.
	ModelID string
	Tokens  tokens.Counts
	// legacyCall is the whole call record a settle or void written before
	// December 2026 carries.
	legacyCall *CallRecord
}

// Void reasons the ledger itself uses. Callers may pass others.
const (
	// ReasonHoldTimeout: voided by the hold sweeper.
	ReasonHoldTimeout = "hold_timeout"
	// ReasonRecovered: found open at start after a crash, voided by the
	// recovery policy.
	ReasonRecovered = "recovered"
)
