package views

import (
	"errors"
	"fmt"
	"time"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/internal/money"
)

// Amount is an amount of nano-credits (or a multiplier in parts per 1e9),
// written and read as an exact decimal string such as "25" or "0.5".
type Amount int64

// MarshalJSON writes the amount as a decimal string.
func (a Amount) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 24), '"')
	b = money.Append(b, int64(a))
	return append(b, '"'), nil
}

// UnmarshalJSON reads a decimal string; a JSON number is refused, since a
// float cannot carry nine exact decimals.
func (a *Amount) UnmarshalJSON(b []byte) error {
	var s string
	if err := sonic.Unmarshal(b, &s); err != nil {
		return errors.New(`must be a decimal string such as "25" or "0.5", not a JSON number`)
	}
	v, err := money.Parse(s)
	if err != nil {
		return fmt.Errorf("%.64q is not an exact decimal amount with at most 9 decimals within range", s)
	}
	*a = Amount(v)
	return nil
}

// Time is Unix nanoseconds, written as RFC 3339 in UTC (null for 0) and
// read from RFC 3339.
type Time int64

// TimeOf is t as a Time (0 for the zero time).
func TimeOf(t time.Time) Time {
	if t.IsZero() {
		return 0
	}
	return Time(t.UnixNano())
}

// MarshalJSON writes the time as RFC 3339 in UTC, or null for 0.
func (t Time) MarshalJSON() ([]byte, error) {
	if t == 0 {
		return []byte("null"), nil
	}
	return []byte(`"` + time.Unix(0, int64(t)).UTC().Format(time.RFC3339Nano) + `"`), nil
}

// UnmarshalJSON reads an RFC 3339 time string.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := sonic.Unmarshal(b, &s); err != nil {
		return errors.New("must be an RFC 3339 time string")
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("%.64q is not an RFC 3339 time", s)
	}
	*t = Time(v.UnixNano())
	return nil
}

// Count is a non-negative integer read from a JSON number (a limit, a
// count of requests or tokens).
type Count int64

// UnmarshalJSON reads a non-negative integer up to 2^53 (the integers a
// JSON number carries exactly everywhere).
func (c *Count) UnmarshalJSON(b []byte) error {
	var v float64
	if err := sonic.Unmarshal(b, &v); err != nil || v != float64(int64(v)) || v < 0 || v > 1<<53 {
		return errors.New("must be a non-negative integer")
	}
	*c = Count(v)
	return nil
}

// List is the envelope of every list: a page of data and, when there is
// more, the cursor of the next page.
type List[T any] struct {
	Data       []T     `json:"data"`
	HasMore    bool    `json:"has_more"`
	NextCursor *string `json:"next_cursor"`
}

// NewList wraps a page (nil becomes []) with the next page's cursor ("" on
// the last page).
func NewList[T any](data []T, next string) List[T] {
	if data == nil {
		data = []T{}
	}
	l := List[T]{Data: data}
	if next != "" {
		l.HasMore, l.NextCursor = true, &next
	}
	return l
}

// OrEmpty is s, or an empty slice for nil (JSON [] rather than null).
func OrEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// limitOrDefault is nil (JSON null, "the configured default") for a
// negative limit.
func limitOrDefault(v int64) *int64 {
	if v < 0 {
		return nil
	}
	return &v
}
