package access

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argon2id's parameters: OWASP's Password Storage Cheat Sheet's first
// configuration (19 MiB, 2 passes, 1 lane), about 30 ms on one core here.
// They are written into each hash (PHC form), so raising them later keeps
// old hashes verifiable.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Passwords are 10 to 256 bytes: long enough to mean something, short
// enough that hashing one is bounded.
const (
	minPasswordBytes = 10
	maxPasswordBytes = 256
)

// hashing bounds the argon2id computations at once (each takes 19 MiB), so
// a flood of sign-ins costs at most hashSlots × 19 MiB.
const hashSlots = 4

var hashing = make(chan struct{}, hashSlots)

// CheckPassword says what is wrong with a new password, if anything.
func CheckPassword(pw string) error {
	if len(pw) < minPasswordBytes || len(pw) > maxPasswordBytes {
		return fmt.Errorf("%w: a password has %d to %d characters", ErrInvalid, minPasswordBytes, maxPasswordBytes)
	}
	return nil
}

// HashPassword returns pw's argon2id hash in PHC form
// ($argon2id$v=19$m=...,t=...,p=...$salt$key).
func HashPassword(pw string) string {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key := derive(pw, salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key))
}

// VerifyPassword reports whether pw matches hash (a HashPassword result).
func VerifyPassword(hash, pw string) bool {
	if len(pw) > maxPasswordBytes {
		return false
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var memory, time uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &time, &threads); err != nil || memory > 1<<20 || time > 16 || threads == 0 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := derive(pw, salt, time, memory, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// WasteHash spends what verifying a password costs, so an unknown email
// takes as long to refuse as a wrong password.
func WasteHash(pw string) {
	derive(pw, make([]byte, argonSaltLen), argonTime, argonMemory, argonThreads, argonKeyLen)
}

func derive(pw string, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	hashing <- struct{}{}
	defer func() { <-hashing }()
	return argon2.IDKey([]byte(pw), salt, time, memory, threads, keyLen)
}
