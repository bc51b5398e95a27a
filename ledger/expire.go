package ledger

import "fmt"

// expireDueLocked expires the free credit of every bucket of a whose expiry
// is at or before now, one expire entry per bucket, and returns the last
// entry's sequence number (0 if nothing expired). Credit earmarked by a hold
// stays until the hold ends. REQUIRES: s.mu held.
func (l *Ledger) expireDueLocked(s *shard, a *account, now int64) uint64 {
	if !a.freeCreditDue(now) {
		return 0
	}
	var seq uint64
	for i := range a.buckets {
		b := &a.buckets[i]
		if b.expiresAt > now || b.free() <= 0 {
			continue
		}
		amount := b.free()
		b.remaining -= amount
		a.expired += amount
		body := appendExpiry(s.mu.scratch[:0], &expiry{bucketID: b.id, credit: b.credit, expiresAt: b.expiresAt,
			amount: amount, availableAfter: a.available()})
		s.mu.scratch = body
		seq = l.appendLocked(kindExpire, a.id, now, body)
		opsExpire.Inc()
	}
	a.dropEmpty()
	return seq
}

// Expire applies every expiry due at now, in every account, and waits for the
// resulting entries per the log's mode. It returns how many entries it made.
func (l *Ledger) Expire(now int64) (int, error) {
	n := 0
	var last uint64
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for _, a := range s.mu.accounts {
			before := a.expired
			if seq := l.expireDueLocked(s, a, now); seq != 0 {
				last = max(last, seq)
				if a.expired != before {
					n++
				}
			}
		}
		s.mu.Unlock()
	}
	if last == 0 {
		return n, nil
	}
	return n, Commit{log: l.log, seq: last}.Wait()
}

// expiry is the body of an expire record: u bucketID, b credit, v
// expiresAt, v amount, v availableAfter.
type expiry struct {
	bucketID                          uint64
	credit                            Credit
	expiresAt, amount, availableAfter int64
}

func appendExpiry(dst []byte, x *expiry) []byte {
	dst = appendUvarint(dst, x.bucketID)
	dst = append(dst, byte(x.credit))
	dst = appendVarint(dst, x.expiresAt)
	dst = appendVarint(dst, x.amount)
	return appendVarint(dst, x.availableAfter)
}

func (d *decoder) expiry(x *expiry) {
	x.bucketID = d.uvarint()
	x.credit = Credit(d.byte())
	x.expiresAt = d.varint()
	x.amount = d.varint()
	x.availableAfter = d.varint()
}

// expire replays an expiry: the bucket must be past its expiry with exactly
// the amount free.
func (r *replayed) expire() error {
	var x expiry
	r.d.expiry(&x)
	if err := r.d.done(); err != nil {
		return err
	}
	a := r.a
	i := a.bucketIndex(x.bucketID)
	if i < 0 || a.buckets[i].expiresAt > r.v.TimeNanos || a.buckets[i].free() != x.amount {
		return fmt.Errorf("%w: expiry of %d from bucket %d of %q", ErrReplay, x.amount, x.bucketID, a.id)
	}
	a.buckets[i].remaining -= x.amount
	a.expired += x.amount
	a.dropEmpty()
	r.availableAfter(x.availableAfter)
	return nil
}
