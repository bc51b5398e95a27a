package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tollgate/tollgate/wal"
)

// backupTo returns the admin API's backup function: a consistent copy of the
// data directory at dir (which must not exist), laid out like the data
// directory so that `serve --data-dir dir` starts from it: the WAL store as a
// Pebble checkpoint (taken while the gateway runs), and the IP digest key.
func backupTo(log *wal.Log, dataDir string) func(dir string) error {
	return func(dir string) error {
		if _, err := os.Stat(dir); err == nil {
			return fmt.Errorf("backup directory %q exists", dir)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("cannot create backup directory: %w", err)
		}
		if err := log.Backup(walDir(dir)); err != nil {
			return err
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
