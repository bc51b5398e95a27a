package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/meter"
)

// TestCatalogueCheckShipped runs `tollgate catalogue check` on the shipped
// catalogue at its own as_of date (so that the suite does not start failing
// on a retirement date): it passes, and names the unconfirmed figures.
func TestCatalogueCheckShipped(t *testing.T) {
	cat, err := meter.LoadCatalogue("../../configs/models.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cat.AsOf.IsZero() {
		t.Fatalf("the shipped catalogue has no as_of date")
	}
	var out bytes.Buffer
	if err := runCatalogue([]string{"check", "--config", "../../configs/tollgate.yaml", "--at", cat.AsOf.Format(time.DateOnly)}, &out); err != nil {
		t.Fatalf("unexpected failure of the check at as_of: %s\n%s", err, &out)
	}
	for _, want := range []string{"retired everywhere but still listed (fails the check): 0", "claude-opus-5-5:", "unconfirmed figures"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("the check does not say %q:\n%s", want, &out)
		}
	}
	// Three weeks before Opus 4.5 leaves the first-party API, the check
	// names it with its successor.
	out.Reset()
	if err := runCatalogue([]string{"check", "--config", "../../configs/tollgate.yaml", "--at", "2027-01-01"}, &out); err != nil {
		t.Fatalf("unexpected failure: %s", err)
	}
	if !strings.Contains(out.String(), "claude-opus-4-5-20251101 on anthropic retires 2027-01-22 (successor claude-opus-5-5)") {
		t.Fatalf("the check does not announce Opus 4.5's retirement:\n%s", &out)
	}
}

// TestCatalogueCheckFails: a model listed as served but past retirement
// everywhere fails the check; a price version within 14 days is named.
func TestCatalogueCheckFails(t *testing.T) {
	dir := t.TempDir()
	cat := `as_of: 2026-12-06
models:
  - id: old
    upstreams: {anthropic: {id: old, retires: 2026-11-01}}
    prices: [{input: "1", output: "2", cache_write_5m: "1.25", cache_write_1h: "2", cache_read: "0.1"}]
  - id: new
    upstreams: {anthropic: {id: new}}
    prices:
      - {input: "1", output: "2", cache_write_5m: "1.25", cache_write_1h: "2", cache_read: "0.1"}
      - {effective: 2026-12-10, input: "2", output: "4", cache_write_5m: "2.5", cache_write_1h: "4", cache_read: "0.2"}
`
	base, err := os.ReadFile("../../configs/tollgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "models.yaml"), []byte(cat), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tollgate.yaml"), base, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = runCatalogue([]string{"check", "--config", filepath.Join(dir, "tollgate.yaml"), "--at", "2026-12-06"}, &out)
	if err == nil || !strings.Contains(out.String(), "old retired 2026-11-01") || !strings.Contains(out.String(), "new: new prices from 2026-12-10") {
		t.Fatalf("unexpected check; got %v:\n%s", err, &out)
	}
}
