package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tollgate/tollgate/internal/money"
	"github.com/tollgate/tollgate/internal/pgtest"
)

// testCluster is gateway nodes in cluster mode on one PostgreSQL primary
// with a synchronous standby, all on loopback.
type testCluster struct {
	t                *testing.T
	primary, standby *pgtest.Server
	config, dsn      string
	nodes            []*gatewayProcess
	pool             *pgxpool.Pool
}

// clusterLeases are the short form's lease settings: 1 s leases renewed
// every 250 ms, so expiries happen within the test's time.
const clusterLeases = `
cluster:
  lease_ttl: 1s
  renew_interval: 250ms
  lease_margin: 300ms
  lease_share_percent: 25
  min_lease: "0.01"
  grant_wait: 2s
  connect_timeout: 30s
`

// newTestCluster starts PostgreSQL and nodes on it, the configuration
// being the default's with the short leases and then each edit.
func newTestCluster(t *testing.T, nodes int, edits ...func(config string) string) *testCluster {
	t.Helper()
	skipProcessTestIfShort(t)
	c := &testCluster{t: t, primary: pgtest.StartPrimary(t)}
	c.standby = c.primary.StartStandby("s1")
	c.dsn = fmt.Sprintf("postgres://tollgate@127.0.0.1:%d,127.0.0.1:%d/tollgate?sslmode=disable&target_session_attrs=read-write&connect_timeout=2",
		c.primary.Port, c.standby.Port)
	base, err := os.ReadFile("../../configs/tollgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(base), "catalogue: models.yaml", "catalogue: "+mustAbs(t, "../../configs/models.yaml"), 1)
	cfg = cfg[:strings.Index(cfg, "\ncluster:")] + clusterLeases + cfg[strings.Index(cfg, "\n# A customer may dispute"):]
	for _, edit := range edits {
		cfg = edit(cfg)
	}
	c.config = filepath.Join(t.TempDir(), "tollgate.yaml")
	if err := os.WriteFile(c.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for range nodes { // 0: the test starts its own
		c.nodes = append(c.nodes, c.start(t.TempDir()))
	}
	c.pool = connectPool(t, c.dsn)
	return c
}

// connectPool is the test's own connection to the cluster's database.
func connectPool(t *testing.T, dsn string) *pgxpool.Pool {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pc.ConnConfig.Password = pgtest.Password
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// dialable reports whether something accepts connections at addr.
func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// start starts a node on dataDir (a restart when it held one before).
func (c *testCluster) start(dataDir string) *gatewayProcess {
	return c.startWith(dataDir, c.dsn)
}

// startWith starts a node on dataDir reaching PostgreSQL at dsn.
func (c *testCluster) startWith(dataDir, dsn string) *gatewayProcess {
	return startGatewayBin(c.t, tollgateBin, []string{"PGPASSWORD=" + pgtest.Password}, dataDir, "--config", c.config, "--cluster-dsn", dsn)
}

// callBody is a small streaming call (the built-in simulator answers it).
const callBody = `{"model":"claude-haiku-4-5","max_tokens":40,"stream":true,"messages":[{"role":"user","content":"hello"}]}`

// load runs clients on every node's client API with key until stop is set
// or, when giveUp, each has been refused 5 times in a row (waiting 50 ms
// between), and returns the calls completed.
func (c *testCluster) load(key string, clientsPerNode int, giveUp bool, stop *atomic.Bool) int64 {
	var done atomic.Int64
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		for range clientsPerNode {
			wg.Go(func() {
				for refused := 0; (refused < 5 || !giveUp) && !stop.Load(); {
					if _, ok := streamOnce(n, key, callBody); ok {
						done.Add(1)
						refused = 0
						continue
					}
					refused++
					time.Sleep(50 * time.Millisecond)
				}
			})
		}
	}
	wg.Wait()
	return done.Load()
}

// clientGet is GET path on a node's client API with key.
func clientGet(t *testing.T, n *gatewayProcess, key, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+n.client+path, nil)
	req.Header.Set("x-api-key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// callsCharged sums the charges of account's call records as node n lists
// them (in cluster mode: every node's, shipped to PostgreSQL).
func callsCharged(t *testing.T, n *gatewayProcess, account string) (charged int64, calls int) {
	t.Helper()
	cursor := ""
	for {
		st, out := n.adminDo("GET", "/admin/v1/calls?limit=1000&account="+account+cursor, "")
		if st != 200 {
			t.Fatalf("calls: %d %v", st, out)
		}
		for _, c := range out["data"].([]any) {
			charged += mustCredits(t, c.(map[string]any)["charged"].(string))
			calls++
		}
		next, _ := out["next_cursor"].(string)
		if next == "" {
			return charged, calls
		}
		cursor = "&cursor=" + next
	}
}

// settled waits until PostgreSQL's charged total for account (the nodes'
// usage reports) equals the charges of the call records the nodes shipped
// (two paths from the nodes' WALs), and every node lists the same calls;
// it returns the total.
func (c *testCluster) settled(account string) int64 {
	c.t.Helper()
	var nodes int64
	settledAt := int64(-1)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var calls int
		nodes, calls = callsCharged(c.t, c.nodes[0], account)
		for _, n := range c.nodes[1:] {
			if ch, k := callsCharged(c.t, n, account); ch != nodes || k != calls {
				nodes = -1 // not shipped everywhere yet
			}
		}
		var pg int64
		if err := c.pool.QueryRow(context.Background(), `SELECT charged FROM tg_accounts WHERE id = $1`, account).Scan(&pg); err != nil {
			c.t.Fatal(err)
		}
		// Equal, and still so after longer than a shipping interval and a
		// renewal interval: both paths have caught up, not merely met.
		if pg == nodes && pg == settledAt {
			return pg
		}
		settledAt = -1
		if pg == nodes {
			settledAt = pg
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("PostgreSQL has %s charged to %s, the nodes' call records %s", money.Format(pg), account, money.Format(nodes))
		}
		time.Sleep(600 * time.Millisecond)
	}
}

// sameBalance checks every node answers the same balance for key.
func (c *testCluster) sameBalance(key string) map[string]any {
	c.t.Helper()
	var first map[string]any
	for i, n := range c.nodes {
		st, b := clientGet(c.t, n, key, "/v1/balance")
		if st != 200 {
			c.t.Fatalf("node %d balance: %d %v", i, st, b)
		}
		if first == nil {
			first = b
		} else if fmt.Sprint(b) != fmt.Sprint(first) {
			c.t.Fatalf("node %d reads %v, node 0 %v", i, b, first)
		}
	}
	return first
}

// sameStatement waits until every node's statement of account (the admin
// API's and the customer's) is the same and charges charged, the shipped
// settlements having reached PostgreSQL.
func (c *testCluster) sameStatement(key, account string, charged int64) {
	c.t.Helper()
	period := "?from=2026-01-01T00:00:00Z&to=2030-01-01T00:00:00Z"
	eventually(c.t, 10*time.Second, "the same statement on every node", func() bool {
		var first string
		for _, n := range c.nodes {
			st, admin := n.adminDo("GET", "/admin/v1/accounts/"+account+"/statement"+period, "")
			cst, customer := clientGet(c.t, n, key, "/v1/statement"+period)
			if st != 200 || cst != 200 || fmt.Sprint(admin) != fmt.Sprint(customer) {
				c.t.Fatalf("statements: admin %d %v, customer %d %v", st, admin, cst, customer)
			}
			var sum int64
			for _, ch := range admin["charges"].([]any) {
				sum += mustCredits(c.t, ch.(map[string]any)["amount"].(string))
			}
			if sum != charged || (first != "" && fmt.Sprint(admin) != first) {
				return false
			}
			first = fmt.Sprint(admin)
		}
		return true
	})
}

func (c *testCluster) renewals() int64 {
	var n int64
	if err := c.pool.QueryRow(context.Background(), `SELECT coalesce(sum(renewals), 0)::bigint FROM tg_leases`).Scan(&n); err != nil {
		c.t.Fatal(err)
	}
	return n
}

// check runs `tollgate verify --cluster-dsn` on PostgreSQL's books.
func (c *testCluster) check() {
	c.t.Helper()
	cmd := exec.Command(tollgateBin, "verify", "--cluster-dsn", c.dsn)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PGPASSWORD=" + pgtest.Password}
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		c.t.Fatalf("tollgate verify --cluster-dsn: %v\n%s", err, out)
	}
}

// TestClusterNodesShareTheBooks: three nodes on one PostgreSQL (with a
// synchronous standby) serve the same accounts. A key made on one node
// works on the others at once; one order ID sent to three nodes for three
// accounts at once credits once; an account drained from all three nodes
// is never overspent and every node reads the same balance; a node killed
// (-9) under load and restarted reports its usage, and PostgreSQL's charges
// equal the call records of all nodes.
func TestClusterNodesShareTheBooks(t *testing.T) {
	c := newTestCluster(t, 3)
	a, b := c.nodes[0], c.nodes[1]
	key := a.setupAccount("acct_drain", "0.02")
	t0 := time.Now()
	for {
		if _, ok := streamOnce(c.nodes[2], key, callBody); ok {
			break
		}
		if time.Since(t0) > 2*time.Second {
			t.Fatal("a key made on node 0 does not work on node 2 after 2 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("a key made on node 0 served a call on node 2 after %s", time.Since(t0).Round(time.Millisecond))

	// An operator and its API token made on node 0 work on node 2; the
	// token revoked on node 1 stops working on node 0.
	if st, out := a.adminDo("POST", "/admin/v1/operators", `{"id":"fin","role":"finance"}`); st != 201 {
		t.Fatalf("operator: %d %v", st, out)
	}
	_, tok := a.adminDo("POST", "/admin/v1/operators/fin/tokens", "")
	finance := &gatewayProcess{t: t, admin: c.nodes[2].admin, token: tok["token"].(string)}
	eventually(t, 3*time.Second, "the operator's token on another node", func() bool {
		st, _ := finance.adminDo("GET", "/admin/v1/accounts/acct_drain", "")
		return st == 200
	})
	if st, _ := b.adminDo("DELETE", "/admin/v1/operator-tokens/"+tok["id"].(string), ""); st != 204 {
		t.Fatalf("revoking the token: %d", st)
	}
	finance.admin = a.admin
	eventually(t, 3*time.Second, "the revoked token refused on another node", func() bool {
		st, _ := finance.adminDo("GET", "/admin/v1/accounts/acct_drain", "")
		return st == 401
	})

	for i := range 3 {
		if st, out := c.nodes[i].adminDo("POST", "/admin/v1/accounts", fmt.Sprintf(`{"id":"acct_order_%d"}`, i)); st != 201 {
			t.Fatalf("create: %d %v", st, out)
		}
	}
	var created atomic.Int64
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() {
			st, _ := n.adminDo("POST", fmt.Sprintf("/admin/v1/accounts/acct_order_%d/topups", i), `{"amount":"5","order_id":"ord_everywhere","kind":"paid"}`)
			if st == 201 {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("one order ID on three nodes for three accounts credited %d times", created.Load())
	}

	var never atomic.Bool
	served := c.load(key, 4, true, &never) + 1
	charged := c.settled("acct_drain")
	bal := c.sameBalance(key)
	available := mustCredits(t, bal["available"].(string))
	t.Logf("drain: %d calls served from 3 nodes, %s of 0.02 credits charged, %s available", served, money.Format(charged), money.Format(available))
	if charged > 20_000_000 || available < 0 {
		t.Fatalf("overspent: %s charged of 0.02, available %s", money.Format(charged), money.Format(available))
	}
	c.sameStatement(key, "acct_drain", charged)

	// A call served by node 2 is refunded through node 0's admin API.
	_, out := c.nodes[2].adminDo("GET", "/admin/v1/calls?limit=100&account=acct_drain", "")
	var requestID string
	for _, call := range out["data"].([]any) {
		if call := call.(map[string]any); call["charged"] != "0" {
			requestID = call["request_id"].(string)
		}
	}
	if st, out := a.adminDo("POST", "/admin/v1/adjustments", `{"account":"acct_drain","amount":"0.001","reason":"refund","request_id":"`+requestID+`"}`); st != 201 {
		t.Fatalf("a refund naming a call another node served: %d %v", st, out)
	}
	// The customer disputes the call on node 1, an operator accepts on
	// node 2, the customer sees the outcome and the refund on node 0.
	before := mustCredits(t, c.sameBalance(key)["available"].(string))
	req, _ := http.NewRequest("POST", "http://"+b.client+"/v1/disputes", strings.NewReader(`{"request_id":"`+requestID+`","reason":"wrong","dispute_id":"dsp_1"}`))
	req.Header.Set("x-api-key", key)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("filing a dispute: %v %v", resp, err)
	}
	st, accepted := c.nodes[2].adminDo("POST", "/admin/v1/disputes/dsp_1/accept", `{}`)
	if st != 200 || accepted["state"] != "accepted" {
		t.Fatalf("accepting on another node: %d %v", st, accepted)
	}
	refund := mustCredits(t, accepted["refund"].(string))
	if st, list := clientGet(t, a, key, "/v1/disputes"); st != 200 || fmt.Sprint(list["data"]) == "[]" ||
		list["data"].([]any)[0].(map[string]any)["state"] != "accepted" {
		t.Fatalf("the customer's disputes on node 0: %d %v", st, list)
	}
	if after := mustCredits(t, c.sameBalance(key)["available"].(string)); after != before+refund || refund <= 0 {
		t.Fatalf("the refund %s moved the balance from %s to %s", money.Format(refund), money.Format(before), money.Format(after))
	}

	steadyKey := b.setupAccount("acct_steady", "1000")
	var stop atomic.Bool
	before, done := c.renewals(), make(chan int64)
	go func() { done <- c.load(steadyKey, 2, true, &stop) }()
	time.Sleep(1500 * time.Millisecond)
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = b.waitExit(5 * time.Second)
	c.nodes[1] = c.start(b.dataDir)
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	calls := <-done
	renewed := c.renewals() - before
	charged = c.settled("acct_steady")
	c.sameBalance(steadyKey)
	t.Logf("steady load with a kill -9: %d calls, %d lease renewals (%.1f per 1,000 calls), %s charged",
		calls, renewed, float64(renewed)*1000/float64(max(calls, 1)), money.Format(charged))
	c.check()

	// A key's limit of 6 requests a minute is shared by the 3 live nodes:
	// 2 each, 6 across the cluster.
	st, out = a.adminDo("POST", "/admin/v1/accounts/acct_steady/keys", `{"name":"limited","rpm":6}`)
	if st != 201 {
		t.Fatalf("key: %d %v", st, out)
	}
	limited := out["key"].(string)
	time.Sleep(100 * time.Millisecond) // the key reaches every node
	served = 0
	for _, n := range c.nodes {
		for range 4 {
			if callStatus(n, limited) == 200 {
				served++
			}
		}
	}
	if served != 6 {
		t.Fatalf("a key limited to 6 requests a minute made %d across 3 nodes", served)
	}
}

// callStatus makes one streaming call and returns the status the client
// got (0 when the connection failed).
func callStatus(n *gatewayProcess, key string) int {
	req, _ := http.NewRequest("POST", "http://"+n.client+"/v1/messages", strings.NewReader(callBody))
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// eventually retries fn (every 100 ms, up to d) until it reports true; on
// failure it shows the end of each of logs' output.
func eventually(t *testing.T, d time.Duration, what string, fn func() bool, logs ...*gatewayProcess) time.Duration {
	t.Helper()
	start := time.Now()
	for !fn() {
		if time.Since(start) > d {
			var tails strings.Builder
			for _, n := range logs {
				lines := strings.Split(n.stderr.String(), "\n")
				fmt.Fprintf(&tails, "\n--- %s:\n%s", n.admin, strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
			t.Fatalf("%s: not within %s%s", what, d, tails.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// TestClusterSurvivesFailures: a node stopped (SIGSTOP) past its lease's
// expiry stops spending it when it wakes, and serves again on a new lease;
// when PostgreSQL's primary dies and its synchronous standby is promoted,
// no acknowledged top-up is lost and the nodes carry on (the DSN lists both
// hosts); while no PostgreSQL can be reached, a node serves from its
// leases until their local deadline and then answers 503, and it reports
// what it served once PostgreSQL is back. The books balance after each.
func TestClusterSurvivesFailures(t *testing.T) {
	c := newTestCluster(t, 2)
	a, b := c.nodes[0], c.nodes[1]
	key := a.setupAccount("acct", "1000")
	var stop atomic.Bool
	done := make(chan int64)
	go func() { done <- c.load(key, 2, false, &stop) }()

	time.Sleep(500 * time.Millisecond)
	_ = b.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(1500 * time.Millisecond) // past the 1 s lease
	_ = b.cmd.Process.Signal(syscall.SIGCONT)
	eventually(t, 5*time.Second, "the node woken up serves again", func() bool { return callStatus(b, key) == 200 }, b)

	if st, out := a.adminDo("POST", "/admin/v1/accounts/acct/topups", `{"amount":"7","order_id":"ord_before_failover","kind":"paid"}`); st != 201 {
		t.Fatalf("top-up: %d %v", st, out)
	}
	c.primary.Kill()
	c.standby.Promote()
	took := eventually(t, 20*time.Second, "a top-up after the promotion", func() bool {
		st, _ := a.tryAdminDo("POST", "/admin/v1/accounts/acct/topups", `{"amount":"1","order_id":"ord_after_failover","kind":"paid"}`)
		return st == 201
	}, a)
	t.Logf("the first top-up after the promotion was acknowledged %s after it", took.Round(time.Millisecond))
	var found int
	if err := c.pool.QueryRow(context.Background(), `SELECT count(*) FROM tg_journal WHERE order_id = 'ord_before_failover'`).Scan(&found); err != nil || found != 1 {
		t.Fatalf("the top-up acknowledged before the failover: %d rows on the new primary (%v)", found, err)
	}

	time.Sleep(2 * time.Second) // the leases renewed on the new primary
	c.standby.Kill()            // no PostgreSQL at all now
	lapsed := eventually(t, 10*time.Second, "calls refused with 503 once the leases lapse", func() bool { return callStatus(a, key) == 503 }, a)
	t.Logf("with PostgreSQL unreachable, node 0 served from its lease for %s, then answered 503", lapsed.Round(time.Millisecond))
	c.standby.Start()
	eventually(t, 20*time.Second, "calls served again once PostgreSQL is back", func() bool { return callStatus(a, key) == 200 }, a)
	stop.Store(true)
	calls := <-done
	charged := c.settled("acct")
	c.sameBalance(key)
	t.Logf("%d calls through the failures, %s charged", calls, money.Format(charged))
	c.check()
}

// nodeIDOf is the node identity a gateway logged at start.
func nodeIDOf(t *testing.T, n *gatewayProcess) string {
	_, rest, ok := strings.Cut(n.stderr.String(), "cluster: node ")
	id, _, _ := strings.Cut(rest, ";")
	if !ok || !strings.HasPrefix(id, "node-") {
		t.Fatalf("no node identity in the log:\n%s", n.stderr.String())
	}
	return id
}

// cuttableProxy forwards TCP connections to a target until cut: then it
// closes every connection and refuses new ones, as a network partition
// between a node and PostgreSQL would.
type cuttableProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func newCuttableProxy(t *testing.T, target string) *cuttableProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go p.serve()
	return p
}

func (p *cuttableProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		p.mu.Lock()
		if err != nil || p.cut {
			p.mu.Unlock()
			in.Close()
			if out != nil {
				out.Close()
			}
			continue
		}
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); out.Close() }()
		go func() { _, _ = io.Copy(in, out); in.Close() }()
	}
}

// setCut cuts (closing every connection) or restores the link.
func (p *cuttableProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestClusterNodeCutOff: the overspend bound, shown. Node 0 reaches
// PostgreSQL through a link the test cuts while both nodes drain an
// account. Node 0 goes on spending its lease until its local deadline
// (then 503), PostgreSQL frees the lease when it expires and node 1 spends
// the rest; when the link is back node 0 reports late. What the cluster
// charged beyond the credit is at most what node 0's lease still held when
// the link was cut, and the books balance.
func TestClusterNodeCutOff(t *testing.T) {
	c := newTestCluster(t, 0)
	link := newCuttableProxy(t, fmt.Sprintf("127.0.0.1:%d", c.primary.Port))
	viaLink := fmt.Sprintf("postgres://tollgate@%s/tollgate?sslmode=disable&connect_timeout=2", link.ln.Addr())
	dir0 := t.TempDir()
	c.nodes = []*gatewayProcess{c.startWith(dir0, viaLink), c.start(t.TempDir())}
	a := c.nodes[0]
	key := a.setupAccount("acct", "0.05")
	node0 := nodeIDOf(t, a)
	var never atomic.Bool
	done := make(chan int64)
	go func() { done <- c.load(key, 3, true, &never) }()
	var outstanding int64
	eventually(t, 5*time.Second, "node 0 holds a lease", func() bool {
		err := c.pool.QueryRow(context.Background(), `SELECT greatest(granted - reported, 0) FROM tg_leases
			WHERE account = 'acct' AND node = $1 AND expires_at > tg_now()`, node0).Scan(&outstanding)
		return err == nil && outstanding > 0
	})
	link.setCut(true)
	var lastOutstanding int64
	_ = c.pool.QueryRow(context.Background(), `SELECT greatest(granted - reported, 0) FROM tg_leases WHERE account = 'acct' AND node = $1`,
		node0).Scan(&lastOutstanding)
	calls := <-done
	link.setCut(false)
	charged := c.settled("acct")
	over := charged - 50_000_000
	t.Logf("%d calls; node 0's lease held %s when cut; charged %s of 0.05 credits (over by %s)",
		calls, money.Format(lastOutstanding), money.Format(charged), money.Format(max(over, 0)))
	if over > lastOutstanding {
		t.Fatalf("overspent by %s, beyond node 0's lease of %s when it was cut off", money.Format(over), money.Format(lastOutstanding))
	}
	c.check()
}

// TestClusterSoak is the long form of the fault tests, behind a flag
// (TOLLGATE_CLUSTER_SOAK=1; TOLLGATE_CLUSTER_SOAK_DURATION, default 2m):
// three nodes under load and top-ups through every node, with a fault
// every few seconds (a node killed -9 and restarted, a node stopped past
// its lease and continued; once, the primary killed and the standby
// promoted). At the end PostgreSQL's charges equal every node's call
// records, every node reads the same balance and statement, and the books
// balance.
func TestClusterSoak(t *testing.T) {
	duration := optInDuration(t, "TOLLGATE_CLUSTER_SOAK", 2*time.Minute)
	c := newTestCluster(t, 3)
	key := c.nodes[0].setupAccount("acct", "10")
	var stop atomic.Bool
	done := make(chan int64)
	go func() { done <- c.load(key, 2, false, &stop) }()
	var topUps atomic.Int64
	go func() {
		for i := 0; !stop.Load(); i++ {
			n := c.nodes[i%3]
			if st, err := n.tryAdminDo("POST", "/admin/v1/accounts/acct/topups", fmt.Sprintf(`{"amount":"0.01","order_id":"soak_%d","kind":"paid"}`, i/2)); err == nil && st == 201 {
				topUps.Add(1)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	failedOver := false
	for start, i := time.Now(), 0; time.Since(start) < duration; i++ {
		time.Sleep(3 * time.Second)
		victim := i % 3
		switch {
		case !failedOver && time.Since(start) > duration/2:
			t.Logf("%s: the primary killed, the standby promoted", time.Since(start).Round(time.Second))
			c.primary.Kill()
			c.standby.Promote()
			failedOver = true
		case i%2 == 0:
			t.Logf("%s: node %d killed -9 and restarted", time.Since(start).Round(time.Second), victim)
			n := c.nodes[victim]
			_ = n.cmd.Process.Signal(syscall.SIGKILL)
			_ = n.waitExit(5 * time.Second)
			c.nodes[victim] = c.start(n.dataDir)
		default:
			t.Logf("%s: node %d stopped for 1.5 s", time.Since(start).Round(time.Second), victim)
			_ = c.nodes[victim].cmd.Process.Signal(syscall.SIGSTOP)
			time.Sleep(1500 * time.Millisecond)
			_ = c.nodes[victim].cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	stop.Store(true)
	calls := <-done
	charged := c.settled("acct")
	c.sameBalance(key)
	c.sameStatement(key, "acct", charged)
	t.Logf("%d calls, %d top-ups acknowledged (each order ID sent twice, to two nodes), %s charged", calls, topUps.Load(), money.Format(charged))
	var credited int64
	if err := c.pool.QueryRow(context.Background(), `SELECT count(*) FROM tg_journal WHERE account = 'acct' AND kind = 'topup'`).Scan(&credited); err != nil {
		t.Fatal(err)
	}
	if credited != topUps.Load()+1 {
		t.Fatalf("%d top-ups in the journal, %d acknowledged (+1 at setup)", credited, topUps.Load())
	}
	// Notifications went on through the faults: one topup.received event
	// per credited top-up, none twice, as any node shows the outbox.
	eventually(t, 15*time.Second, "one notification per top-up", func() bool {
		return topUpEvents(t, c.nodes[0]) == credited
	}, c.nodes...)
	c.check()
}

// topUpEvents counts the topup.received events of the outbox as node n
// shows them (distinct IDs; -1 if one repeats).
func topUpEvents(t *testing.T, n *gatewayProcess) int64 {
	t.Helper()
	st, out := n.adminDo("GET", "/admin/v1/notifications/events?limit=1000", "")
	if st != 200 {
		return -1
	}
	seen := map[string]bool{}
	for _, e := range out["data"].([]any) {
		ev := e.(map[string]any)
		if ev["type"] != "topup.received" {
			continue
		}
		if seen[ev["id"].(string)] {
			return -1
		}
		seen[ev["id"].(string)] = true
	}
	return int64(len(seen))
}

func TestDSNHasPassword(t *testing.T) {
	for dsn, want := range map[string]bool{
		"postgres://tollgate@db1,db2/tollgate?target_session_attrs=read-write": false,
		"postgres://tollgate:secret@db/tollgate":                               true,
		"postgresql://tollgate@db/tollgate?password=secret":                    true,
		"host=db user=tollgate dbname=tollgate":                                false,
		"host=db user=tollgate password=secret":                                true,
	} {
		if got := dsnHasPassword(dsn); got != want {
			t.Errorf("%q: %v, want %v", dsn, got, want)
		}
	}
}

// TestLeaseSettings: the file's lease settings become the nodes', and
// amounts that are not credits are refused.
func TestLeaseSettings(t *testing.T) {
	good := clusterConfig{MinLease: "0.5", FailOpenBudget: "0.25"}
	lc, err := good.leaseConfig()
	if err != nil || lc.Min != 500_000_000 || lc.FailOpen != 250_000_000 {
		t.Fatalf("%+v %v", lc, err)
	}
	for _, bad := range []clusterConfig{{MinLease: "0"}, {MinLease: "lots"}, {FailOpenBudget: "-1"}, {FailOpenBudget: "x"}} {
		if _, err := bad.leaseConfig(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// optInDuration skips a long run unless the environment variable gate is
// 1, and returns how long it runs: gate_DURATION, else def.
func optInDuration(t *testing.T, gate string, def time.Duration) time.Duration {
	if os.Getenv(gate) != "1" {
		t.Skipf("a long run: %s=1 runs it", gate)
	}
	if d, err := time.ParseDuration(os.Getenv(gate + "_DURATION")); err == nil {
		return d
	}
	return def
}

// serveOnce runs a node on dataDir that is expected to refuse to start,
// and returns its output.
func (c *testCluster) serveOnce(dataDir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tollgateBin, "serve", "--data-dir", dataDir, "--listen", freeAddr(c.t), "--admin-listen", freeAddr(c.t),
		"--config", c.config, "--cluster-dsn", c.dsn)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TOLLGATE_ADMIN_TOKEN=test-admin-token", "PGPASSWORD=" + pgtest.Password}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestClusterRestoredNodeRefused: a node's data directory restored from a
// backup taken before it served (and reported) more is behind PostgreSQL;
// started on it, the node refuses to serve, rather than leave the charges
// up to what it had reported unreported; started while the node still
// runs, it is refused as a second process of one node.
func TestClusterRestoredNodeRefused(t *testing.T) {
	c := newTestCluster(t, 1)
	a := c.nodes[0]
	key := a.setupAccount("acct", "10")
	backup := filepath.Join(t.TempDir(), "backup")
	if st, out := a.adminDo("POST", "/admin/v1/backup", `{"dir":"`+backup+`"}`); st/100 != 2 {
		t.Fatalf("backup: %d %v", st, out)
	}
	// The copy started while the node runs: two processes would be one node.
	if out, err := c.serveOnce(backup); err == nil || !strings.Contains(out, "another process is serving as this node") {
		t.Fatalf("a copy of a running node's data directory: %v\n%s", err, out)
	}
	for range 20 {
		if _, ok := streamOnce(a, key, callBody); !ok {
			t.Fatal("a call failed")
		}
	}
	c.settled("acct")
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	_ = a.waitExit(5 * time.Second)

	if out, err := c.serveOnce(backup); err == nil || !strings.Contains(out, "behind what it reported") {
		t.Fatalf("a node restored from a backup: %v\n%s", err, out)
	}
	c.check()

	// verify finds books tampered with.
	c.primary.Psql("tollgate", "UPDATE tg_accounts SET charged = charged + 1 WHERE id = 'acct'")
	verify := exec.Command(tollgateBin, "verify", "--cluster-dsn", c.dsn)
	verify.Env = []string{"PATH=" + os.Getenv("PATH"), "PGPASSWORD=" + pgtest.Password}
	if out, err := verify.CombinedOutput(); err == nil || !strings.Contains(string(out), "FAILED") {
		t.Fatalf("verify of tampered books: %v\n%s", err, out)
	}
}

// TestClusterFailOpen: with a fail-open budget, a node cut off from
// PostgreSQL serves an account past its lease's lapse on that budget, once,
// logs an ALERT and meters it, then answers 503; once PostgreSQL is back
// it reports that usage and the books balance.
func TestClusterFailOpen(t *testing.T) {
	c := newTestCluster(t, 0, func(cfg string) string {
		return strings.Replace(cfg, "  connect_timeout: 30s\n", "  connect_timeout: 30s\n  fail_open_budget: \"0.01\"\n", 1)
	})
	link := newCuttableProxy(t, fmt.Sprintf("127.0.0.1:%d", c.primary.Port))
	viaLink := fmt.Sprintf("postgres://tollgate@%s/tollgate?sslmode=disable&connect_timeout=2", link.ln.Addr())
	c.nodes = []*gatewayProcess{c.startWith(t.TempDir(), viaLink)}
	a := c.nodes[0]
	key := a.setupAccount("acct", "10")
	for range 5 {
		if _, ok := streamOnce(a, key, callBody); !ok {
			t.Fatal("a call before the cut failed")
		}
	}
	link.setCut(true)
	time.Sleep(1500 * time.Millisecond) // past the lease's local deadline (1 s - 0.3 s)
	served, refused := 0, 0
	for range 5000 { // about 1,400 calls spend 0.01 credits
		if _, ok := streamOnce(a, key, callBody); ok {
			served++
			continue
		}
		if refused++; refused == 3 {
			break
		}
	}
	if served == 0 || refused < 3 {
		t.Fatalf("cut off past the lease: %d calls served on fail-open credit, %d refused; want some, then 503", served, refused)
	}
	if !strings.Contains(a.stderr.String(), "ALERT cluster: PostgreSQL cannot be reached") {
		t.Fatal("no ALERT logged for fail-open credit")
	}
	if st, body := a.metrics(); st != 200 || !strings.Contains(body, "tollgate_cluster_fail_open_nanos_total 10000000") {
		t.Fatalf("fail-open credit not metered: %d", st)
	}
	t.Logf("%d calls served on 0.01 fail-open credits after the lease lapsed, then 503", served)
	link.setCut(false)
	c.settled("acct")
	c.check()
}
