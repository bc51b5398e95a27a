package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/pgtest"
)

// TestClusterMeasure measures cluster mode against single-node mode in
// one run (BENCHMARKS.md): the gateway's CPU per call, lease renewals per
// 1,000 calls and throughput, with 1, 2 and 3 nodes on the default lease
// settings, all nodes forwarding to one simulator process. It is a
// measurement, not a test: it runs only with TOLLGATE_CLUSTER_BENCH=1 and
// asserts nothing about speed.
func TestClusterMeasure(t *testing.T) {
	duration := optInDuration(t, "TOLLGATE_CLUSTER_BENCH", 8*time.Second)
	upstream := startSimulator(t)
	single := measureNodes(t, upstream, 0, duration)
	t.Logf("%-12s %8s %10s %14s %18s", "mode", "calls/s", "CPU/call", "vs single", "renewals/1k calls")
	t.Logf("%-12s %8.0f %10s %14s %18s", "single node", single.rate(), single.cpuPerCall(), "1.00×", "-")
	for nodes := 1; nodes <= 3; nodes++ {
		m := measureNodes(t, upstream, nodes, duration)
		t.Logf("%-12s %8.0f %10s %13.2f× %18.2f", fmt.Sprintf("cluster × %d", nodes), m.rate(), m.cpuPerCall(),
			float64(m.cpu)/float64(m.calls)/(float64(single.cpu)/float64(single.calls)), float64(m.renewals)*1000/float64(m.calls))
	}
}

// measurement is one configuration's run.
type measurement struct {
	calls, renewals int64
	cpu             time.Duration // the nodes' user + system time
	elapsed         time.Duration
}

func (m measurement) rate() float64 { return float64(m.calls) / m.elapsed.Seconds() }

func (m measurement) cpuPerCall() time.Duration {
	return (m.cpu / time.Duration(max(m.calls, 1))).Round(time.Microsecond)
}

// measureNodes runs 8 clients per node (8 in all for single-node mode,
// nodes == 0) for d and measures.
func measureNodes(t *testing.T, upstream string, nodes int, d time.Duration) measurement {
	var procs []*gatewayProcess
	var c *testCluster
	if nodes == 0 {
		procs = append(procs, startGateway(t, t.TempDir(), "--upstream-url", upstream))
	} else {
		c = newBenchCluster(t, upstream, nodes)
		procs = c.nodes
	}
	key := procs[0].setupAccount(fmt.Sprintf("acct_%d", nodes), "100000")
	time.Sleep(200 * time.Millisecond) // the key reaches every node
	var before int64
	if c != nil {
		before = c.renewals()
	}
	cpu0 := processesCPU(t, procs)
	start := time.Now()
	if path := os.Getenv("TOLLGATE_CLUSTER_BENCH_CPUPROFILE"); path != "" && nodes == 1 {
		go profileTo(t, procs[0], path, d/2) // the cluster node's profile, over half the run
	}
	var calls atomic.Int64
	var wg sync.WaitGroup
	for _, p := range procs {
		for range max(8/len(procs), 2) {
			wg.Go(func() {
				for time.Since(start) < d {
					if _, ok := streamOnce(p, key, callBody); ok {
						calls.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	m := measurement{calls: calls.Load(), elapsed: time.Since(start), cpu: processesCPU(t, procs) - cpu0}
	if c != nil {
		m.renewals = c.renewals() - before
	}
	return m
}

// newBenchCluster is a cluster on the default lease settings forwarding
// to upstream.
func newBenchCluster(t *testing.T, upstream string, nodes int) *testCluster {
	c := &testCluster{t: t, primary: pgtest.StartPrimary(t)}
	c.standby = c.primary.StartStandby("s1")
	c.dsn = fmt.Sprintf("postgres://tollgate@127.0.0.1:%d/tollgate?sslmode=disable", c.primary.Port)
	c.config = "../../configs/tollgate.yaml"
	for range nodes {
		c.nodes = append(c.nodes, startGatewayBin(t, tollgateBin, []string{"PGPASSWORD=" + pgtest.Password}, t.TempDir(),
			"--cluster-dsn", c.dsn, "--upstream-url", upstream))
	}
	c.pool = connectPool(t, c.dsn)
	return c
}

// startSimulator runs `tollgate simulator` as its own process and returns
// its URL.
func startSimulator(t *testing.T) string {
	addr := freeAddr(t)
	cmd := exec.Command(tollgateBin, "simulator", "--listen", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "http://" + addr
	eventually(t, 10*time.Second, "the simulator listens", func() bool {
		_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid)))
		return err == nil && dialable(addr)
	})
	return url
}

// processesCPU is the user + system time the processes have used.
func processesCPU(t *testing.T, procs []*gatewayProcess) time.Duration {
	var total time.Duration
	for _, p := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		// Fields after the command's closing parenthesis: utime and stime
		// are the 12th and 13th, in clock ticks (100 a second on Linux).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(utime+stime) * 10 * time.Millisecond
	}
	return total
}

// profileTo writes n's CPU profile over d to path (go tool pprof).
func profileTo(t *testing.T, n *gatewayProcess, path string, d time.Duration) {
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", n.admin, max(int(d.Seconds()), 1)), nil)
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Log(err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Log(err)
	}
}
