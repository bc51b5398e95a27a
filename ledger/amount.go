package ledger

import "errors"

// ErrOverflow reports arithmetic that would leave the int64 range.
var ErrOverflow = errors.New("ledger: amount overflows int64 nano-credits")

// addChecked returns a+b or ErrOverflow.
func addChecked(a, b int64) (int64, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, ErrOverflow
	}
	return s, nil
}
