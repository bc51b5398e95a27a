package access

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

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
// a flood of sign-ins costs at most hashSlots × 19 MiB; one that cannot
// get a slot within hashWait gives up with ErrBusy rather than queue.
const (
	hashSlots = 4
	hashWait  = 5 * time.Second
)

var hashing = make(chan struct{}, hashSlots)

// ErrBusy is a password not hashed because every slot stayed taken.
var ErrBusy = errors.New("access: too many sign-ins at once; try again shortly")

// CheckPassword says what is wrong with a new password, if anything.
func CheckPassword(pw string) error {
	if len(pw) < minPasswordBytes || len(pw) > maxPasswordBytes {
		return fmt.Errorf("%w: a password has %d to %d characters", ErrInvalid, minPasswordBytes, maxPasswordBytes)
	}
	return nil
}

// HashPassword returns pw's argon2id hash in PHC form
// ($argon2id$v=19$m=...,t=...,p=...$salt$key).
func HashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key, err := derive(pw, salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	if err != nil {
		return "", err
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches hash (a HashPassword result);
// the error is ErrBusy when no hashing slot came free in time.
func VerifyPassword(hash, pw string) (bool, error) {
	if len(pw) > maxPasswordBytes {
		return false, nil
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, nil
	}
	var version int
	var memory, passes uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, nil
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &passes, &threads); err != nil || memory > 1<<20 || passes > 16 || threads == 0 {
		return false, nil
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false, nil
	}
	got, err := derive(pw, salt, passes, memory, threads, uint32(len(want)))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1, err
}

// WasteHash spends what verifying a password costs, so an unknown email
// takes as long to refuse as a wrong password.
func WasteHash(pw string) error {
	_, err := derive(pw, make([]byte, argonSaltLen), argonTime, argonMemory, argonThreads, argonKeyLen)
	return err
}

func derive(pw string, salt []byte, passes, memory uint32, threads uint8, keyLen uint32) ([]byte, error) {
	select {
	case hashing <- struct{}{}:
	case <-time.After(hashWait):
		return nil, ErrBusy
	}
	defer func() { <-hashing }()
	return argon2.IDKey([]byte(pw), salt, passes, memory, threads, keyLen), nil
}
