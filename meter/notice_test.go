package meter

import (
	"strings"
	"testing"
	"time"
)

// noticeYAML is a catalogue of m1 and m2 with extra lines for m1 (after
// its upstreams) and m1's price versions; noticeCatalogue parses it.
func noticeYAML(m1Extra, versions string) string {
	return "models:\n" +
		"  - id: m1\n    upstreams:\n      anthropic: {id: m1}\n" + m1Extra + "    prices:\n" + versions +
		"  - id: m2\n    upstreams:\n      anthropic: {id: m2}\n    prices:\n" + priceVersion("", "1")
}

func noticeCatalogue(t *testing.T, m1Extra, versions string) *Catalogue {
	t.Helper()
	c, err := ParseCatalogue([]byte(noticeYAML(m1Extra, versions)))
	if err != nil {
		t.Fatalf("%s\n%s", err, noticeYAML(m1Extra, versions))
	}
	return c
}

func priceVersion(effective, input string) string {
	s := "      - input: \"" + input + "\"\n        output: \"15\"\n        cache_write_5m: \"3.75\"\n        cache_write_1h: \"6\"\n        cache_read: \"0.30\"\n"
	if effective != "" {
		s = "      - effective: " + effective + "\n        input: \"" + input + "\"\n" + s[strings.Index(s, "        output"):]
	}
	return s
}

// TestNoticeViolations: changes within 14 days are refused, later ones and
// new models are not; a retirement needs a successor; a served model may
// not vanish.
func TestNoticeViolations(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	base := noticeCatalogue(t, "", priceVersion("", "3"))
	cases := []struct {
		name string
		next *Catalogue
		want string // "" for no violation
	}{
		{"unchanged", noticeCatalogue(t, "", priceVersion("", "3")), ""},
		{"a price cut now", noticeCatalogue(t, "", priceVersion("", "2")), "model m1: prices in force on 2026-12-07"},
		{"a rise in 13 days", noticeCatalogue(t, "", priceVersion("", "3")+priceVersion("2026-12-20T00:00:00Z", "4")), "on 2026-12-20 change"},
		{"a rise in 15 days", noticeCatalogue(t, "", priceVersion("", "3")+priceVersion("2026-12-22T00:00:00Z", "4")), ""},
		{"a retirement in 10 days", noticeCatalogue(t, "    retires: 2026-12-17\n    successor: m2\n", priceVersion("", "3")), "retirement on 2026-12-17 is less than 14 days away"},
		{"a retirement in 30 days", noticeCatalogue(t, "    retires: 2027-01-06\n    successor: m2\n", priceVersion("", "3")), ""},
		{"a retirement without successor", noticeCatalogue(t, "    retires: 2027-01-06\n", priceVersion("", "3")), "must name a successor"},
		{"disabled at once", noticeCatalogue(t, "    enabled: false\n", priceVersion("", "3")), "m1: disabled while served"},
	}
	for _, c := range cases {
		got := strings.Join(NoticeViolations(base, c.next, now), "; ")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: got %q; want %q", c.name, got, c.want)
		}
	}
	upstreamSoon, err := ParseCatalogue([]byte(strings.Replace(noticeYAML("", priceVersion("", "3")), "anthropic: {id: m1}", "anthropic: {id: m1, retires: 2026-12-17}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(NoticeViolations(base, upstreamSoon, now), "; "); !strings.Contains(got, "model m1 on anthropic: retirement on 2026-12-17 is less than 14 days away") {
		t.Errorf("an upstream's retirement without notice: %q", got)
	}
	only2, err := ParseCatalogue([]byte("models:\n  - id: m2\n    upstreams:\n      anthropic: {id: m2}\n    prices:\n" + priceVersion("", "1")))
	if err != nil {
		t.Fatal(err)
	}
	if got := NoticeViolations(base, only2, now); len(got) != 1 || !strings.Contains(got[0], "m1: removed while served") {
		t.Errorf("a served model removed: %q", got)
	}
	if got := NoticeViolations(only2, base, now); len(got) != 0 {
		t.Errorf("a new model: %q", got)
	}
}

// TestNotices: a catalogue's new scheduled prices and retirements are
// told once, the first time they appear.
func TestNotices(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	prev := noticeCatalogue(t, "", priceVersion("", "3"))
	next := noticeCatalogue(t, "    retires: 2027-02-01\n    successor: m2\n", priceVersion("", "3")+priceVersion("2027-01-01T00:00:00Z", "4"))
	got := Notices(prev, next, now)
	if len(got) != 2 || got[0].Kind != "price.scheduled" || got[0].Prices.Input != 4_000_000_000 ||
		got[1].Kind != "model.retiring" || got[1].Successor != "m2" {
		t.Fatalf("notices: %+v", got)
	}
	if again := Notices(next, next, now); len(again) != 0 {
		t.Fatalf("told twice: %+v", again)
	}
}
