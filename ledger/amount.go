package ledger

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// NanosPerCredit is the number of nano-credits in one credit (1 USD of list price).
const NanosPerCredit = 1_000_000_000

// ErrAmountSyntax reports an amount that is not an exact decimal number of
// credits with at most 9 decimals.
var ErrAmountSyntax = errors.New("ledger: amount must be a decimal string matching -?(0|[1-9][0-9]*)(\\.[0-9]{1,9})?")

// ErrOverflow reports arithmetic that would leave the int64 range.
var ErrOverflow = errors.New("ledger: amount overflows int64 nano-credits")

// ParseAmount parses an exact decimal number of credits ("25", "0.000003",
// "-1.5") into nano-credits. It accepts exactly the contract's syntax
// -?(0|[1-9][0-9]*)(\.[0-9]{1,9})? and refuses anything else, including
// exponents, a leading '+', spaces and more than 9 decimals.
func ParseAmount(s string) (int64, error) {
	neg := false
	i := 0
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	intStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intPart := s[intStart:i]
	if len(intPart) == 0 || (len(intPart) > 1 && intPart[0] == '0') {
		return 0, ErrAmountSyntax
	}
	var frac string
	if i < len(s) {
		if s[i] != '.' {
			return 0, ErrAmountSyntax
		}
		i++
		fracStart := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		frac = s[fracStart:i]
		if len(frac) == 0 || len(frac) > 9 || i != len(s) {
			return 0, ErrAmountSyntax
		}
	}
	whole, err := strconv.ParseUint(intPart, 10, 64)
	if err != nil || whole > math.MaxInt64/NanosPerCredit {
		return 0, fmt.Errorf("%w: %q", ErrOverflow, s)
	}
	var fracNanos uint64
	for j := 0; j < 9; j++ {
		fracNanos *= 10
		if j < len(frac) {
			fracNanos += uint64(frac[j] - '0')
		}
	}
	v := whole*NanosPerCredit + fracNanos
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %q", ErrOverflow, s)
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}

// AppendAmount appends nanos as the shortest exact decimal number of credits:
// "25", "0.5", "-0.000003".
func AppendAmount(dst []byte, nanos int64) []byte {
	u := uint64(nanos)
	if nanos < 0 {
		dst = append(dst, '-')
		u = uint64(-nanos) // also right for math.MinInt64
	}
	dst = strconv.AppendUint(dst, u/NanosPerCredit, 10)
	frac := u % NanosPerCredit
	if frac == 0 {
		return dst
	}
	var digits [9]byte
	for j := 8; j >= 0; j-- {
		digits[j] = byte('0' + frac%10)
		frac /= 10
	}
	n := 9
	for digits[n-1] == '0' {
		n--
	}
	dst = append(dst, '.')
	return append(dst, digits[:n]...)
}

// FormatAmount returns AppendAmount as a string.
func FormatAmount(nanos int64) string { return string(AppendAmount(nil, nanos)) }

// addChecked returns a+b or ErrOverflow.
func addChecked(a, b int64) (int64, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, ErrOverflow
	}
	return s, nil
}
