// Package money is Tollgate's one definition of an amount: int64
// nano-credits (1 credit = 1 USD of list price = 10^9 nano-credits), written
// as exact decimal strings of credits. The ledger's amounts and the
// catalogue's prices and multipliers are all read and written here.
package money

import (
	"errors"
	"math"
	"strconv"
)

// NanosPerCredit is the number of nano-credits in one credit.
const NanosPerCredit = 1_000_000_000

var (
	// ErrSyntax reports a string that is not an exact decimal number of
	// credits with at most 9 decimals.
	ErrSyntax = errors.New("money: amount must be a decimal string matching -?(0|[1-9][0-9]*)(\\.[0-9]{1,9})?")
	// ErrRange reports an amount beyond int64 nano-credits.
	ErrRange = errors.New("money: amount overflows int64 nano-credits")
)

// Parse reads an exact decimal number of credits ("25", "0.000003", "-1.5")
// into nano-credits. It accepts exactly -?(0|[1-9][0-9]*)(\.[0-9]{1,9})? and
// refuses anything else, exponents, a leading '+', spaces and a tenth
// decimal included: a float never touches an amount.
func Parse(s string) (int64, error) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intPart, rest := s[:i], s[i:]
	if len(intPart) == 0 || (len(intPart) > 1 && intPart[0] == '0') {
		return 0, ErrSyntax
	}
	var frac string
	if len(rest) > 0 {
		frac = rest[1:]
		if rest[0] != '.' || len(frac) == 0 || len(frac) > 9 || !digits(frac) {
			return 0, ErrSyntax
		}
	}
	whole, err := strconv.ParseUint(intPart, 10, 64)
	if err != nil || whole > math.MaxInt64/NanosPerCredit {
		return 0, ErrRange
	}
	var fracNanos uint64
	for j := range 9 {
		fracNanos *= 10
		if j < len(frac) {
			fracNanos += uint64(frac[j] - '0')
		}
	}
	v := whole*NanosPerCredit + fracNanos
	if v > math.MaxInt64 {
		return 0, ErrRange
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Append appends nanos as the shortest exact decimal number of credits:
// "25", "0.5", "-0.000003".
func Append(dst []byte, nanos int64) []byte {
	u := uint64(nanos)
	if nanos < 0 {
		dst = append(dst, '-')
		u = -u // also right for math.MinInt64
	}
	dst = strconv.AppendUint(dst, u/NanosPerCredit, 10)
	frac := u % NanosPerCredit
	if frac == 0 {
		return dst
	}
	var d [9]byte
	for j := 8; j >= 0; j-- {
		d[j] = byte('0' + frac%10)
		frac /= 10
	}
	n := 9
	for d[n-1] == '0' {
		n--
	}
	dst = append(dst, '.')
	return append(dst, d[:n]...)
}

// Format returns Append as a string.
func Format(nanos int64) string { return string(Append(nil, nanos)) }
