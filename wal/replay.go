package wal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/cockroachdb/pebble/v2"
)

// Replay calls fn for every record with a sequence number above after, in
// sequence order. The view is valid only during the call. It stops at the
// first error, which it returns wrapped.
func (l *Log) Replay(after uint64, fn func(v RecordView) error) error {
	lower := appendRecordKey(nil, after+1)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{prefixRecord + 1}})
	if err != nil {
		return fmt.Errorf("cannot iterate records: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := DecodeFrame(it.Value())
		if err != nil {
			return fmt.Errorf("cannot decode record at key %x: %w", it.Key(), err)
		}
		if want := binary.BigEndian.Uint64(it.Key()[1:]); v.Seq != want {
			return fmt.Errorf("%w: record at key %x carries sequence number %d", ErrCorrupt, it.Key(), v.Seq)
		}
		if err := fn(v); err != nil {
			return fmt.Errorf("cannot apply record %d: %w", v.Seq, err)
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("cannot iterate records: %w", err)
	}
	return nil
}

// Entries calls fn for the entry records of account, newest first, starting
// below the sequence number before (0: from the newest), for at most limit
// records. It reports whether older entries remain. Entries are kept when
// checkpoints compact the sequence-ordered records.
func (l *Log) Entries(account string, before uint64, limit int, fn func(v RecordView) error) (more bool, err error) {
	lower := appendEntryKey(nil, account, 0)
	upper := append(append([]byte{prefixEntry}, account...), 1)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return false, fmt.Errorf("cannot iterate entries: %w", err)
	}
	defer it.Close()
	var ok bool
	if before == 0 {
		ok = it.Last()
	} else {
		ok = it.SeekLT(appendEntryKey(nil, account, before))
	}
	for n := 0; ok; ok, n = it.Prev(), n+1 {
		if n == limit {
			return true, nil
		}
		v, err := DecodeFrame(it.Value())
		if err != nil {
			return false, fmt.Errorf("cannot decode entry at key %x: %w", it.Key(), err)
		}
		if err := fn(v); err != nil {
			return false, err
		}
	}
	if err := it.Error(); err != nil {
		return false, fmt.Errorf("cannot iterate entries: %w", err)
	}
	return false, nil
}

// AllEntries calls fn for every entry record of every account, grouped by
// account and in sequence order within one. Offline checks use it to verify
// that the entries agree with the replayed state.
func (l *Log) AllEntries(fn func(v RecordView) error) error {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixEntry}, UpperBound: []byte{prefixEntry + 1}})
	if err != nil {
		return fmt.Errorf("cannot iterate entries: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := DecodeFrame(it.Value())
		if err != nil {
			return fmt.Errorf("cannot decode entry at key %x: %w", it.Key(), err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return it.Error()
}

// checkpointChunkBytes is the size of one stored checkpoint chunk; large
// states are split so that no single value is huge.
const checkpointChunkBytes = 1 << 20

type manifest struct {
	seq      uint64
	chunks   uint32
	totalLen uint64
	crc      uint32
}

func (l *Log) readManifest() (manifest, bool, error) {
	var m manifest
	val, closer, err := l.db.Get(manifestKey)
	if err == pebble.ErrNotFound {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("cannot read checkpoint manifest: %w", err)
	}
	defer closer.Close()
	if len(val) != 24 {
		return m, false, fmt.Errorf("%w: checkpoint manifest of %d bytes", ErrCorrupt, len(val))
	}
	m.seq = binary.BigEndian.Uint64(val)
	m.chunks = binary.BigEndian.Uint32(val[8:])
	m.totalLen = binary.BigEndian.Uint64(val[12:])
	m.crc = binary.BigEndian.Uint32(val[20:])
	return m, true, nil
}

// WriteCheckpoint stores state as the checkpoint at sequence number seq: the
// state after applying every record up to and including seq. It first waits
// until seq is synced, so that the checkpoint never holds an operation whose
// own record could still be lost; then, in one synced batch, it writes the
// chunks and the manifest, deletes the previous checkpoint and deletes the
// sequence-ordered records the checkpoint covers (their entry copies stay).
func (l *Log) WriteCheckpoint(seq uint64, state []byte) error {
	if err := l.WaitSynced(seq); err != nil {
		return fmt.Errorf("cannot sync before checkpoint %d: %w", seq, err)
	}
	prev, hadPrev, err := l.readManifest()
	if err != nil {
		return err
	}
	if hadPrev && prev.seq > seq {
		return fmt.Errorf("cannot write checkpoint %d older than the stored checkpoint %d", seq, prev.seq)
	}
	b := l.db.NewBatch()
	defer b.Close()
	if hadPrev {
		if err := b.DeleteRange(appendCheckpointKey(nil, prev.seq, 0), appendCheckpointKey(nil, prev.seq+1, 0), nil); err != nil {
			return fmt.Errorf("cannot delete checkpoint %d: %w", prev.seq, err)
		}
	}
	var chunks uint32
	for off := 0; off < len(state) || chunks == 0; off += checkpointChunkBytes {
		end := min(off+checkpointChunkBytes, len(state))
		if err := b.Set(appendCheckpointKey(nil, seq, chunks), state[off:end], nil); err != nil {
			return fmt.Errorf("cannot stage checkpoint chunk: %w", err)
		}
		chunks++
	}
	var mv [24]byte
	binary.BigEndian.PutUint64(mv[:], seq)
	binary.BigEndian.PutUint32(mv[8:], chunks)
	binary.BigEndian.PutUint64(mv[12:], uint64(len(state)))
	binary.BigEndian.PutUint32(mv[20:], crc32.Checksum(state, castagnoli))
	if err := b.Set(manifestKey, mv[:], nil); err != nil {
		return fmt.Errorf("cannot stage checkpoint manifest: %w", err)
	}
	upto := seq
	if keep := l.retention.Load(); keep != nil {
		upto = min(upto, (*keep)())
	}
	if err := b.DeleteRange(appendRecordKey(nil, 0), appendRecordKey(nil, upto+1), nil); err != nil {
		return fmt.Errorf("cannot compact records up to %d: %w", upto, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		l.fail(fmt.Errorf("cannot commit checkpoint %d: %w", seq, err))
		return l.Err()
	}
	return nil
}

// SetRetention makes checkpoints keep the records after keep() (the last
// record a reader of the log has consumed, such as the notifications'
// cursor) as well as those after the checkpoint; Replay of the ledger
// still starts at the checkpoint.
func (l *Log) SetRetention(keep func() uint64) { l.retention.Store(&keep) }

// LoadCheckpoint returns the latest checkpoint, if any: its sequence number
// and the state stored with it, verified against the manifest's checksum.
func (l *Log) LoadCheckpoint() (seq uint64, state []byte, ok bool, err error) {
	m, ok, err := l.readManifest()
	if err != nil || !ok {
		return 0, nil, false, err
	}
	state = make([]byte, 0, m.totalLen)
	it, err := l.db.NewIter(&pebble.IterOptions{
		LowerBound: appendCheckpointKey(nil, m.seq, 0),
		UpperBound: appendCheckpointKey(nil, m.seq+1, 0),
	})
	if err != nil {
		return 0, nil, false, fmt.Errorf("cannot read checkpoint %d: %w", m.seq, err)
	}
	defer it.Close()
	var n uint32
	for valid := it.First(); valid; valid = it.Next() {
		if got := binary.BigEndian.Uint32(it.Key()[9:]); got != n {
			return 0, nil, false, fmt.Errorf("%w: checkpoint %d chunk %d where %d was expected", ErrCorrupt, m.seq, got, n)
		}
		state = append(state, it.Value()...)
		n++
	}
	if err := it.Error(); err != nil {
		return 0, nil, false, fmt.Errorf("cannot read checkpoint %d: %w", m.seq, err)
	}
	if n != m.chunks || uint64(len(state)) != m.totalLen || crc32.Checksum(state, castagnoli) != m.crc {
		return 0, nil, false, fmt.Errorf("%w: checkpoint %d does not match its manifest", ErrCorrupt, m.seq)
	}
	return m.seq, state, true, nil
}
