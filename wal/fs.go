package wal

import (
	"math/rand/v2"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// CrashableFS is an in-memory file system that can simulate a crash: a clone
// keeps everything that was synced and a random share of what was not. Crash
// tests open a log on it, crash-clone it and reopen the log on the clone.
type CrashableFS struct {
	mem *vfs.MemFS
}

// NewCrashableFS returns an empty crashable in-memory file system.
func NewCrashableFS() *CrashableFS {
	return &CrashableFS{mem: vfs.NewCrashableMem()}
}

// FS returns the file system to put in Config.FS.
func (c *CrashableFS) FS() FS { return c.mem }

// CrashClone returns the file system as a crash at this moment would leave it:
// every synced byte, plus each unsynced block or directory entry with
// probability unsyncedPercent/100, chosen by rng.
func (c *CrashableFS) CrashClone(rng *rand.Rand, unsyncedPercent int) *CrashableFS {
	return &CrashableFS{mem: c.mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPercent, RNG: rng})}
}
