// Package ids makes the identifiers both APIs hand out: request IDs (cheap
// and unguessable, one per request on the hot path), platform key secrets
// and random object IDs (from crypto/rand), and the hash keys are stored
// and looked up by.
package ids

import (
	crand "crypto/rand"
	"crypto/sha256"
	"math/rand/v2"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// requestIDChars is the random part of a request ID: 22 base62 characters,
// about 131 bits from math/rand/v2's per-thread ChaCha8 (cheap, unguessable,
// no allocation).
const requestIDChars = 22

// AppendRequestID appends a new request ID ("req_" + 22 base62 characters).
func AppendRequestID(dst []byte) []byte {
	dst = append(dst, "req_"...)
	for i := 0; i < requestIDChars; {
		v := rand.Uint64()
		for j := 0; j < 10 && i < requestIDChars; j++ {
			dst = append(dst, base62[v%62])
			v /= 62
			i++
		}
	}
	return dst
}

// keySecretChars is the random part of a platform key: 43 base62 characters,
// about 256 bits from crypto/rand (the contract asks for at least 40).
const keySecretChars = 43

// keyPrefix starts every platform key.
const keyPrefix = "tg-"

// NewKeySecret returns a new platform key: "tg-" and 43 base62 characters
// drawn without modulo bias.
func NewKeySecret() string {
	return keyPrefix + RandomBase62(keySecretChars)
}

// RandomBase62 returns n base62 characters from crypto/rand, rejecting bytes
// above the largest multiple of 62 so every character is equally likely.
func RandomBase62(n int) string {
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		if _, err := crand.Read(buf[:]); err != nil {
			panic("BUG: crypto/rand failed: " + err.Error())
		}
		for _, b := range buf {
			if b < 248 && len(out) < n { // 248 = 4*62
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out)
}

// HashKey is how keys are stored and looked up: SHA-256 of the secret. The
// secrets carry 256 bits of randomness, so a fast unsalted hash is enough.
func HashKey(secret []byte) [32]byte { return sha256.Sum256(secret) }

// KeyHint is the displayable form of a key: "tg-…" and its last 4 characters.
func KeyHint(secret string) string {
	return keyPrefix + "…" + secret[len(secret)-4:]
}
