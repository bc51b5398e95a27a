package proxy

import (
	"fmt"
	"math"
	"time"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
)

// fields is a JSON object request body, field by field, so that each field
// is checked with a message naming it and unknown fields are refused.
type fields map[string]sonic.NoCopyRawMessage

// maxAdminFields bounds the fields of an admin request body.
const maxAdminFields = 64

func parseFields(body []byte, allowed ...string) (fields, error) {
	var f fields
	if len(body) == 0 {
		return fields{}, nil
	}
	if err := sonic.Unmarshal(body, &f); err != nil || f == nil {
		return nil, fmt.Errorf("the body must be a JSON object")
	}
	if len(f) > maxAdminFields {
		return nil, fmt.Errorf("the body has too many fields")
	}
	for name := range f {
		ok := false
		for _, a := range allowed {
			if name == a {
				ok = true
			}
		}
		if !ok {
			return nil, fmt.Errorf("%.64q: unknown field", name)
		}
	}
	return f, nil
}

func (f fields) has(name string) bool {
	v, ok := f[name]
	return ok && string(v) != "null"
}

func (f fields) string(name string, dst *string) error {
	if !f.has(name) {
		return nil
	}
	if err := sonic.Unmarshal(f[name], dst); err != nil {
		return fmt.Errorf("%s: must be a string", name)
	}
	return nil
}

func (f fields) bool(name string, dst *bool) error {
	if !f.has(name) {
		return nil
	}
	if err := sonic.Unmarshal(f[name], dst); err != nil {
		return fmt.Errorf("%s: must be true or false", name)
	}
	return nil
}

// amount reads an amount: a JSON string with an exact decimal number.
func (f fields) amount(name string, dst *int64) error {
	if !f.has(name) {
		return nil
	}
	var s string
	if err := sonic.Unmarshal(f[name], &s); err != nil {
		return fmt.Errorf("%s: must be a decimal string such as \"25\" or \"0.5\", not a JSON number", name)
	}
	v, err := money.Parse(s)
	if err != nil {
		return fmt.Errorf("%s: %q is not an exact decimal amount with at most 9 decimals within range", name, s)
	}
	*dst = v
	return nil
}

// int reads a non-negative JSON integer.
func (f fields) int(name string, dst *int64) error {
	if !f.has(name) {
		return nil
	}
	var v float64
	if err := sonic.Unmarshal(f[name], &v); err != nil || v != math.Trunc(v) || v < 0 || v > 1<<53 {
		return fmt.Errorf("%s: must be a non-negative integer", name)
	}
	*dst = int64(v)
	return nil
}

// time reads an RFC 3339 time.
func (f fields) time(name string, dst *int64) error {
	if !f.has(name) {
		return nil
	}
	var s string
	if err := sonic.Unmarshal(f[name], &s); err != nil {
		return fmt.Errorf("%s: must be an RFC 3339 time string", name)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("%s: %q is not an RFC 3339 time", name, s)
	}
	*dst = t.UnixNano()
	return nil
}

func (f fields) strings(name string, dst *[]string) error {
	if !f.has(name) {
		return nil
	}
	if err := sonic.Unmarshal(f[name], dst); err != nil {
		return fmt.Errorf("%s: must be an array of strings", name)
	}
	return nil
}

// multiplier reads a decimal-string multiplier into parts per 1e9.
func (f fields) multiplier(name string, dst *int64) error {
	if !f.has(name) {
		return nil
	}
	var v int64
	if err := f.amount(name, &v); err != nil {
		return fmt.Errorf("%s: must be a decimal string such as \"1\" or \"1.25\"", name)
	}
	if v <= 0 {
		return fmt.Errorf("%s: must be positive", name)
	}
	*dst = v
	return nil
}

// limits reads rpm, tpm and concurrency: absent = default (-1), 0 = unlimited.
func (f fields) limits(dst *ledger.Limits) error {
	for _, l := range []struct {
		name string
		p    *int64
	}{{"rpm", &dst.RPM}, {"tpm", &dst.TPM}, {"concurrency", &dst.Concurrency}} {
		if err := f.int(l.name, l.p); err != nil {
			return err
		}
	}
	return nil
}
