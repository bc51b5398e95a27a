package money

import (
	"errors"
	"math"
	"testing"
)

func TestParse(t *testing.T) {
	f := func(s string, want int64) {
		t.Helper()
		got, err := Parse(s)
		if err != nil {
			t.Fatalf("unexpected error for %q: %s", s, err)
		}
		if got != want {
			t.Fatalf("unexpected amount for %q; got %d; want %d", s, got, want)
		}
		if back := Format(got); back != s {
			t.Fatalf("unexpected round trip of %q; got %q", s, back)
		}
	}
	f("0", 0)
	f("25", 25*NanosPerCredit)
	f("0.000003", 3000)
	f("0.000000001", 1)
	f("-1.5", -1_500_000_000)
	f("9223372036.854775807", math.MaxInt64)
	f("-9223372036.854775807", -math.MaxInt64)

	bad := func(s string, want error) {
		t.Helper()
		if _, err := Parse(s); !errors.Is(err, want) {
			t.Fatalf("unexpected error for %q; got %v; want %v", s, err, want)
		}
	}
	for _, s := range []string{"", "-", "+1", "01", "1.", ".5", "1.0000000001", "1e3", " 1", "1 ", "1,5", "--1", "0x10", "１"} {
		bad(s, ErrSyntax)
	}
	bad("9223372036.854775808", ErrRange)
	bad("99999999999999999999", ErrRange)
}

func TestFormat(t *testing.T) {
	f := func(n int64, want string) {
		t.Helper()
		if got := Format(n); got != want {
			t.Fatalf("unexpected format of %d; got %q; want %q", n, got, want)
		}
	}
	f(0, "0")
	f(500_000_000, "0.5")
	f(-3000, "-0.000003")
	f(10*NanosPerCredit+1, "10.000000001")
	f(math.MinInt64, "-9223372036.854775808")
}
