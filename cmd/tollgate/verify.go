package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/wal"
)

// walDir is where the data directory keeps the Pebble store.
func walDir(dataDir string) string { return filepath.Join(dataDir, "wal") }

// runVerify replays the WAL of a stopped gateway, checks every invariant and
// that the entries reconcile with the balances, and prints a summary.
func runVerify(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./data", "the gateway's data directory (the gateway must be stopped)")
	clusterDSN := fs.String("cluster-dsn", "", "check cluster mode's books in PostgreSQL instead (the nodes may run); the password from PGPASSWORD")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *clusterDSN != "" {
		return verifyCluster(*clusterDSN, out)
	}
	dir := walDir(*dataDir)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("no wal at %q: %w", dir, err)
	}
	start := time.Now()
	log, err := wal.Open(dir, wal.Config{})
	if err != nil {
		return err
	}
	defer log.Close()
	l, err := ledger.Open(log, ledger.Config{})
	if err != nil {
		return fmt.Errorf("replay failed: %w", err)
	}
	replay := time.Since(start)
	sum, checkErr := l.Check()
	entries, recErr := l.Reconcile()
	amount := money.Format
	fmt.Fprintf(out, "replayed %d records in %s\n", sum.LastSeq, replay.Round(time.Millisecond))
	fmt.Fprintf(out, "accounts   %d\nkeys       %d\nentries    %d\nopen holds %d\n", sum.Accounts, sum.Keys, entries, sum.OpenHolds)
	fmt.Fprintf(out, "top-ups    %s\nadjusted   %s\nexpired    %s\navailable  %s\nheld       %s\ncharged    %s\ndebt       %s\n",
		amount(sum.TopUps), amount(sum.Adjusted), amount(sum.Expired), amount(sum.Available), amount(sum.Held), amount(sum.Charged), amount(sum.Debt))
	if err := errors.Join(checkErr, recErr); err != nil {
		fmt.Fprintln(out, "FAILED")
		return err
	}
	fmt.Fprintln(out, "OK: conservation holds, entries reconcile")
	return nil
}
