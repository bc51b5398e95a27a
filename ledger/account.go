package ledger

// account is one customer's money. It is guarded by its shard's mutex.
//
// Conservation: toppedUp + adjusted - expired == available() + held + charged,
// where available() is the free credit minus debt. debt > 0 only when no
// unexpired free credit is left: any credit that becomes free repays it first.
type account struct {
	// shard is the shard that owns the account (saves rehashing its ID).
	shard      *shard
	id         string
	email      string
	multiplier int64
	limits     Limits
	frozen     bool
	createdAt  int64
	// closedAt is when the account was closed (0: open). A closed account
	// is frozen for good and its keys are revoked.
	closedAt int64

	// buckets are kept in spend order: soonest expiry first, then by ID.
	buckets []bucket
	debt    int64
	held    int64
	charged int64

	toppedUp int64
	adjusted int64
	expired  int64

	openHolds int
	// keySpend tracks the spending of the account's keys that have a spend
	// limit.
	keySpend map[string]*keySpend
	// lastBucketID is the highest bucket ID the account has used.
	lastBucketID uint64
	// snapshotted is the money of its latest statement snapshot
	// (SnapshotStatements), in memory only: after a start every account
	// gets one more.
	snapshotted moneyMark
}

// available is the spendable balance: free credit minus debt.
func (a *account) available() int64 {
	var s int64
	for i := range a.buckets {
		s += a.buckets[i].free()
	}
	return s - a.debt
}

// expiresAt is the soonest expiry among credits with a positive remainder, or
// 0 when there is none (adjustment credit never expires).
func (a *account) expiresAt() int64 {
	for i := range a.buckets {
		if b := &a.buckets[i]; b.remaining > 0 && b.expiresAt != neverExpires {
			return b.expiresAt
		}
	}
	return 0
}
