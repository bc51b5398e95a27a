package proxy

import "unsafe"

// b2s views b as a string without copying. The string is valid only while b
// is neither changed nor reused: use it only for values that are consumed
// (copied, hashed, encoded) before that.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
