package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// FrameVersion is the version byte of every record frame this code writes.
// Existing versions are never changed; a new layout gets a new version and
// the decoder keeps reading the old ones.
const FrameVersion = 1

// MaxBodyBytes bounds the body of one record. Ledger records are small (a call
// record is a few hundred bytes); the bound stops a bug from writing a frame
// that replay would refuse.
const MaxBodyBytes = 1 << 20

// MaxAccountBytes bounds the account ID carried by a record.
const MaxAccountBytes = 255

// MaxRequestIDBytes bounds the request ID of a call record.
const MaxRequestIDBytes = 255

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt reports a record frame that fails its checks (version, length,
// checksum). The error wrapping it names the key.
var ErrCorrupt = errors.New("wal: corrupt record")

// Record is one operation as handed to [Log.Append]. The body is opaque to the
// log: the ledger documents its layouts per kind.
type Record struct {
	// Kind names the operation; the log only stores it.
	Kind uint8
	// Entry marks a record that belongs to Account's entry list and is also
	// stored under the account (see keys.go).
	Entry bool
	// TimeNanos is the operation's time in Unix nanoseconds.
	TimeNanos int64
	// Account is the account the operation touches, or "".
	Account string
	// Body is the kind-specific payload. Append copies it.
	Body []byte
	// RequestID, when set, marks a record that carries the call record of
	// that request: it is also stored in the call indexes (see keys.go).
	RequestID string
}

// Frame layout (all integers big endian):
//
//	offset  size      field
//	0       1         version (FrameVersion)
//	1       1         kind
//	2       1         flags (bit 0: entry)
//	3       8         sequence number
//	11      8         time, Unix nanoseconds
//	19      1         account length n (0..255)
//	20      n         account
//	20+n    4         body length m
//	24+n    m         body
//	24+n+m  4         CRC-32C (Castagnoli) of bytes [0, 24+n+m)
//
// The checksum is verified on every read, so a torn or bit-flipped value is
// reported as [ErrCorrupt] rather than applied.
const (
	frameHeaderBytes = 20
	flagEntry        = 1
)

// appendFrame appends r's frame with sequence number seq to dst.
func appendFrame(dst []byte, r *Record, seq uint64) []byte {
	if len(r.Account) > MaxAccountBytes {
		panic(fmt.Sprintf("BUG: account ID of %d bytes exceeds %d", len(r.Account), MaxAccountBytes))
	}
	if len(r.Body) > MaxBodyBytes {
		panic(fmt.Sprintf("BUG: record body of %d bytes exceeds %d", len(r.Body), MaxBodyBytes))
	}
	start := len(dst)
	var flags byte
	if r.Entry {
		flags |= flagEntry
	}
	dst = append(dst, FrameVersion, r.Kind, flags)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.TimeNanos))
	dst = append(dst, byte(len(r.Account)))
	dst = append(dst, r.Account...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(r.Body)))
	dst = append(dst, r.Body...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// RecordView is a decoded frame. Account and Body are views into memory owned
// by whoever produced the view: they are valid only until the callback that
// received the view returns.
type RecordView struct {
	Kind      uint8
	Entry     bool
	Seq       uint64
	TimeNanos int64
	Account   []byte
	Body      []byte
}

// DecodeFrame checks and decodes one frame. It never allocates; the view
// points into frame.
func DecodeFrame(frame []byte) (RecordView, error) {
	var v RecordView
	if len(frame) < frameHeaderBytes+4+4 {
		return v, fmt.Errorf("%w: frame of %d bytes is too short", ErrCorrupt, len(frame))
	}
	if frame[0] != FrameVersion {
		return v, fmt.Errorf("%w: unknown frame version %d", ErrCorrupt, frame[0])
	}
	n := int(frame[19])
	if len(frame) < frameHeaderBytes+n+4+4 {
		return v, fmt.Errorf("%w: frame of %d bytes too short for account of %d", ErrCorrupt, len(frame), n)
	}
	m := int(binary.BigEndian.Uint32(frame[frameHeaderBytes+n:]))
	if m > MaxBodyBytes || len(frame) != frameHeaderBytes+n+4+m+4 {
		return v, fmt.Errorf("%w: frame of %d bytes does not match body length %d", ErrCorrupt, len(frame), m)
	}
	end := len(frame) - 4
	if got, want := crc32.Checksum(frame[:end], castagnoli), binary.BigEndian.Uint32(frame[end:]); got != want {
		return v, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	v.Kind = frame[1]
	v.Entry = frame[2]&flagEntry != 0
	v.Seq = binary.BigEndian.Uint64(frame[3:])
	v.TimeNanos = int64(binary.BigEndian.Uint64(frame[11:]))
	v.Account = frame[frameHeaderBytes : frameHeaderBytes+n]
	v.Body = frame[frameHeaderBytes+n+4 : end]
	return v, nil
}
