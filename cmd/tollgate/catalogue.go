package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tollgate/tollgate/meter"
)

// runCatalogue is `tollgate catalogue check [--config FILE] [--at TIME]`:
// the catalogue in force, checked at TIME (default now): retirements within
// 30 days, models retired everywhere but still listed, price versions taking
// effect within 14 days, and the figures no official page confirms. It fails
// when a model still listed as served is past retirement everywhere. With
// --data-dir it also checks the notice periods against the catalogue that
// data directory last accepted, as serve and SIGHUP will.
func runCatalogue(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return errors.New("usage: tollgate catalogue check [--config FILE] [--at TIME] [--data-dir DIR]")
	}
	fs := flag.NewFlagSet("catalogue check", flag.ContinueOnError)
	config := fs.String("config", "configs/tollgate.yaml", "gateway configuration file (its catalogue is checked)")
	atFlag := fs.String("at", "", "check as of this time, RFC 3339 or a date (default: now)")
	dataDir := fs.String("data-dir", "", "also check the notice periods against this data directory's accepted catalogue")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	isDefault := true
	fs.Visit(func(f *flag.Flag) { isDefault = isDefault && f.Name != "config" })
	at := time.Now()
	if *atFlag != "" {
		var err error
		if at, err = parseTime(*atFlag); err != nil {
			return fmt.Errorf("--at: %w", err)
		}
	}
	fc, err := loadConfig(*config, isDefault)
	if err != nil {
		return err
	}
	cat, err := loadCatalogue(fc)
	if err != nil {
		return err
	}
	check := meter.CheckCatalogue(cat, at)
	writeCatalogueCheck(stdout, cat, &check, at)
	if *dataDir != "" {
		if err := checkNotice(stdout, *dataDir, cat, at); err != nil {
			return err
		}
	}
	if check.Failing() {
		return fmt.Errorf("%d models listed as served are past retirement: remove them or give them an upstream that serves them", len(check.Retired))
	}
	return nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

func writeCatalogueCheck(w io.Writer, cat *meter.Catalogue, c *meter.CatalogueCheck, at time.Time) {
	asOf := "no as_of date"
	if !cat.AsOf.IsZero() {
		asOf = "figures as of " + cat.AsOf.Format(time.DateOnly)
	}
	fmt.Fprintf(w, "catalogue: %d models, %s; checked at %s\n", len(cat.Models()), asOf, at.UTC().Format(time.RFC3339))
	section := func(title string, n int) {
		fmt.Fprintf(w, "\n%s: %d\n", title, n)
	}
	section("retiring within 30 days", len(c.Retiring))
	for _, r := range c.Retiring {
		fmt.Fprintf(w, "  %s%s retires %s%s\n", r.Model.ID, onKind(r.Kind), r.At.Format(time.DateOnly), successorNote(r.Model))
	}
	section("retired everywhere but still listed (fails the check)", len(c.Retired))
	for _, r := range c.Retired {
		fmt.Fprintf(w, "  %s retired %s%s\n", r.Model.ID, r.At.Format(time.DateOnly), successorNote(r.Model))
	}
	section("price versions taking effect within 14 days", len(c.Prices))
	for _, p := range c.Prices {
		fmt.Fprintf(w, "  %s: new prices from %s\n", p.Model.ID, p.Version.Effective.UTC().Format(time.RFC3339))
	}
	section("models with unconfirmed figures", len(c.Unconfirmed))
	for _, m := range c.Unconfirmed {
		fmt.Fprintf(w, "  %s:\n", m.ID)
		for _, u := range m.Unconfirmed {
			fmt.Fprintf(w, "    - %s\n", u)
		}
	}
}

// catalogueSummary is the check in one line, for the start log.
func catalogueSummary(cat *meter.Catalogue, c *meter.CatalogueCheck) string {
	var retiring []string
	for _, r := range c.Retiring {
		retiring = append(retiring, r.Model.ID+onKind(r.Kind)+" "+r.At.Format(time.DateOnly))
	}
	s := fmt.Sprintf("catalogue: %d models", len(cat.Models()))
	if !cat.AsOf.IsZero() {
		s += " as of " + cat.AsOf.Format(time.DateOnly)
	}
	s += fmt.Sprintf("; %d retiring within 30 days", len(retiring))
	if len(retiring) > 0 {
		s += " (" + strings.Join(retiring, ", ") + ")"
	}
	return s + fmt.Sprintf("; %d retired but listed; %d price versions within 14 days; %d models with unconfirmed figures",
		len(c.Retired), len(c.Prices), len(c.Unconfirmed))
}

func onKind(kind string) string {
	if kind == "" {
		return ""
	}
	return " on " + kind
}

func successorNote(m *meter.Model) string {
	if m.Successor == "" {
		return ""
	}
	return " (successor " + m.Successor + ")"
}

// checkNotice reports the notice-period violations of cat against the
// catalogue dataDir last accepted, failing when there are some that no new
// override covers.
func checkNotice(w io.Writer, dataDir string, cat *meter.Catalogue, at time.Time) error {
	raw, err := os.ReadFile(filepath.Join(dataDir, acceptedCatalogueFile))
	if os.IsNotExist(err) {
		fmt.Fprintln(w, "notice periods: the data directory has accepted no catalogue yet; any is accepted")
		return nil
	}
	if err != nil {
		return err
	}
	prev, err := meter.ParseCatalogue(raw)
	if err != nil {
		return fmt.Errorf("cannot read the accepted catalogue: %w", err)
	}
	v := meter.NoticeViolations(prev, cat, at)
	switch {
	case len(v) == 0:
		fmt.Fprintln(w, "notice periods: every change gives at least 14 days' notice")
	case cat.NoticeOverride != "" && cat.NoticeOverride != prev.NoticeOverride:
		fmt.Fprintf(w, "notice periods: overridden (%s):\n  %s\n", cat.NoticeOverride, strings.Join(v, "\n  "))
	default:
		return fmt.Errorf("notice periods: changes with less than 14 days' notice:\n  %s", strings.Join(v, "\n  "))
	}
	return nil
}
