package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("cannot open log: %s", err)
	}
	return l
}

func TestFrameRoundTrip(t *testing.T) {
	f := func(r Record, seq uint64) {
		t.Helper()
		frame := appendFrame(nil, &r, seq)
		v, err := DecodeFrame(frame)
		if err != nil {
			t.Fatalf("unexpected error: %s", err)
		}
		if v.Kind != r.Kind || v.Entry != r.Entry || v.Seq != seq || v.TimeNanos != r.TimeNanos ||
			string(v.Account) != r.Account || !bytes.Equal(v.Body, r.Body) {
			t.Fatalf("unexpected view; got %+v; want %+v seq %d", v, r, seq)
		}
		// Every single-bit flip and every truncation must be detected.
		for i := range frame {
			for bit := range 8 {
				bad := bytes.Clone(frame)
				bad[i] ^= 1 << bit
				if _, err := DecodeFrame(bad); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("flip of byte %d bit %d not detected; got %v", i, bit, err)
				}
			}
			if _, err := DecodeFrame(frame[:i]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncation to %d bytes not detected; got %v", i, err)
			}
		}
	}
	f(Record{Kind: 1, TimeNanos: 1, Body: nil}, 1)
	f(Record{Kind: 7, Entry: true, TimeNanos: -5, Account: "acct_1", Body: []byte("hello")}, 1<<40)
	f(Record{Kind: 255, Account: string(bytes.Repeat([]byte("a"), MaxAccountBytes)), Body: bytes.Repeat([]byte{0}, 300)}, 42)
}

func TestAppendReplayEntries(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, Config{})
	for i := range 10 {
		acct := "a"
		if i%2 == 1 {
			acct = "ab"
		}
		seq := l.Append(&Record{Kind: 1, Entry: i < 8, TimeNanos: int64(i), Account: acct, Body: []byte{byte(i)}})
		if seq != uint64(i+1) {
			t.Fatalf("unexpected seq; got %d; want %d", seq, i+1)
		}
		if err := l.Wait(seq); err != nil {
			t.Fatalf("cannot wait: %s", err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("cannot close: %s", err)
	}
	l = openTest(t, dir, Config{})
	defer l.Close()
	if got := l.LastSeq(); got != 10 {
		t.Fatalf("unexpected last seq after reopen; got %d; want 10", got)
	}
	var seqs []uint64
	if err := l.Replay(3, func(v RecordView) error { seqs = append(seqs, v.Seq); return nil }); err != nil {
		t.Fatalf("cannot replay: %s", err)
	}
	if fmt.Sprint(seqs) != "[4 5 6 7 8 9 10]" {
		t.Fatalf("unexpected replay; got %v", seqs)
	}
	// Entries of "a" are 1,3,5,7 (9 is not an entry); of "ab" 2,4,6,8.
	page := func(acct string, before uint64, limit int) (string, bool) {
		var got []uint64
		more, err := l.Entries(acct, before, limit, func(v RecordView) error {
			if string(v.Account) != acct {
				t.Fatalf("entry of %q listed for %q", v.Account, acct)
			}
			got = append(got, v.Seq)
			return nil
		})
		if err != nil {
			t.Fatalf("cannot list entries: %s", err)
		}
		return fmt.Sprint(got), more
	}
	f := func(acct string, before uint64, limit int, want string, wantMore bool) {
		t.Helper()
		got, more := page(acct, before, limit)
		if got != want || more != wantMore {
			t.Fatalf("unexpected page of %q before %d; got %s more=%v; want %s more=%v", acct, before, got, more, want, wantMore)
		}
	}
	f("a", 0, 2, "[7 5]", true)
	f("a", 5, 2, "[3 1]", false)
	f("a", 0, 10, "[7 5 3 1]", false)
	f("ab", 0, 4, "[8 6 4 2]", false)
	f("abc", 0, 4, "[]", false)
}

func TestCheckpointCompactsRecords(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, Config{})
	for i := range 5 {
		l.Append(&Record{Kind: 1, Entry: true, Account: "x", Body: []byte{byte(i)}})
	}
	state := bytes.Repeat([]byte("state"), checkpointChunkBytes/2) // spans several chunks
	if err := l.WriteCheckpoint(3, state); err != nil {
		t.Fatalf("cannot checkpoint: %s", err)
	}
	if err := l.WriteCheckpoint(5, []byte("newer")); err != nil {
		t.Fatalf("cannot checkpoint: %s", err)
	}
	if err := l.WriteCheckpoint(4, []byte("older")); err == nil {
		t.Fatalf("expected an error for a checkpoint older than the stored one")
	}
	l.Close()

	l = openTest(t, dir, Config{})
	defer l.Close()
	seq, got, ok, err := l.LoadCheckpoint()
	if err != nil || !ok || seq != 5 || string(got) != "newer" {
		t.Fatalf("unexpected checkpoint; got seq=%d ok=%v err=%v state=%q", seq, ok, err, got)
	}
	n := 0
	if err := l.Replay(0, func(RecordView) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("records covered by the checkpoint were not compacted; got %d err=%v", n, err)
	}
	if next := l.Append(&Record{Kind: 1}); next != 6 {
		t.Fatalf("sequence must continue after the checkpoint; got %d; want 6", next)
	}
	if more, err := l.Entries("x", 0, 100, func(RecordView) error { n++; return nil }); err != nil || more || n != 5 {
		t.Fatalf("entries must survive compaction; got %d more=%v err=%v", n, more, err)
	}
}

func TestModesAndWaitSynced(t *testing.T) {
	for _, mode := range []Mode{ModeSync, ModeInterval, ModeNone} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := NewCrashableFS()
			l := openTest(t, "db", Config{Mode: mode, FS: fs.FS()})
			seq := l.Append(&Record{Kind: 1, Body: []byte("x")})
			if err := l.Wait(seq); err != nil {
				t.Fatalf("cannot wait: %s", err)
			}
			if err := l.WaitSynced(seq); err != nil {
				t.Fatalf("cannot wait synced: %s", err)
			}
			// After WaitSynced the record survives a crash that keeps nothing unsynced.
			crashed := fs.CrashClone(rand.New(rand.NewPCG(1, 2)), 0)
			l.Close()
			l2 := openTest(t, "db", Config{FS: crashed.FS()})
			defer l2.Close()
			if l2.LastSeq() != seq {
				t.Fatalf("synced record lost in mode %s; last seq %d", mode, l2.LastSeq())
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"sync", "interval", "none"} {
		m, err := ParseMode(s)
		if err != nil || m.String() != s {
			t.Fatalf("unexpected mode for %q; got %v, %v", s, m, err)
		}
	}
	if _, err := ParseMode("fsync"); err == nil {
		t.Fatalf("expected an error for an unknown mode")
	}
}

// TestCrashKeepsAcknowledged appends from many goroutines on a crashable file
// system, crash-clones it at random moments and checks that every record
// acknowledged before the clone is present, in order, with intact contents.
func TestCrashKeepsAcknowledged(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 99))
		fs := NewCrashableFS()
		l := openTest(t, "db", Config{FS: fs.FS()})
		var mu sync.Mutex
		acked := map[uint64][]byte{}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					body := []byte(fmt.Sprintf("w%d-%d", w, i))
					seq := l.Append(&Record{Kind: 2, Entry: true, Account: fmt.Sprint("acct", w), Body: body})
					if err := l.Wait(seq); err != nil {
						return
					}
					mu.Lock()
					acked[seq] = body
					mu.Unlock()
				}
			}()
		}
		for {
			mu.Lock()
			if len(acked) >= 200+rng.IntN(300) {
				break // crash while holding mu: no acknowledgement can slip in
			}
			mu.Unlock()
			runtime.Gosched()
		}
		snapshot := make(map[uint64][]byte, len(acked))
		for k, v := range acked {
			snapshot[k] = v
		}
		crashed := fs.CrashClone(rng, rng.IntN(100))
		mu.Unlock()
		close(stop)
		wg.Wait()
		l.Close()

		l2 := openTest(t, "db", Config{FS: crashed.FS()})
		seen := map[uint64]bool{}
		var prev uint64
		err := l2.Replay(0, func(v RecordView) error {
			if v.Seq <= prev {
				return fmt.Errorf("sequence %d after %d", v.Seq, prev)
			}
			prev = v.Seq
			if want, ok := snapshot[v.Seq]; ok && !bytes.Equal(v.Body, want) {
				return fmt.Errorf("record %d body %q; want %q", v.Seq, v.Body, want)
			}
			seen[v.Seq] = true
			return nil
		})
		if err != nil {
			t.Fatalf("seed %d: cannot replay: %s", seed, err)
		}
		for seq := range snapshot {
			if !seen[seq] {
				t.Fatalf("seed %d: acknowledged record %d lost", seed, seq)
			}
		}
		l2.Close()
	}
}

// TestWaitSyncedAfterUnsyncedCommit is the regression test of a lost forced
// sync: in ModeNone and ModeInterval a record may already be committed
// without a sync when WaitSynced asks for one; the committer must then sync
// by itself instead of waiting for a next group that never comes.
func TestWaitSyncedAfterUnsyncedCommit(t *testing.T) {
	for _, mode := range []Mode{ModeNone, ModeInterval} {
		t.Run(mode.String(), func(t *testing.T) {
			l := openTest(t, t.TempDir(), Config{Mode: mode, Interval: time.Millisecond})
			defer l.Close()
			for i := range 50 {
				seq := l.Append(&Record{Kind: 1, Body: []byte{byte(i)}})
				// Let the committer commit the record unsynced first.
				for deadline := time.Now().Add(time.Second); ; {
					l.syncMu.Lock()
					committed := l.syncMu.committed
					l.syncMu.Unlock()
					if committed >= seq || time.Now().After(deadline) {
						break
					}
					runtime.Gosched()
				}
				done := make(chan error, 1)
				go func() { done <- l.WaitSynced(seq) }()
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("cannot wait: %s", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("WaitSynced(%d) hangs after an unsynced commit", seq)
				}
			}
		})
	}
}
