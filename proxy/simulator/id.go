package simulator

import (
	"hash/fnv"
	"math/rand/v2"
)

const base62Digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomIDLen is the number of random base62 characters after an ID's
// prefix: 20 characters carry about 119 bits, so IDs never collide in practice.
const randomIDLen = 20

// newRandomID returns prefix followed by randomIDLen random base62
// characters. It is safe for concurrent use (math/rand/v2's global source is).
func newRandomID(prefix string) string {
	b := make([]byte, len(prefix), len(prefix)+randomIDLen)
	copy(b, prefix)
	for range randomIDLen {
		b = append(b, base62Digits[rand.IntN(len(base62Digits))])
	}
	return string(b)
}

// newDerivedID returns prefix followed by 11 base62 characters derived from
// seed and n: the same inputs always give the same ID, so a streamed and a
// non-streamed reply to the same request carry the same tool IDs.
func newDerivedID(prefix, seed string, n int) string {
	h := fnv.New64a()
	h.Write([]byte(seed))
	h.Write([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
	v := h.Sum64()
	b := make([]byte, len(prefix), len(prefix)+11)
	copy(b, prefix)
	for range 11 {
		b = append(b, base62Digits[v%62])
		v /= 62
	}
	return string(b)
}
