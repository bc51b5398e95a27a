package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tollgate/tollgate/wal"
)

// backupTo returns the admin API's backup function: a consistent copy of the
// data directory at dir (which must not exist, nor lie inside the data
// directory), laid out like the data directory so that `serve --data-dir
// dir` starts from it: the WAL store as a Pebble checkpoint (taken while the
// gateway runs), and the IP digest key only when withIPKey. Without the key
// a restored gateway makes a new one: the old records' digests then no
// longer match new calls from the same addresses.
func backupTo(log *wal.Log, dataDir string) func(dir string, withIPKey bool) error {
	return func(dir string, withIPKey bool) error {
		if inside(dir, dataDir) {
			return fmt.Errorf("backup directory %q is inside the data directory", dir)
		}
		if _, err := os.Stat(dir); err == nil {
			return fmt.Errorf("backup directory %q exists", dir)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("cannot create backup directory: %w", err)
		}
		if err := log.Backup(walDir(dir)); err != nil {
			return err
		}
		if !withIPKey {
			return nil
		}
		key, err := os.ReadFile(filepath.Join(dataDir, ipDigestKeyFile))
		if os.IsNotExist(err) {
			return nil // the key comes from TOLLGATE_IP_DIGEST_KEY
		}
		if err != nil {
			return fmt.Errorf("cannot read the IP digest key: %w", err)
		}
		return os.WriteFile(filepath.Join(dir, ipDigestKeyFile), key, 0o600)
	}
}

// inside reports whether path is dir or lies below it.
func inside(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return true
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && (rel == "." || !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && rel != "..")
}
