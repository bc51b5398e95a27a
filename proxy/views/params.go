package views

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ParsePeriod reads a statement's period from its from and to parameters
// (RFC 3339; "" for absent): from defaults to the beginning, to to now.
func ParsePeriod(fromParam, toParam string, now time.Time) (from, to int64, err error) {
	from, to = 0, now.UnixNano()
	for _, p := range []struct {
		name, value string
		dst         *int64
	}{{"from", fromParam, &from}, {"to", toParam, &to}} {
		if p.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, p.value)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %.64q is not an RFC 3339 time", p.name, p.value)
		}
		*p.dst = t.UnixNano()
	}
	if to < from {
		return 0, 0, errors.New("to is before from")
	}
	return from, to, nil
}

// ParseLimit reads a page size ("" for the default def), from 1 to max.
func ParseLimit(s string, def, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("limit must be an integer from 1 to %d", max)
	}
	return n, nil
}

// ParseSeqCursor reads a cursor that is a sequence number ("" for the
// first page, 0).
func ParseSeqCursor(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == 0 {
		return 0, errors.New("cursor: not a cursor this API returned")
	}
	return v, nil
}

// SeqCursor is the cursor of the page after one that ended at seq (""
// when there is none).
func SeqCursor(seq uint64) string {
	if seq == 0 {
		return ""
	}
	return strconv.FormatUint(seq, 10)
}

// ClientAddressHeader carries, from the client API to the customers'
// console it serves, the client's address as trusted_proxies resolve it;
// the client API sets it on every request it passes on, replacing any a
// client sent.
const ClientAddressHeader = "Tollgate-Client-Address"
