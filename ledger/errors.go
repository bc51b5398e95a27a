package ledger

import "errors"

// Sentinel errors. Callers compare with errors.Is; each maps to one status of
// the contract (noted after each).
var (
	// ErrInsufficient: the hold does not fit in the available balance (402).
	ErrInsufficient = errors.New("ledger: insufficient balance")
	// ErrFrozen: the account is frozen and can hold nothing new (403).
	ErrFrozen = errors.New("ledger: account frozen")
	// ErrUnknownAccount: no account with that ID (404).
	ErrUnknownAccount = errors.New("ledger: unknown account")
	// ErrAccountExists: an account with that ID exists (409).
	ErrAccountExists = errors.New("ledger: account exists")
	// ErrAlreadyHeld: a hold with that request ID is open (409).
	ErrAlreadyHeld = errors.New("ledger: request already held")
	// ErrNoOpenHold: no open hold with that request ID: never held, or already
	// settled or voided.
	ErrNoOpenHold = errors.New("ledger: no open hold for request")
	// ErrOrderConflict: the order ID was used with another account or amount (409).
	ErrOrderConflict = errors.New("ledger: order ID used with different details")
	// ErrIdempotencyConflict: the idempotency key was used with another body (409).
	ErrIdempotencyConflict = errors.New("ledger: idempotency key used with different details")
	// ErrInvalid: an argument is out of range; the wrapping error says which (400).
	ErrInvalid = errors.New("ledger: invalid argument")
	// ErrUnknownKey: no API key with that ID (404).
	ErrUnknownKey = errors.New("ledger: unknown key")
	// ErrKeyExists: an API key with that ID or hash exists (409).
	ErrKeyExists = errors.New("ledger: key exists")
	// ErrKeyQuota: the account has the most keys a creation allows (409).
	ErrKeyQuota = errors.New("ledger: the account has the most keys allowed")
	// ErrAccountClosed: the account is closed: no top-ups, keys or
	// unfreezing any more (409).
	ErrAccountClosed = errors.New("ledger: account closed")
	// ErrTooManyBuckets: the account has MaxGiftBuckets gift credits with
	// distinct expiry times (409).
	ErrTooManyBuckets = errors.New("ledger: too many gift credits with distinct expiry times")
)
