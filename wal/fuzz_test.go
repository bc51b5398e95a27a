package wal

import (
	"bytes"
	"testing"
)

// FuzzDecodeFrame: DecodeFrame never panics on arbitrary bytes, and a frame
// it accepts re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendFrame(nil, &Record{Kind: 7, Entry: true, TimeNanos: 5, Account: "acct", Body: []byte("body")}, 42))
	f.Add([]byte{FrameVersion, 1, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeFrame(b)
		if err != nil {
			return
		}
		again := appendFrame(nil, &Record{Kind: v.Kind, Entry: v.Entry, TimeNanos: v.TimeNanos, Account: string(v.Account), Body: v.Body}, v.Seq)
		if !bytes.Equal(again, b) {
			t.Fatalf("frame %x decodes to %+v, which encodes to %x", b, v, again)
		}
	})
}
