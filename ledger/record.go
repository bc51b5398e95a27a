package ledger

// recordKind names the operation a WAL record holds. The values are part of
// the storage format: never renumber, only add.
type recordKind uint8

const (
	kindAccountCreate  recordKind = 1
	kindAccountUpdate  recordKind = 2
	kindFreeze         recordKind = 3
	kindUnfreeze       recordKind = 4
	kindTopUp          recordKind = 5
	kindHold           recordKind = 6
	kindSettle         recordKind = 7
	kindVoid           recordKind = 8
	kindAdjust         recordKind = 9
	kindExpire         recordKind = 10
	kindKeyCreate      recordKind = 11
	kindKeyUpdate      recordKind = 12
	kindKeyRevoke      recordKind = 13
	kindCall           recordKind = 14
	kindAccountClose   recordKind = 15
	kindDisputeFile    recordKind = 16
	kindDisputeResolve recordKind = 17
)

// isEntry reports whether records of kind k are ledger entries: the money
// movements an account's entry list shows (the log also keeps them under
// the account).
func (k recordKind) isEntry() bool {
	switch k {
	case kindTopUp, kindHold, kindSettle, kindVoid, kindAdjust, kindExpire:
		return true
	}
	return false
}

// Record bodies, by kind. The frame (wal/record.go) carries the kind, the
// sequence number, the time and the account ID; the body carries the rest,
// encoded with the primitives of codec.go (s = string, v = varint,
// u = uvarint, b = byte). Bodies that change a balance end with the
// account's available balance after the operation, which replay recomputes
// and compares: a mismatch stops the replay.
//
//	accountCreate  s email, v multiplier, v rpm, v tpm, v concurrency
//	accountUpdate  same fields as accountCreate: the full new values
//	freeze         s actor
//	unfreeze       s actor
//	topUp          v amount, s orderID, b credit, v expiresAt, u bucketID, s actor, v availableAfter
//	hold           s requestID, v amount, s keyID, v availableAfter
//	settle         s requestID, v held, v charged, v availableAfter, b usage, [usage]
//	void           s requestID, v held, s reason, v availableAfter, b usage, [usage]
//	adjust         v amount, s reason, s requestID, s idempotencyKey, s actor, v availableAfter
//	expire         u bucketID, b credit, v expiresAt, v amount, v availableAfter
//	keyCreate      s keyID, s hash(32 bytes), s name, s hint, key fields
//	keyUpdate      s keyID, key fields
//	keyRevoke      s keyID
//	call           call record (of a rejected call, or following the
//	               settle or void of its call)
//
// usage (hold.go, holdEnd): 0 none; 2 s modelID and the seven token counts,
// what a statement needs. Format 1, a whole call record, was written until
// December 2026 and is still read.
//
// Each operation's file holds its record's encoder, decoder and replay side
// by side: accounts.go, topup.go, hold.go (hold, settle, void), adjust.go,
// expire.go, keys.go and calls.go; replay.go dispatches on the kind.
//
// key fields: v rpm, v tpm, v concurrency, v spendLimit, v spendPeriodNanos,
// v expiresAt, u model count, s model...
//
// call record: see callrecord.go.
