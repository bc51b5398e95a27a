package wal

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Durable state that is not money: who may operate the gateway (operators,
// their API tokens, console users and sessions) and the notifications'
// outbox. It is not a record: it is neither replayed into the ledger nor
// checkpointed, just kept, synced, so a change is durable once SetState or
// SetStates returns and a crash leaves each write whole.

// MaxStateBytes bounds one state value.
const MaxStateBytes = 64 << 10

// SetState stores value under name (durably, synced); a nil value deletes
// it.
func (l *Log) SetState(name string, value []byte) error {
	if len(value) > MaxStateBytes {
		return fmt.Errorf("wal: state %q of %d bytes exceeds %d", name, len(value), MaxStateBytes)
	}
	key := append([]byte{prefixState}, name...)
	var err error
	if value == nil {
		err = l.db.Delete(key, pebble.Sync)
	} else {
		err = l.db.Set(key, value, pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("cannot store state %q: %w", name, err)
	}
	return nil
}

// State is one name and value of SetStates (a nil value deletes the name).
type State struct {
	Name  string
	Value []byte
}

// SetStates stores every state in one synced batch: all of them or none.
func (l *Log) SetStates(states ...State) error {
	b := l.db.NewBatch()
	defer b.Close()
	for _, st := range states {
		if len(st.Value) > MaxStateBytes {
			return fmt.Errorf("wal: state %q of %d bytes exceeds %d", st.Name, len(st.Value), MaxStateBytes)
		}
		key := append([]byte{prefixState}, st.Name...)
		var err error
		if st.Value == nil {
			err = b.Delete(key, nil)
		} else {
			err = b.Set(key, st.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("cannot stage state %q: %w", st.Name, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("cannot store states: %w", err)
	}
	return nil
}

// States calls fn with every state whose name starts with prefix, in name
// order; the value is valid only during the call.
func (l *Log) States(prefix string, fn func(name string, value []byte) error) error {
	lower := append([]byte{prefixState}, prefix...)
	upper := append([]byte{prefixState}, prefix...)
	upper = append(upper, 0xff)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("cannot read states: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(string(it.Key()[1:]), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}
