package main

import (
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tollgate/tollgate/meter"
)

// Files of the data directory that keep the catalogue's notice periods:
// the last catalogue accepted, and one line per acceptance.
const (
	acceptedCatalogueFile = "catalogue-accepted.yaml"
	catalogueChangesFile  = "catalogue-changes.log"
)

// acceptCatalogue checks cat (raw, its file's bytes) against the catalogue
// last accepted in dataDir at now, and accepts it: it becomes the last
// accepted, and a line in the changes log says when, its digest, and any
// override. It refuses changes that come with less than meter.NoticePeriod's
// notice unless the catalogue carries a new notice_override. A data
// directory with no accepted catalogue, and the embedded default, are never
// refused. What customers are to be told of goes to record (nil: nobody
// is told) before the catalogue counts as accepted, so a crash in between
// tells it again rather than never (the notices' IDs make that once).
func acceptCatalogue(dataDir string, cat *meter.Catalogue, raw []byte, embedded bool, now time.Time, record func([]meter.CatalogueNotice) error, logger *log.Logger) error {
	acceptedPath := filepath.Join(dataDir, acceptedCatalogueFile)
	prevRaw, err := os.ReadFile(acceptedPath)
	var prev *meter.Catalogue
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return fmt.Errorf("cannot read the accepted catalogue: %w", err)
	default:
		if prev, err = meter.ParseCatalogue(prevRaw); err != nil {
			return fmt.Errorf("cannot read the accepted catalogue %s: %w", acceptedPath, err)
		}
	}
	if prev != nil && string(prevRaw) == string(raw) {
		return nil
	}
	var violations []string
	if prev != nil && !embedded {
		violations = meter.NoticeViolations(prev, cat, now)
	}
	overridden := len(violations) > 0 && cat.NoticeOverride != "" && cat.NoticeOverride != prev.NoticeOverride
	if len(violations) > 0 && !overridden {
		return fmt.Errorf("the catalogue changes with less than 14 days' notice (compared with %s):\n  %s\n"+
			"give the change 14 days, or set notice_override: \"<reason>\" at the catalogue's top level (recorded in %s)",
			acceptedPath, strings.Join(violations, "\n  "), catalogueChangesFile)
	}
	if record != nil {
		if err := record(meter.Notices(prev, cat, now)); err != nil {
			return fmt.Errorf("cannot record the catalogue's notices: %w", err)
		}
	}
	if err := writeFileAtomic(acceptedPath, raw); err != nil {
		return fmt.Errorf("cannot keep the accepted catalogue: %w", err)
	}
	line := fmt.Sprintf("%s accepted sha256=%x", now.UTC().Format(time.RFC3339), sha256.Sum256(raw))
	if overridden {
		line += fmt.Sprintf(" override=%q changes=%q", cat.NoticeOverride, strings.Join(violations, "; "))
		logger.Printf("catalogue: accepted by override (%s): %s", cat.NoticeOverride, strings.Join(violations, "; "))
	}
	if err := appendLine(filepath.Join(dataDir, catalogueChangesFile), line); err != nil {
		return fmt.Errorf("cannot record the catalogue's acceptance: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path through a synced temporary file
// renamed over it, so a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
