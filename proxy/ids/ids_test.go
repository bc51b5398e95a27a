package ids

import (
	"strings"
	"testing"
)

// TestIDsAreWellFormedAndDistinct: request IDs and key secrets have their
// documented shape, are base62 after their prefix, and do not repeat.
func TestIDsAreWellFormedAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 10_000 {
		id := string(AppendRequestID(nil))
		key := NewKeySecret()
		for _, c := range []struct {
			s, prefix string
			n         int
		}{{id, "req_", requestIDChars}, {key, keyPrefix, keySecretChars}} {
			rest, ok := strings.CutPrefix(c.s, c.prefix)
			if !ok || len(rest) != c.n || strings.Trim(rest, base62) != "" {
				t.Fatalf("malformed identifier %q; want %q and %d base62 characters", c.s, c.prefix, c.n)
			}
			if seen[c.s] {
				t.Fatalf("identifier %q repeated", c.s)
			}
			seen[c.s] = true
		}
	}
	if hint := KeyHint("tg-abcdefgh"); hint != "tg-…efgh" {
		t.Fatalf("unexpected hint %q", hint)
	}
}

func TestRequestIDAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(1000, func() { buf = AppendRequestID(buf[:0]) }); n != 0 {
		t.Fatalf("unexpected allocations per request ID: %v; want 0", n)
	}
}
