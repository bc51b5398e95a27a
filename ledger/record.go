package ledger

// Record kinds stored in the WAL. The values are part of the storage format:
// never renumber, only add.
const (
	kindAccountCreate uint8 = 1
	kindAccountUpdate uint8 = 2
	kindFreeze        uint8 = 3
	kindUnfreeze      uint8 = 4
	kindTopUp         uint8 = 5
	kindHold          uint8 = 6
	kindSettle        uint8 = 7
	kindVoid          uint8 = 8
	kindAdjust        uint8 = 9
	kindExpire        uint8 = 10
	kindKeyCreate     uint8 = 11
	kindKeyUpdate     uint8 = 12
	kindKeyRevoke     uint8 = 13
	kindCall          uint8 = 14
)

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
// usage (holdend.go): 0 none; 2 s modelID and the seven token counts, what a
// statement needs. Format 1, a whole call record, was written until
// December 2026 and is still read.
//
// key fields: v rpm, v tpm, v concurrency, v spendLimit, v spendPeriodNanos,
// v expiresAt, u model count, s model...
//
// call record: see callrecord.go.
