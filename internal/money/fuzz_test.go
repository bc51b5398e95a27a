package money

import "testing"

// FuzzParse: Parse never panics, accepts only the contract's syntax, and
// what it accepts formats back to the same value.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "25", "0.5", "-0.000003", "9223372036.854775807", "1e3", "01", "1.0000000001", "-", ".5", "１"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			return
		}
		back, err := Parse(Format(v))
		if err != nil || back != v {
			t.Fatalf("%q parses to %d, which formats to %q and parses to %d (%v)", s, v, Format(v), back, err)
		}
	})
}
