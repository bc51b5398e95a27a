package main

import (
	"context"
	"log"
	"sync"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/internal/testclock"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/proxy"
)

// jobRunner owns the background jobs: the hold sweeper, credit expiry,
// checkpoints, statement snapshots, call-record pruning and the free-disk
// check. stop ends them
// and waits.
type jobRunner struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func (j *jobRunner) every(d time.Duration, f func()) {
	if d <= 0 {
		return
	}
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-j.done:
				return
			case <-t.C:
				f()
			}
		}
	}()
}

// run runs f until the jobs stop: f returns when its context ends.
func (j *jobRunner) run(f func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	j.wg.Add(2)
	go func() {
		defer j.wg.Done()
		<-j.done
		cancel()
	}()
	go func() {
		defer j.wg.Done()
		f(ctx)
	}()
}

func (j *jobRunner) stop() {
	select {
	case <-j.done:
	default:
		close(j.done)
	}
	j.wg.Wait()
}

func startJobs(fc *fileConfig, l *ledger.Ledger, g *proxy.Gateway, logger *log.Logger) *jobRunner {
	j := &jobRunner{done: make(chan struct{})}
	j.every(time.Duration(fc.Ledger.SweepInterval), func() {
		if n, err := l.SweepHolds(testclock.Now().UnixNano(), g.Live); err != nil {
			logger.Printf("hold sweeper: %s", err)
		} else if n > 0 {
			logger.Printf("hold sweeper: voided %d holds older than %s", n, time.Duration(fc.Ledger.HoldTimeout))
		}
	})
	j.every(time.Duration(fc.Ledger.ExpiryInterval), func() {
		if n, err := l.Expire(testclock.Now().UnixNano()); err != nil {
			logger.Printf("expiry: %s", err)
		} else if n > 0 {
			logger.Printf("expiry: %d credits expired", n)
		}
	})
	lastCheckpoint := time.Now()
	checkEvery := 5 * time.Second
	if ci := time.Duration(fc.WAL.CheckpointInterval); ci > 0 && ci < checkEvery {
		checkEvery = ci
	}
	j.every(checkEvery, func() {
		pending := l.RecordsSinceCheckpoint()
		due := pending >= fc.WAL.CheckpointEveryRecords ||
			(pending > 0 && fc.WAL.CheckpointInterval > 0 && time.Since(lastCheckpoint) >= time.Duration(fc.WAL.CheckpointInterval))
		if !due {
			return
		}
		t := time.Now()
		if _, err := l.Checkpoint(); err != nil {
			logger.Printf("checkpoint: %s", err)
			return
		}
		lastCheckpoint = time.Now()
		logger.Printf("checkpoint: %d records covered in %s", pending, time.Since(t).Round(time.Millisecond))
	})
	j.every(time.Duration(fc.Ledger.StatementSnapshotInterval), func() {
		if n, err := l.SnapshotStatements(time.Now().UnixNano()); err != nil {
			logger.Printf("statement snapshots: %s", err)
		} else if n > 0 {
			logger.Printf("statement snapshots: %d accounts", n)
		}
	})
	j.every(time.Duration(fc.Ledger.SweepInterval), func() {
		if fc.CallRetention <= 0 {
			return
		}
		if n, err := l.PruneCalls(time.Now().Add(-time.Duration(fc.CallRetention)).UnixNano()); err != nil {
			logger.Printf("call pruning: %s", err)
		} else if n > 0 {
			logger.Printf("call pruning: %d call records older than %s removed", n, time.Duration(fc.CallRetention))
		}
	})
	if fc.WAL.MinFreeBytes > 0 {
		check := func() {
			var st syscall.Statfs_t
			if err := syscall.Statfs(fc.DataDir, &st); err == nil {
				free := st.Bavail * uint64(st.Bsize)
				if low := free < fc.WAL.MinFreeBytes; low != g.DiskLow() {
					g.SetDiskLow(low)
					logger.Printf("free disk %d bytes; new holds refused: %v", free, low)
				}
			}
		}
		check()
		j.every(5*time.Second, check)
	}
	return j
}
