package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The record bodies and the checkpoint state are written with these few
// primitives: unsigned and signed varints, length-prefixed strings and single
// bytes. A decoder keeps the first error and returns zero values after it, so
// decoding code reads straight through and checks once at the end.

func appendUvarint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }
func appendVarint(dst []byte, v int64) []byte   { return binary.AppendVarint(dst, v) }
func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}
func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// maxDecodedString bounds one decoded string, so a corrupt length cannot make
// the decoder allocate without limit.
const maxDecodedString = 1 << 20

var errShortBody = errors.New("ledger: record body ends early")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShortBody)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShortBody)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail(errShortBody)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// bool reads a byte that must be 0 or 1: any other value is corruption.
func (d *decoder) bool() bool {
	switch b := d.byte(); b {
	case 0, 1:
		return b == 1
	default:
		d.fail(fmt.Errorf("ledger: boolean byte %d", b))
		return false
	}
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > maxDecodedString || n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("ledger: string of %d bytes exceeds the record", n))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

// done reports the first error, or an error if bytes are left over.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		return fmt.Errorf("ledger: %d unexpected bytes after the record body", len(d.b))
	}
	return d.err
}
