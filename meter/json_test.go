package meter

import (
	"encoding/json"
	"testing"
)

func TestSkipValue(t *testing.T) {
	f := func(s string, wantOK bool) {
		t.Helper()
		end, ok := skipValue([]byte(s), skipWS([]byte(s), 0), 0)
		if ok && end != len(s) {
			ok = atEnd([]byte(s), end)
		}
		if ok != wantOK {
			t.Fatalf("unexpected validity of %q; got %v; want %v", s, ok, wantOK)
		}
		// The standard library agrees on every case.
		if std := json.Valid([]byte(s)); std != wantOK {
			t.Fatalf("unexpected test case %q: encoding/json says %v", s, std)
		}
	}
	for _, s := range []string{`0`, `-0`, `1.5e+10`, `-12.0E-3`, `"a\"\\\/\b\f\n\r\t\u00e9"`, `true`, `false`, `null`,
		`[]`, `{}`, `[1,[2,{"a":[]}]]`, `{"a":1,"b":{"c":null}}`, ` [ 1 , 2 ] `, "\"\xff\""} {
		f(s, true)
	}
	for _, s := range []string{``, `01`, `1.`, `.5`, `1e`, `-`, `+1`, `"abc`, `"\x"`, `"\u12"`, "\"a\tb\"", `tru`, `nul`,
		`[1,]`, `[,1]`, `{"a"}`, `{"a":1,}`, `{a:1}`, `{"a":1 "b":2}`, `[1 2]`, `]`, `}`, `{"a":1}}`} {
		f(s, false)
	}
}

func TestParseInt(t *testing.T) {
	f := func(s string, want int64, wantRes intResult) {
		t.Helper()
		v, _, res := parseInt([]byte(s), 0)
		if res != wantRes || (res == intOK && v != want) {
			t.Fatalf("unexpected parse of %q; got %d, %d; want %d, %d", s, v, res, want, wantRes)
		}
	}
	f("0", 0, intOK)
	f("42", 42, intOK)
	f("-7", -7, intOK)
	f("9223372036854775807", 1<<63-1, intOK)
	f("9223372036854775808", 0, intOverflow)
	f("-9223372036854775808", -1<<63, intOK)
	f("-9223372036854775809", 0, intOverflow)
	f("1.0", 0, intNotInt)
	f("1e3", 0, intNotInt)
	f("x", 0, intBad)
	f("", 0, intBad)
}

func TestScanStringLength(t *testing.T) {
	f := func(s string) {
		t.Helper()
		end, n, _, ok := scanString([]byte(s), 0)
		if !ok || end != len(s) {
			t.Fatalf("unexpected scan of %s: end %d, ok %v", s, end, ok)
		}
		var d string
		if err := json.Unmarshal([]byte(s), &d); err != nil {
			t.Fatalf("unexpected test case %s: %s", s, err)
		}
		if n != int64(len(d)) {
			t.Fatalf("unexpected decoded length of %s; got %d; want %d", s, n, len(d))
		}
		dec, fits := appendUnescaped(nil, []byte(s[1:len(s)-1]), false)
		if !fits || string(dec) != d {
			t.Fatalf("unexpected decoding of %s; got %q; want %q", s, dec, d)
		}
	}
	for _, s := range []string{`""`, `"abc"`, `"caf\u00e9"`, `"\ud83d\ude00"`, `"\ud800"`, `"\udc00x"`, `"\ud800\u0041"`,
		`"\n\t\"\\\/"`, `"日本"`, `"\u0000"`} {
		f(s)
	}
}

func TestRawEqual(t *testing.T) {
	f := func(raw string, esc bool, s string, want bool) {
		t.Helper()
		if got := rawEqual([]byte(raw), esc, s); got != want {
			t.Fatalf("unexpected rawEqual(%q, %q); got %v; want %v", raw, s, got, want)
		}
	}
	f("usage", false, "usage", true)
	f("usa\\u0067e", true, "usage", true)
	f("usa\\u0067e", true, "usagf", false)
	f("u", false, "usage", false)
	f("\\u0075", true, "", false)
}
