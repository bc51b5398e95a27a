package ledger

import (
	"fmt"
	"math"
)

// Bucket IDs: a paid or gift bucket takes the sequence number of the top-up
// that created it; adjustment credit lives in the bucket adjustBucketID.
//
// An account has at most one live paid bucket (one whose expiry has not
// passed): every paid top-up adds to it and moves its expiry. A paid bucket
// whose expiry passed while a hold earmarked part of it stays behind, lapsed,
// until that hold ends and the rest expires; the next paid top-up starts a new
// paid bucket.
const adjustBucketID uint64 = math.MaxUint64

// neverExpires is the expiry time of adjustment credit: it sorts last, so
// that credit is spent last.
const neverExpires = math.MaxInt64

// bucket is one credit of an account. remaining includes the earmarked part;
// the free part is remaining - earmarked.
type bucket struct {
	id        uint64
	credit    Credit
	expiresAt int64
	remaining int64
	earmarked int64
}

func (b *bucket) free() int64 { return b.remaining - b.earmarked }

// mark is the part of a bucket a hold earmarked.
type mark struct {
	bucket uint64
	amount int64
}

func (a *account) bucketIndex(id uint64) int {
	for i := range a.buckets {
		if a.buckets[i].id == id {
			return i
		}
	}
	return -1
}

// sortBuckets restores spend order after an expiry time changed or a bucket
// was added. Accounts have few buckets, so insertion sort.
func (a *account) sortBuckets() {
	bs := a.buckets
	for i := 1; i < len(bs); i++ {
		for j := i; j > 0 && bucketLess(&bs[j], &bs[j-1]); j-- {
			bs[j], bs[j-1] = bs[j-1], bs[j]
		}
	}
}

func bucketLess(x, y *bucket) bool {
	if x.expiresAt != y.expiresAt {
		return x.expiresAt < y.expiresAt
	}
	return x.id < y.id
}

// dropEmpty removes buckets with nothing left.
func (a *account) dropEmpty() {
	out := a.buckets[:0]
	for _, b := range a.buckets {
		if b.remaining != 0 {
			out = append(out, b)
		} else if b.earmarked != 0 {
			panic(fmt.Sprintf("BUG: bucket %d of account %q is empty but earmarks %d", b.id, a.id, b.earmarked))
		}
	}
	clear(a.buckets[len(out):])
	a.buckets = out
}

// addCredit adds amount of credit: it repays debt first, then lands in the
// bucket the credit belongs to. For paid credit expiresAt is the new expiry of
// the whole live paid bucket; gift credit merges with a gift bucket of the
// same expiry; a new bucket takes id. It reports ErrTooManyBuckets when a new
// gift bucket would exceed maxGifts (checked before anything changes).
func (a *account) addCredit(c Credit, id uint64, expiresAt, amount, now int64, maxGifts int) error {
	target := -1
	switch c {
	case CreditPaid:
		for i := range a.buckets {
			if b := &a.buckets[i]; b.credit == CreditPaid && b.expiresAt > now {
				target = i
			}
		}
	case CreditAdjust:
		target = a.bucketIndex(adjustBucketID)
	case CreditGift:
		gifts := 0
		for i := range a.buckets {
			if b := &a.buckets[i]; b.credit == CreditGift {
				gifts++
				if b.expiresAt == expiresAt {
					target = i
				}
			}
		}
		if target < 0 && gifts >= maxGifts {
			return ErrTooManyBuckets
		}
	default:
		panic(fmt.Sprintf("BUG: credit of kind %d", c))
	}
	repay := min(a.debt, amount)
	a.debt -= repay
	amount -= repay
	if target < 0 {
		if c == CreditAdjust {
			id = adjustBucketID
			expiresAt = neverExpires
		}
		a.buckets = append(a.buckets, bucket{id: id, credit: c, expiresAt: expiresAt})
		target = len(a.buckets) - 1
	}
	b := &a.buckets[target]
	b.remaining += amount
	if c == CreditPaid {
		b.expiresAt = expiresAt
	}
	a.sortBuckets()
	a.dropEmpty()
	return nil
}

// spendFree takes up to amount from unexpired free credit in spend order and
// returns what it could not cover.
func (a *account) spendFree(amount, now int64) int64 {
	for i := range a.buckets {
		if amount == 0 {
			break
		}
		b := &a.buckets[i]
		if b.expiresAt <= now {
			continue
		}
		take := min(b.free(), amount)
		b.remaining -= take
		amount -= take
	}
	return amount
}

// repayDebt pays debt from unexpired free credit.
func (a *account) repayDebt(now int64) {
	if a.debt > 0 {
		a.debt -= a.debt - a.spendFree(a.debt, now)
	}
}

// earmark reserves amount of unexpired free credit in spend order and appends
// the marks to dst. The caller has checked that amount fits.
func (a *account) earmark(dst []mark, amount, now int64) []mark {
	for i := range a.buckets {
		if amount == 0 {
			break
		}
		b := &a.buckets[i]
		if b.expiresAt <= now {
			continue
		}
		take := min(b.free(), amount)
		if take > 0 {
			b.earmarked += take
			amount -= take
			dst = append(dst, mark{bucket: b.id, amount: take})
		}
	}
	if amount != 0 {
		panic(fmt.Sprintf("BUG: account %q cannot earmark %d more", a.id, amount))
	}
	return dst
}

// spendHeld ends a hold: it gives its marks back and spends amount in the
// order the contract fixes for a settlement: first from the marks on credit
// that expired during the call (it would expire now otherwise), then from the
// soonest-expiring unexpired free credit, which now includes the hold's other
// marks, so that credit freed by other calls meanwhile is not left to expire
// first. It returns what it could not cover (the caller's debt).
func (a *account) spendHeld(marks []mark, amount, now int64) int64 {
	for _, m := range marks {
		i := a.bucketIndex(m.bucket)
		if i < 0 {
			panic(fmt.Sprintf("BUG: account %q lost bucket %d that a hold earmarked", a.id, m.bucket))
		}
		b := &a.buckets[i]
		b.earmarked -= m.amount
		if b.expiresAt <= now {
			take := min(m.amount, amount)
			b.remaining -= take
			amount -= take
		}
		if b.earmarked < 0 || b.remaining < b.earmarked {
			panic(fmt.Sprintf("BUG: bucket %d of account %q: remaining %d earmarked %d", b.id, a.id, b.remaining, b.earmarked))
		}
	}
	return a.spendFree(amount, now)
}

// freeCreditDue reports whether a bucket past its expiry still has free
// credit, which an expiry must take out.
func (a *account) freeCreditDue(now int64) bool {
	for i := range a.buckets {
		if b := &a.buckets[i]; b.expiresAt <= now && b.free() > 0 {
			return true
		}
	}
	return false
}
