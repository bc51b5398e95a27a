package ledger

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/wal"
)

// The process crash test: a child process (this test binary, re-run with
// crashChildEnv set) applies random operations in sync mode and prints each
// acknowledged one; the parent kills it with SIGKILL at a random moment,
// replays the directory itself, checks that every acknowledged operation is
// there exactly once and that Check passes, then starts the next child on the
// same directory.

const (
	crashChildEnv = "TOLLGATE_LEDGER_CRASH_CHILD_DIR"
	crashRunEnv   = "TOLLGATE_LEDGER_CRASH_RUN"
	crashAccounts = 4
)

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestProcessCrash")
	}
	run := os.Getenv(crashRunEnv)
	log, err := wal.Open(dir, wal.Config{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(log, Config{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range crashAccounts {
		if _, err := l.CreateAccount(AccountSpec{ID: fmt.Sprint("acct", i)}); err != nil && !strings.Contains(err.Error(), "exists") {
			t.Fatal(err)
		}
	}
	fmt.Println("ready")
	done := make(chan struct{})
	for w := range 8 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for i := 0; ; i++ {
				acct := fmt.Sprint("acct", rng.IntN(crashAccounts))
				if rng.IntN(5) == 0 {
					order := fmt.Sprintf("o-%s-%d-%d", run, w, i)
					if _, _, err := l.TopUp(TopUpRequest{Account: acct, Amount: 1000, OrderID: order, Credit: CreditPaid}); err != nil {
						panic(err)
					}
					fmt.Printf("topup %s %s\n", order, acct)
					continue
				}
				req := fmt.Sprintf("r-%s-%d-%d", run, w, i)
				c, err := l.Hold(acct, req, "k", int64(1+rng.IntN(300)))
				if err != nil {
					continue
				}
				if err := c.Wait(); err != nil {
					panic(err)
				}
				fmt.Printf("hold %s\n", req)
				if c, err = l.Settle(req, int64(rng.IntN(400)), nil); err != nil {
					panic(err)
				}
				if err := c.Wait(); err != nil {
					panic(err)
				}
				fmt.Printf("settle %s\n", req)
			}
		}()
	}
	<-done // killed by the parent
}

func TestProcessCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	kills := 20
	if os.Getenv("TOLLGATE_SOAK") != "" {
		kills = 200
	}
	dir := t.TempDir()
	deadline := time.Now().Add(40 * time.Second)
	orders := map[string]string{}
	holds := map[string]bool{}
	settles := map[string]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	for run := 0; run < kills; run++ {
		if time.Now().After(deadline) {
			t.Fatalf("only %d kills within the time bound", run)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprint(crashRunEnv, "=", run))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		if first := <-lines; first != "ready" {
			t.Fatalf("child %d did not start: %q", run, first)
		}
		kill := time.After(time.Duration(20+rng.IntN(200)) * time.Millisecond)
	read:
		for {
			select {
			case <-kill:
				_ = cmd.Process.Signal(syscall.SIGKILL)
				kill = nil
			case line, ok := <-lines:
				if !ok {
					break read
				}
				f := strings.Fields(line)
				if len(f) == 0 {
					continue
				}
				switch f[0] {
				case "topup":
					orders[f[1]] = f[2]
				case "hold":
					holds[f[1]] = true
				case "settle":
					settles[f[1]] = true
				}
			}
		}
		_ = cmd.Wait()
		verifyCrashDir(t, dir, orders, holds, settles)
	}
	t.Logf("%d kills; %d top-ups, %d holds, %d settlements acknowledged", kills, len(orders), len(holds), len(settles))
}

func verifyCrashDir(t *testing.T, dir string, orders map[string]string, holds, settles map[string]bool) {
	t.Helper()
	log, err := wal.Open(dir, wal.Config{})
	if err != nil {
		t.Fatalf("cannot reopen after kill: %s", err)
	}
	defer log.Close()
	l, err := Open(log, Config{Shards: 4})
	if err != nil {
		t.Fatalf("cannot replay after kill: %s", err)
	}
	mustCheck(t, l)
	for order, acct := range orders {
		if _, created, err := l.TopUp(TopUpRequest{Account: acct, Amount: 1000, OrderID: order, Credit: CreditPaid}); err != nil || created {
			t.Fatalf("acknowledged top-up %s lost: created=%v err=%v", order, created, err)
		}
	}
	settled := map[string]int{}
	var topups int64
	for i := range crashAccounts {
		entries, _, err := l.Entries(fmt.Sprint("acct", i), 0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			switch e.Kind {
			case EntrySettle:
				settled[e.RequestID]++
			case EntryTopUp:
				topups++
			}
		}
	}
	for req, n := range settled {
		if n != 1 {
			t.Fatalf("request %s settled %d times", req, n)
		}
	}
	open := map[string]bool{}
	for _, h := range l.OpenHolds() {
		open[h.RequestID] = true
	}
	for req := range settles {
		if settled[req] != 1 || open[req] {
			t.Fatalf("acknowledged settlement %s lost", req)
		}
	}
	for req := range holds {
		if settled[req] == 0 && !open[req] {
			t.Fatalf("acknowledged hold %s lost", req)
		}
	}
	if sum, _ := l.Check(); sum.TopUps != topups*1000 {
		t.Fatalf("top-up entries %d do not match the total %d", topups, sum.TopUps)
	}
}
