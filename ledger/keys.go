package ledger

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MaxKeyModels bounds a key's model allow-list.
const MaxKeyModels = 256

// Key is an API key's record. The secret itself is never stored: only its
// SHA-256 hash. A *Key returned by the ledger is an immutable snapshot: a
// change replaces it, so callers may read it without locks.
type Key struct {
	ID        string
	AccountID string
	Hash      [32]byte
	Name      string
	// Hint is the display form of the secret ("tg-…abcd").
	Hint   string
	Limits Limits
	// SpendLimit bounds what the key may spend per SpendPeriod (0: no limit).
	SpendLimit  int64
	SpendPeriod time.Duration
	// ExpiresAtNanos is when the key stops working (0: never).
	ExpiresAtNanos int64
	// Models is the allow-list of models (empty: all).
	Models         []string
	Revoked        bool
	CreatedAtNanos int64
}

// KeyPatch changes a key's settings; nil fields stay as they are.
type KeyPatch struct {
	Name           *string
	Limits         *Limits
	SpendLimit     *int64
	SpendPeriod    *time.Duration
	ExpiresAtNanos *int64
	Models         *[]string
}

// Check checks k's ID and settings as CreateKey does.
func (k *Key) Check() error {
	return errors.Join(ValidID("key ID", k.ID), validKey(k))
}

// ApplyTo changes k's settings that p sets.
func (p KeyPatch) ApplyTo(k *Key) {
	if p.Name != nil {
		k.Name = *p.Name
	}
	if p.Limits != nil {
		k.Limits = *p.Limits
	}
	if p.SpendLimit != nil {
		k.SpendLimit = *p.SpendLimit
	}
	if p.SpendPeriod != nil {
		k.SpendPeriod = *p.SpendPeriod
	}
	if p.ExpiresAtNanos != nil {
		k.ExpiresAtNanos = *p.ExpiresAtNanos
	}
	if p.Models != nil {
		k.Models = slices.Clone(*p.Models)
	}
}

func validKey(k *Key) error {
	err := errors.Join(ValidText("name", k.Name), ValidText("hint", k.Hint), validLimits(k.Limits))
	if k.SpendLimit < 0 || k.SpendPeriod < 0 || k.ExpiresAtNanos < 0 {
		err = errors.Join(err, fmt.Errorf("%w: spend limit, spend period and expiry must not be negative", ErrInvalid))
	}
	if len(k.Models) > MaxKeyModels {
		err = errors.Join(err, fmt.Errorf("%w: at most %d models", ErrInvalid, MaxKeyModels))
	}
	for _, m := range k.Models {
		err = errors.Join(err, ValidText("model", m))
	}
	return err
}

func appendKeyFields(dst []byte, k *Key) []byte {
	dst = appendVarint(dst, k.Limits.RPM)
	dst = appendVarint(dst, k.Limits.TPM)
	dst = appendVarint(dst, k.Limits.Concurrency)
	dst = appendVarint(dst, k.SpendLimit)
	dst = appendVarint(dst, int64(k.SpendPeriod))
	dst = appendVarint(dst, k.ExpiresAtNanos)
	dst = appendUvarint(dst, uint64(len(k.Models)))
	for _, m := range k.Models {
		dst = appendString(dst, m)
	}
	return dst
}

func (d *decoder) keyFields(k *Key) {
	k.Limits.RPM = d.varint()
	k.Limits.TPM = d.varint()
	k.Limits.Concurrency = d.varint()
	k.SpendLimit = d.varint()
	k.SpendPeriod = time.Duration(d.varint())
	k.ExpiresAtNanos = d.varint()
	n := d.uvarint()
	if n > MaxKeyModels {
		d.fail(fmt.Errorf("ledger: key lists %d models", n))
		return
	}
	k.Models = nil
	for range n {
		k.Models = append(k.Models, d.string())
	}
}

// CreateKey stores a new API key for an existing account and returns once it
// is synced. k.CreatedAtNanos and k.Revoked are set by the ledger.
func (l *Ledger) CreateKey(k Key) (*Key, error) { return l.CreateKeyWithin(k, KeyQuota{}) }

// KeyQuota bounds the keys an account may have when one is created: Active
// counts keys not revoked and not expired, Made every key it ever had
// (0: no bound).
type KeyQuota struct {
	Active, Made int
}

// Check refuses a new key for an account that has keys of its own
// already, at its quota's bounds (checked where keys are created, under
// the account's lock, so concurrent creations cannot pass it together).
func (q KeyQuota) Check(keys []*Key, now int64) error {
	active := 0
	for _, k := range keys {
		if !k.Revoked && (k.ExpiresAtNanos == 0 || k.ExpiresAtNanos > now) {
			active++
		}
	}
	switch {
	case q.Made > 0 && len(keys) >= q.Made:
		return fmt.Errorf("%w: the account has made %d keys, revoked ones included", ErrKeyQuota, len(keys))
	case q.Active > 0 && active >= q.Active:
		return fmt.Errorf("%w: the account has %d active keys; revoke one first", ErrKeyQuota, active)
	}
	return nil
}

// CreateKeyWithin creates a key as CreateKey does, unless the account is
// at q's bounds (ErrKeyQuota).
func (l *Ledger) CreateKeyWithin(k Key, q KeyQuota) (*Key, error) {
	if err := k.Check(); err != nil {
		return nil, err
	}
	k.Models = slices.Clone(k.Models)
	k.Revoked = false
	s := l.shardOf(k.AccountID)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch a := s.mu.accounts[k.AccountID]; {
	case a == nil:
		return nil, fmt.Errorf("%w: %q", ErrUnknownAccount, k.AccountID)
	case a.closedAt != 0:
		return nil, fmt.Errorf("%w: %q takes no new keys", ErrAccountClosed, k.AccountID)
	}
	if q != (KeyQuota{}) {
		// Counted under the read lock, so calls' key lookups go on: the
		// account's keys cannot change meanwhile, every change of them
		// holding its shard's lock, as this does.
		l.keys.RLock()
		mine := l.keysOfLocked(k.AccountID)
		l.keys.RUnlock()
		if err := q.Check(mine, l.now()); err != nil {
			return nil, err
		}
	}
	l.keys.Lock()
	if l.keys.byID[k.ID] != nil || l.keys.byHash[k.Hash] != nil {
		l.keys.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrKeyExists, k.ID)
	}
	k.CreatedAtNanos = l.now()
	kp := &k
	l.keys.byID[k.ID] = kp
	l.keys.byHash[k.Hash] = kp
	body := appendString(s.mu.scratch[:0], k.ID)
	body = appendString(body, string(k.Hash[:]))
	body = appendString(body, k.Name)
	body = appendString(body, k.Hint)
	body = appendKeyFields(body, kp)
	s.mu.scratch = body
	seq := l.appendLocked(kindKeyCreate, k.AccountID, k.CreatedAtNanos, body)
	l.keys.Unlock()
	return kp, l.waitSyncedUnlocking(s, seq)
}

// waitSyncedUnlocking releases s.mu (the caller's deferred Unlock must then
// not run twice, so it re-locks) and waits for seq.
func (l *Ledger) waitSyncedUnlocking(s *shard, seq uint64) error {
	s.mu.Unlock()
	err := l.waitSynced(seq)
	s.mu.Lock()
	return err
}

// UpdateKey applies p to the key and returns the new snapshot once synced.
func (l *Ledger) UpdateKey(id string, p KeyPatch) (*Key, error) {
	cur := l.Key(id)
	if cur == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, id)
	}
	s := l.shardOf(cur.AccountID)
	s.mu.Lock()
	defer s.mu.Unlock()
	l.keys.Lock()
	cur = l.keys.byID[id]
	k := *cur
	p.ApplyTo(&k)
	if err := validKey(&k); err != nil {
		l.keys.Unlock()
		return nil, err
	}
	kp := &k
	l.keys.byID[id] = kp
	l.keys.byHash[k.Hash] = kp
	body := appendString(s.mu.scratch[:0], k.ID)
	body = appendString(body, k.Name)
	body = appendKeyFields(body, kp)
	s.mu.scratch = body
	seq := l.appendLocked(kindKeyUpdate, k.AccountID, l.now(), body)
	l.keys.Unlock()
	return kp, l.waitSyncedUnlocking(s, seq)
}

// RevokeKey revokes the key from the next lookup on and returns once synced.
// Revoking a revoked key is a no-op.
func (l *Ledger) RevokeKey(id string) error {
	cur := l.Key(id)
	if cur == nil {
		return fmt.Errorf("%w: %q", ErrUnknownKey, id)
	}
	s := l.shardOf(cur.AccountID)
	s.mu.Lock()
	defer s.mu.Unlock()
	l.keys.Lock()
	cur = l.keys.byID[id]
	if cur.Revoked {
		l.keys.Unlock()
		return nil
	}
	k := *cur
	k.Revoked = true
	l.keys.byID[id] = &k
	l.keys.byHash[k.Hash] = &k
	body := appendString(s.mu.scratch[:0], id)
	s.mu.scratch = body
	seq := l.appendLocked(kindKeyRevoke, k.AccountID, l.now(), body)
	l.keys.Unlock()
	return l.waitSyncedUnlocking(s, seq)
}

// KeyByHash returns the key whose secret hashes to h, revoked or not, or nil.
func (l *Ledger) KeyByHash(h [32]byte) *Key {
	l.keys.RLock()
	k := l.keys.byHash[h]
	l.keys.RUnlock()
	return k
}

// Key returns the key with that ID, or nil.
func (l *Ledger) Key(id string) *Key {
	l.keys.RLock()
	k := l.keys.byID[id]
	l.keys.RUnlock()
	return k
}

// Keys returns the account's keys, oldest first.
func (l *Ledger) Keys(accountID string) []*Key {
	l.keys.RLock()
	out := l.keysOfLocked(accountID)
	l.keys.RUnlock()
	slices.SortFunc(out, func(a, b *Key) int {
		if a.CreatedAtNanos != b.CreatedAtNanos {
			return int(a.CreatedAtNanos - b.CreatedAtNanos)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// keysOfLocked lists accountID's keys (l.keys held, read or write).
func (l *Ledger) keysOfLocked(accountID string) []*Key {
	var out []*Key
	for _, k := range l.keys.byID {
		if k.AccountID == accountID {
			out = append(out, k)
		}
	}
	return out
}

// keyCreate replays a new key.
func (r *replayed) keyCreate() error {
	k := &Key{AccountID: string(r.v.Account), CreatedAtNanos: r.v.TimeNanos}
	k.ID = r.d.string()
	copy(k.Hash[:], r.d.bytes())
	k.Name = r.d.string()
	k.Hint = r.d.string()
	r.d.keyFields(k)
	if err := r.d.done(); err != nil {
		return err
	}
	l := r.l
	l.keys.Lock()
	l.keys.byID[k.ID] = k
	l.keys.byHash[k.Hash] = k
	l.keys.Unlock()
	return nil
}

// keyChange replays a key's update or revocation.
func (r *replayed) keyChange() error {
	l := r.l
	id := r.d.string()
	l.keys.Lock()
	defer l.keys.Unlock()
	cur := l.keys.byID[id]
	if cur == nil {
		return fmt.Errorf("%w: unknown key %q", ErrReplay, id)
	}
	k := *cur
	if recordKind(r.v.Kind) == kindKeyUpdate {
		k.Name = r.d.string()
		r.d.keyFields(&k)
	} else {
		k.Revoked = true
	}
	l.keys.byID[id] = &k
	l.keys.byHash[k.Hash] = &k
	return nil
}
