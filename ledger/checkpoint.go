package ledger

import (
	"fmt"
	"sort"
)

// stateVersion is the first byte of an encoded checkpoint state. Version 3
// adds each account's closing time and the disputes; version 2 states still
// load.
const stateVersion = 3

// Checkpoint stores the whole ledger state in the log at the current sequence
// number, so that the next start replays only the records after it, and lets
// the log compact the records it covers. It holds every lock while it copies
// the state into a buffer (operations wait for that long: about a millisecond
// per 10,000 accounts), and none while the log writes and syncs it.
func (l *Ledger) Checkpoint() (uint64, error) {
	if l.log == nil {
		return 0, nil
	}
	l.lockAll()
	seq := l.log.LastSeq()
	state := l.encodeStateLocked()
	l.unlockAll()
	if err := l.log.WriteCheckpoint(seq, state); err != nil {
		return 0, err
	}
	l.lastCheckpoint.Store(seq)
	return seq, nil
}

// RecordsSinceCheckpoint is how many records a replay would apply now.
func (l *Ledger) RecordsSinceCheckpoint() uint64 {
	if l.log == nil {
		return 0
	}
	return l.log.LastSeq() - l.lastCheckpoint.Load()
}

// lockAll takes every lock in the documented order.
func (l *Ledger) lockAll() {
	for i := range l.shards {
		l.shards[i].mu.Lock()
	}
	for i := range l.holds {
		l.holds[i].mu.Lock()
	}
	l.orders.Lock()
	l.idem.Lock()
	l.keys.RLock()
}

func (l *Ledger) unlockAll() {
	l.keys.RUnlock()
	l.idem.Unlock()
	l.orders.Unlock()
	for i := range l.holds {
		l.holds[i].mu.Unlock()
	}
	for i := range l.shards {
		l.shards[i].mu.Unlock()
	}
}

// encodeStateLocked writes the state in a deterministic order (sorted by ID)
// so that equal states encode to equal bytes; tests compare states that way.
//
// Layout: version byte, then
//
//	accounts: u count, each: s id, s email, v multiplier, v rpm, v tpm, v concurrency, b frozen,
//	          v createdAt, v debt, v held, v charged, v toppedUp, v adjusted, v expired,
//	          u lastBucketID, u bucket count, each bucket: u id, b credit, v expiresAt, v remaining, v earmarked,
//	          u key-spend count, each: s keyID, v windowStart, v spent
//	holds:    u count, each: s requestID, s account, s keyID, v amount, v startedAt,
//	          b spendTracked, u mark count, each mark: u bucket, v amount
//	orders:   u count, each: s orderID, u entryID, v time, s account, v amount, v availableAfter, s actor, b credit, v expiresAt
//	idem:     u count, each: s key, u entryID, v time, s account, v amount, v availableAfter, s reason, s requestID, s actor
//	keys:     u count, each: s id, s account, s hash, s name, s hint, key fields, b revoked, v createdAt
//
// REQUIRES: every lock held (lockAll).
func (l *Ledger) encodeStateLocked() []byte {
	buf := []byte{stateVersion}
	var accounts []*account
	for i := range l.shards {
		for _, a := range l.shards[i].mu.accounts {
			accounts = append(accounts, a)
		}
	}
	sort.Slice(accounts, func(i, j int) bool { return accounts[i].id < accounts[j].id })
	buf = appendUvarint(buf, uint64(len(accounts)))
	for _, a := range accounts {
		buf = appendAccountState(buf, a)
	}
	var holds []*hold
	for i := range l.holds {
		for _, h := range l.holds[i].mu.holds {
			holds = append(holds, h)
		}
	}
	sort.Slice(holds, func(i, j int) bool { return holds[i].requestID < holds[j].requestID })
	buf = appendUvarint(buf, uint64(len(holds)))
	for _, h := range holds {
		buf = appendHoldState(buf, h)
	}
	buf = appendUvarint(buf, uint64(len(l.orders.m)))
	for _, id := range sortedKeys(l.orders.m) {
		e := l.orders.m[id]
		buf = appendEntryHead(appendString(buf, id), &e)
		buf = appendString(buf, e.Actor)
		buf = append(buf, byte(e.Credit))
		buf = appendVarint(buf, e.ExpiresAtNanos)
	}
	buf = appendUvarint(buf, uint64(len(l.idem.m)))
	for _, id := range sortedKeys(l.idem.m) {
		e := l.idem.m[id]
		buf = appendEntryHead(appendString(buf, id), &e)
		buf = appendString(buf, e.Reason)
		buf = appendString(buf, e.RequestID)
		buf = appendString(buf, e.Actor)
	}
	buf = appendUvarint(buf, uint64(len(l.keys.byID)))
	for _, id := range sortedKeys(l.keys.byID) {
		buf = appendKeyState(buf, l.keys.byID[id])
	}
	buf = appendUvarint(buf, uint64(len(l.disputes.byID)))
	for _, id := range sortedKeys(l.disputes.byID) {
		buf = appendDisputeState(buf, l.disputes.byID[id])
	}
	return buf
}

// appendDisputeState writes a dispute whole.
func appendDisputeState(buf []byte, d *Dispute) []byte {
	buf = appendString(buf, d.AccountID)
	buf = appendString(buf, d.RequestID)
	buf = appendString(buf, d.Reason)
	buf = appendVarint(buf, d.FiledAt)
	buf = appendVarint(buf, d.ResolvedAt)
	return appendResolution(buf, d)
}

// appendAccountState writes an account whole: settings, totals, buckets
// and per-key spend.
func appendAccountState(buf []byte, a *account) []byte {
	buf = appendString(buf, a.id)
	buf = appendAccountFields(buf, a)
	buf = appendBool(buf, a.frozen)
	for _, v := range [...]int64{a.createdAt, a.debt, a.held, a.charged, a.toppedUp, a.adjusted, a.expired} {
		buf = appendVarint(buf, v)
	}
	buf = appendUvarint(buf, a.lastBucketID)
	buf = appendUvarint(buf, uint64(len(a.buckets)))
	for _, b := range a.buckets {
		buf = appendUvarint(buf, b.id)
		buf = append(buf, byte(b.credit))
		buf = appendVarint(buf, b.expiresAt)
		buf = appendVarint(buf, b.remaining)
		buf = appendVarint(buf, b.earmarked)
	}
	buf = appendUvarint(buf, uint64(len(a.keySpend)))
	for _, id := range sortedKeys(a.keySpend) {
		ks := a.keySpend[id]
		buf = appendString(buf, id)
		buf = appendVarint(buf, ks.windowStart)
		buf = appendVarint(buf, ks.spent)
	}
	return appendVarint(buf, a.closedAt)
}

// appendHoldState writes an open hold with its earmarks.
func appendHoldState(buf []byte, h *hold) []byte {
	buf = appendString(buf, h.requestID)
	buf = appendString(buf, h.account.id)
	buf = appendString(buf, h.keyID)
	buf = appendVarint(buf, h.amount)
	buf = appendVarint(buf, h.startedAt)
	buf = appendBool(buf, h.spendTracked)
	buf = appendUvarint(buf, uint64(len(h.marks)))
	for _, m := range h.marks {
		buf = appendUvarint(buf, m.bucket)
		buf = appendVarint(buf, m.amount)
	}
	return buf
}

// appendKeyState writes a key whole (its hash, never a secret).
func appendKeyState(buf []byte, k *Key) []byte {
	buf = appendString(buf, k.ID)
	buf = appendString(buf, k.AccountID)
	buf = appendString(buf, string(k.Hash[:]))
	buf = appendString(buf, k.Name)
	buf = appendString(buf, k.Hint)
	buf = appendKeyFields(buf, k)
	buf = appendBool(buf, k.Revoked)
	return appendVarint(buf, k.CreatedAtNanos)
}

// appendEntryHead writes the fields every remembered entry (orders and
// idempotency keys) has: ID, time, account, amount, available after.
func appendEntryHead(buf []byte, e *Entry) []byte {
	buf = appendUvarint(buf, e.ID)
	buf = appendVarint(buf, e.TimeNanos)
	buf = appendString(buf, e.Account)
	buf = appendVarint(buf, e.Amount)
	return appendVarint(buf, e.AvailableAfter)
}

func (d *decoder) entryHead(e *Entry) {
	e.ID, e.TimeNanos, e.Account, e.Amount, e.AvailableAfter = d.uvarint(), d.varint(), d.string(), d.varint(), d.varint()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// maxStateItems bounds each count in a decoded state, so a corrupt count
// cannot make decoding allocate without limit.
const maxStateItems = 1 << 32

// decodeState loads an encoded state into an empty ledger.
func (l *Ledger) decodeState(state []byte) error {
	d := decoder{b: state}
	version := d.byte()
	if version != 2 && version != stateVersion {
		return fmt.Errorf("ledger: unknown state version %d", version)
	}
	byID := map[string]*account{}
	for range d.count() {
		a := d.accountState(version)
		byID[a.id] = a
		a.shard = l.shardOf(a.id)
		a.shard.mu.accounts[a.id] = a
	}
	for range d.count() {
		h, accountID := d.holdState()
		if d.err != nil {
			break
		}
		if h.account = byID[accountID]; h.account == nil {
			return fmt.Errorf("ledger: hold %q of unknown account %q", h.requestID, accountID)
		}
		h.account.openHolds++
		openHolds.Inc()
		if h.spendTracked {
			h.account.spendOf(h.keyID).reserved += h.amount
		}
		l.holdShardOf(h.requestID).mu.holds[h.requestID] = h
	}
	for range d.count() {
		id := d.string()
		e := Entry{Kind: EntryTopUp, OrderID: id}
		d.entryHead(&e)
		e.Actor, e.Credit, e.ExpiresAtNanos = d.string(), Credit(d.byte()), d.varint()
		l.orders.m[id] = e
	}
	for range d.count() {
		id := d.string()
		e := Entry{Kind: EntryAdjust, IdempotencyKey: id}
		d.entryHead(&e)
		e.Reason, e.RequestID, e.Actor = d.string(), d.string(), d.string()
		l.idem.m[id] = e
	}
	for range d.count() {
		k := d.keyState()
		l.keys.byID[k.ID] = k
		l.keys.byHash[k.Hash] = k
	}
	if version >= 3 {
		for range d.count() {
			disp := &Dispute{AccountID: d.string(), RequestID: d.string(), Reason: d.string(), FiledAt: d.varint(), ResolvedAt: d.varint()}
			d.resolution(disp)
			l.disputes.add(disp)
		}
	}
	return d.done()
}

// count reads the number of items that follow, failing the decoder when it
// is more than the bytes left could hold (so a corrupt count cannot make
// decoding allocate without limit).
func (d *decoder) count() uint64 {
	n := d.uvarint()
	if n > maxStateItems || n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("ledger: state count %d exceeds the state", n))
		return 0
	}
	return n
}

// accountState reads what appendAccountState wrote in state version.
func (d *decoder) accountState(version byte) *account {
	a := &account{id: d.string()}
	d.accountFields(a)
	a.frozen = d.bool()
	for _, p := range [...]*int64{&a.createdAt, &a.debt, &a.held, &a.charged, &a.toppedUp, &a.adjusted, &a.expired} {
		*p = d.varint()
	}
	a.lastBucketID = d.uvarint()
	for range d.count() {
		a.buckets = append(a.buckets, bucket{id: d.uvarint(), credit: Credit(d.byte()), expiresAt: d.varint(), remaining: d.varint(), earmarked: d.varint()})
	}
	for range d.count() {
		ks := a.spendOf(d.string())
		ks.windowStart, ks.spent = d.varint(), d.varint()
	}
	if version >= 3 {
		a.closedAt = d.varint()
	}
	return a
}

// holdState reads what appendHoldState wrote, and the hold's account ID.
func (d *decoder) holdState() (*hold, string) {
	h := &hold{requestID: d.string()}
	accountID := d.string()
	h.keyID = d.string()
	h.amount = d.varint()
	h.startedAt = d.varint()
	h.spendTracked = d.bool()
	for range d.count() {
		h.marks = append(h.marks, mark{bucket: d.uvarint(), amount: d.varint()})
	}
	return h, accountID
}

// keyState reads what appendKeyState wrote.
func (d *decoder) keyState() *Key {
	k := &Key{ID: d.string(), AccountID: d.string()}
	copy(k.Hash[:], d.bytes())
	k.Name = d.string()
	k.Hint = d.string()
	d.keyFields(k)
	k.Revoked = d.bool()
	k.CreatedAtNanos = d.varint()
	return k
}
