package meter

import (
	"encoding/json"
	"strings"
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

func TestAppendJSONString(t *testing.T) {
	f := func(s, want string) {
		t.Helper()
		got := AppendJSONString([]byte("x"), s)
		if string(got) != "x"+want {
			t.Fatalf("unexpected encoding of %q; got %s; want %s", s, got[1:], want)
		}
		if b := appendJSONString([]byte("x"), []byte(s)); string(b) != string(got) {
			t.Fatalf("unexpected encoding of %q as bytes; got %s; want %s", s, b[1:], want)
		}
		checkJSONString(t, s, got[1:])
	}
	f("", `""`)
	f("plain", `"plain"`)
	f(`quote " backslash \ slash /`, `"quote \" backslash \\ slash /"`)
	f("ctl \x00\x01\x1f\n\r\t\b\f\x7f end", `"ctl \u0000\u0001\u001f\n\r\t\u0008\u000c\u007f end"`)
	f("<a & b>", `"<a & b>"`)
	f("h\u00e9llo \u65e5\u672c \u2028 \U0001F600", "\"h\u00e9llo \u65e5\u672c \u2028 \U0001F600\"")
	f("bad \xff utf8 \xe6\x97", `"bad \ufffd utf8 \ufffd\ufffd"`)
	f("\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`) // a surrogate's encoding is not UTF-8
	f("\xf0\x9f\x98", `"\ufffd\ufffd\ufffd"`) // cut short at the end
}

// checkJSONString checks that b is one valid JSON string decoding to s with
// each byte of invalid UTF-8 replaced by U+FFFD.
func checkJSONString(t *testing.T, s string, b []byte) {
	t.Helper()
	var got string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("invalid JSON %s for %q: %s", b, s, err)
	}
	if want := invalidBytesReplaced(s); got != want {
		t.Fatalf("unexpected round trip of %q; got %q; want %q", s, got, want)
	}
	// The meter's own scanner reads it back whole.
	if end, _, _, ok := scanString(b, 0); !ok || end != len(b) {
		t.Fatalf("unexpected scan of %s: end %d, ok %v", b, end, ok)
	}
}

// invalidBytesReplaced is s with each byte of invalid UTF-8 replaced by
// U+FFFD (strings.ToValidUTF8 would replace a run of them with one).
func invalidBytesReplaced(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\\n\r\t\x00\x7f", "<&>", "caf\u00e9 \U0001F600", "\xff\xed\xa0\x80\xf0\x9f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendJSONString(nil, s)
		checkJSONString(t, s, b)
		if string(appendJSONString(nil, []byte(s))) != string(b) {
			t.Fatalf("unexpected difference between the string and bytes encodings of %q", s)
		}
	})
}
