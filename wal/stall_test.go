package wal

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// stallFS is a file system whose syncs hang while stalled is set: a disk
// that stops answering.
type stallFS struct {
	vfs.FS
	stalled atomic.Bool
	release chan struct{}
}

func (fs *stallFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &stallFile{File: f, fs: fs}, nil
}

func (fs *stallFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs *stallFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(oldname, newname, c))
}

func (fs *stallFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

type stallFile struct {
	vfs.File
	fs *stallFS
}

func (f *stallFile) wait() {
	if f.fs.stalled.Load() {
		<-f.fs.release
	}
}

func (f *stallFile) Sync() error     { f.wait(); return f.File.Sync() }
func (f *stallFile) SyncData() error { f.wait(); return f.File.SyncData() }
func (f *stallFile) SyncTo(n int64) (bool, error) {
	f.wait()
	return f.File.SyncTo(n)
}

// TestStalledDiskFailsTheLog: a sync that hangs past StallTimeout fails the
// log (the owner then stops and replays) instead of blocking every waiter
// forever.
func TestStalledDiskFailsTheLog(t *testing.T) {
	fs := &stallFS{FS: vfs.NewMem(), release: make(chan struct{})}
	l, err := Open("db", Config{FS: fs, StallTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("cannot open: %s", err)
	}
	defer func() {
		close(fs.release)
		l.Close()
	}()
	seq := l.Append(&Record{Kind: 1, Body: []byte("before")})
	if err := l.Wait(seq); err != nil {
		t.Fatalf("unexpected error before the stall: %s", err)
	}
	fs.stalled.Store(true)
	start := time.Now()
	seq = l.Append(&Record{Kind: 1, Body: []byte("stalled")})
	err = l.Wait(seq)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("unexpected wait result on a stalled disk; got %v; want ErrStalled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the stall was noticed after %s; want about the stall timeout", d)
	}
	select {
	case <-l.Failed():
	default:
		t.Fatalf("the log is not marked failed")
	}
	if l.CommitAge() < 200*time.Millisecond {
		t.Fatalf("unexpected commit age %s during the stall", l.CommitAge())
	}
}
