package views

import (
	"testing"
	"time"

	"github.com/bytedance/sonic"
)

// TestAmountAndTimeRoundTrip: amounts travel as exact decimal strings and
// times as RFC 3339 both ways; a JSON number for an amount is refused.
func TestAmountAndTimeRoundTrip(t *testing.T) {
	for _, s := range []string{`"0"`, `"25"`, `"0.5"`, `"-0.000000001"`, `"9223372036.854775807"`} {
		var a Amount
		if err := sonic.Unmarshal([]byte(s), &a); err != nil {
			t.Fatalf("cannot read %s: %s", s, err)
		}
		if b, _ := sonic.Marshal(a); string(b) != s {
			t.Fatalf("unexpected round trip of %s: %s", s, b)
		}
	}
	for _, s := range []string{`25`, `"1e3"`, `"0.0000000001"`, `"99999999999999999999"`, `null`} {
		var a Amount
		if err := a.UnmarshalJSON([]byte(s)); err == nil {
			t.Fatalf("amount %s accepted", s)
		}
	}
	var tm Time
	if err := tm.UnmarshalJSON([]byte(`"2026-12-06T10:00:00.5+01:00"`)); err != nil {
		t.Fatal(err)
	}
	if b, _ := sonic.Marshal(tm); string(b) != `"2026-12-06T09:00:00.5Z"` {
		t.Fatalf("unexpected time %s", b)
	}
	if b, _ := sonic.Marshal(Time(0)); string(b) != "null" {
		t.Fatalf("the zero time is %s; want null", b)
	}
}

func TestParseParams(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	if from, to, err := ParsePeriod("", "", now); err != nil || from != 0 || to != now.UnixNano() {
		t.Fatalf("unexpected default period %d %d %v", from, to, err)
	}
	for _, p := range [][2]string{{"yesterday", ""}, {"2026-12-06T00:00:00Z", "2026-12-05T00:00:00Z"}} {
		if _, _, err := ParsePeriod(p[0], p[1], now); err == nil {
			t.Fatalf("period %q accepted", p)
		}
	}
	for s, want := range map[string]int{"": 100, "1": 1, "1000": 1000, "0": -1, "1001": -1, "x": -1} {
		if n, err := ParseLimit(s, 100, 1000); (err != nil) != (want < 0) || (err == nil && n != want) {
			t.Fatalf("unexpected limit of %q: %d %v", s, n, err)
		}
	}
	if c, err := ParseSeqCursor(SeqCursor(42)); err != nil || c != 42 || SeqCursor(0) != "" {
		t.Fatalf("unexpected cursor round trip: %d %v", c, err)
	}
	for _, s := range []string{"0", "-1", "x"} {
		if _, err := ParseSeqCursor(s); err == nil {
			t.Fatalf("cursor %q accepted", s)
		}
	}
}
