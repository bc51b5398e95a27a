package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bytedance/sonic"
	"go.yaml.in/yaml/v3"
)

// Limits and defaults of GatewayConfig.
const (
	DefaultAccounts = 16
	MaxAccounts     = 1024
	// DefaultCredit is each account's top-up in credits: at the default
	// request's hold (about 0.0013 credits) it covers some 10^9 calls.
	DefaultCredit       = "1000000"
	DefaultReadyTimeout = 30 * time.Second
	// stopTimeout is how long Stop waits after SIGTERM before SIGKILL:
	// beyond the gateway's default shutdown grace (30 s).
	stopTimeout = 45 * time.Second
	// gatewayLogTail is how much of the gateway's output is kept for
	// error messages.
	gatewayLogTail = 16 << 10
	adminTimeout   = 30 * time.Second
	maxAdminBody   = 1 << 20
	// MaxGatewaySettings bounds GatewayConfig.Settings: a benchmark
	// changes a few keys; the rest belongs in the base configuration.
	MaxGatewaySettings = 64
)

// GatewaySetting is one override of the gateway's base configuration.
type GatewaySetting struct {
	// Key is the dotted path of a YAML key, such as "ledger.shards";
	// mappings missing on the way are created. The gateway refuses keys
	// it does not know, naming them.
	Key string `json:"key"`
	// Value is the scalar as it would be written in the file, plain
	// ("4", "interval", "5ms"): YAML resolves its type as it would there.
	Value string `json:"value"`
}

// GatewayConfig says how to start `tollgate serve` for a benchmark.
type GatewayConfig struct {
	// Binary is the tollgate executable.
	Binary string
	// BaseConfig is the gateway configuration (YAML) to start from, such
	// as configs/tollgate.yaml; Settings override its keys, and its
	// catalogue is replaced by Catalogue.
	BaseConfig []byte
	// Catalogue is the model catalogue (configs/models.yaml).
	Catalogue []byte
	// Settings override keys of BaseConfig, in order (of two with one
	// key, the later wins). At most MaxGatewaySettings.
	Settings []GatewaySetting
	// UpstreamURL is passed as --upstream-url (loopback only).
	UpstreamURL string
	// Accounts is the number of accounts created, each with one key, so
	// that calls spread over the ledger's shards. Zero means
	// DefaultAccounts; at most MaxAccounts.
	Accounts int
	// Credit is each account's paid top-up in credits (a decimal string).
	// Empty means DefaultCredit.
	Credit string
	// TempDir is where the run's directory (configuration and data) is
	// made; empty means os.TempDir(). The directory is removed by Stop.
	TempDir string
	// Env is added to the gateway's environment (GOMAXPROCS=2, GOGC=200),
	// which otherwise holds only PATH and TOLLGATE_ADMIN_TOKEN; of two
	// entries with one name, the later wins.
	Env []string
	// ClusterDSN, when set, starts the gateway in cluster mode on this
	// PostgreSQL (serve --cluster-dsn; a postgres:// URL whose hosts are
	// loopback addresses, its password in PGPASSWORD), and Nodes (default
	// 1) gateways on it: StartCluster.
	ClusterDSN string
	Nodes      int
	// ReadyTimeout bounds the wait for /readyz. Zero means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// Gateway is a `tollgate serve` process started by StartGateway, with its
// benchmark accounts set up. Stop it with Stop.
type Gateway struct {
	cmd        *exec.Cmd
	dir        string
	clientAddr string
	adminAddr  string
	token      string
	keys       []string
	log        *tailBuffer
	exited     chan struct{} // closed when the process has been waited for
	waitErr    error         // valid once exited is closed
	stopOnce   sync.Once
	stopErr    error
	// others are a cluster's other nodes (GatewayConfig.Nodes).
	others []*Gateway
}

// StartGateway writes the configuration into a fresh directory, starts the
// gateway on two free loopback ports, waits for /readyz, and creates the
// accounts and keys. On error nothing is left running.
func StartGateway(ctx context.Context, cfg GatewayConfig) (*Gateway, error) {
	if cfg.Accounts == 0 {
		cfg.Accounts = DefaultAccounts
	}
	if cfg.Credit == "" {
		cfg.Credit = DefaultCredit
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.Accounts < 1 || cfg.Accounts > MaxAccounts {
		return nil, fmt.Errorf("bench: accounts %d out of range 1..%d", cfg.Accounts, MaxAccounts)
	}
	if _, err := CheckLoopbackURL(cfg.UpstreamURL); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	if cfg.ClusterDSN != "" {
		if err := CheckClusterDSN(cfg.ClusterDSN); err != nil {
			return nil, err
		}
	}
	// The process runs in its own directory: a relative binary path
	// would be resolved from there.
	bin, err := filepath.Abs(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve the gateway binary %q: %w", cfg.Binary, err)
	}
	cfg.Binary = bin
	conf, err := editGatewayConfig(cfg.BaseConfig, cfg.Settings)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "tollbench-gateway-")
	if err != nil {
		return nil, fmt.Errorf("cannot make the gateway's directory: %w", err)
	}
	g := &Gateway{dir: dir, token: randomToken(), log: &tailBuffer{max: gatewayLogTail}, exited: make(chan struct{})}
	if err := g.start(ctx, cfg, conf, true); err != nil {
		g.Stop()
		return nil, err
	}
	if err := g.startOthers(ctx, cfg, conf); err != nil {
		g.Stop()
		return nil, err
	}
	return g, nil
}

// start runs the gateway in g.dir; the first node of a cluster, or a
// single gateway, also makes the accounts (withAccounts).
func (g *Gateway) start(ctx context.Context, cfg GatewayConfig, conf []byte, withAccounts bool) error {
	confPath := filepath.Join(g.dir, "tollgate.yaml")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return fmt.Errorf("cannot write the gateway's configuration: %w", err)
	}
	if err := os.WriteFile(filepath.Join(g.dir, "models.yaml"), cfg.Catalogue, 0o600); err != nil {
		return fmt.Errorf("cannot write the catalogue: %w", err)
	}
	var err error
	if g.clientAddr, err = freeLoopbackAddr(); err != nil {
		return err
	}
	if g.adminAddr, err = freeLoopbackAddr(); err != nil {
		return err
	}
	g.cmd = exec.Command(cfg.Binary, "serve",
		"--config", confPath,
		"--data-dir", filepath.Join(g.dir, "data"),
		"--listen", g.clientAddr,
		"--admin-listen", g.adminAddr,
		"--upstream-url", cfg.UpstreamURL)
	g.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "TOLLGATE_ADMIN_TOKEN=" + g.token}, cfg.Env...)
	if cfg.ClusterDSN != "" {
		g.cmd.Args = append(g.cmd.Args, "--cluster-dsn", cfg.ClusterDSN)
		g.cmd.Env = append(g.cmd.Env, postgresEnv()...)
	}
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	g.cmd.Dir = g.dir
	setDeathSignal(g.cmd)
	if err := g.cmd.Start(); err != nil {
		close(g.exited)
		return fmt.Errorf("cannot start the gateway %q: %w", cfg.Binary, err)
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.exited)
	}()
	if err := g.waitReady(ctx, cfg.ReadyTimeout); err != nil || !withAccounts {
		return err
	}
	prefix := "bench-"
	if cfg.ClusterDSN != "" {
		prefix += g.token[len(g.token)-8:] + "-" // a run's own accounts in a database runs share
	}
	return g.setupAccounts(ctx, prefix, cfg.Accounts, cfg.Credit)
}

// waitReady polls /readyz until it answers 200, the process exits, or the
// timeout passes.
func (g *Gateway) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(g.AdminURL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gateway was not ready within %s; its output:\n%s", timeout, g.Log())
		}
		select {
		case <-g.exited:
			return fmt.Errorf("the gateway exited at start (%v); its output:\n%s", g.waitErr, g.Log())
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// setupAccounts creates accounts bench-000… (prefix then a number) with a
// paid top-up and a key each, through the admin API as an operator would.
func (g *Gateway) setupAccounts(ctx context.Context, prefix string, n int, credit string) error {
	g.keys = make([]string, 0, n)
	for i := range n {
		id := fmt.Sprintf("%s%03d", prefix, i)
		if err := g.admin(ctx, "/admin/v1/accounts", map[string]any{"id": id}, nil); err != nil {
			return err
		}
		topUp := map[string]any{"amount": credit, "order_id": "tollbench-" + id, "kind": "paid"}
		if err := g.admin(ctx, "/admin/v1/accounts/"+id+"/topups", topUp, nil); err != nil {
			return err
		}
		var key struct {
			Key string `json:"key"`
		}
		if err := g.admin(ctx, "/admin/v1/accounts/"+id+"/keys", map[string]any{"name": "tollbench"}, &key); err != nil {
			return err
		}
		if key.Key == "" {
			return fmt.Errorf("the gateway returned no key for account %s", id)
		}
		g.keys = append(g.keys, key.Key)
	}
	return nil
}

// admin POSTs a JSON body to the admin API and decodes the 201 reply.
func (g *Gateway) admin(ctx context.Context, path string, in, out any) error {
	body, err := sonic.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.AdminURL()+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot call the admin API %s: %w", path, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminBody))
	if err != nil {
		return fmt.Errorf("cannot read the admin API's reply to %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("admin API %s: status %d: %.300s", path, resp.StatusCode, reply)
	}
	if out != nil {
		if err := sonic.Unmarshal(reply, out); err != nil {
			return fmt.Errorf("cannot decode the admin API's reply to %s: %w", path, err)
		}
	}
	return nil
}

// ClientURL is the client API's base URL.
func (g *Gateway) ClientURL() string { return "http://" + g.clientAddr }

// AdminURL is the admin API's base URL.
func (g *Gateway) AdminURL() string { return "http://" + g.adminAddr }

// AdminToken is the admin bearer token the gateway was started with.
func (g *Gateway) AdminToken() string { return g.token }

// Pid is the gateway's process ID.
func (g *Gateway) Pid() int { return g.cmd.Process.Pid }

// Keys are the API keys of the benchmark accounts, one per account.
func (g *Gateway) Keys() []string { return g.keys }

// Probe returns a GatewayProbe for this gateway.
// A cluster's probe adds up every node's counters.
func (g *Gateway) Probe() *GatewayProbe {
	p := g.probeOne()
	for _, o := range g.others {
		p.Others = append(p.Others, o.probeOne())
	}
	return p
}

func (g *Gateway) probeOne() *GatewayProbe {
	return &GatewayProbe{AdminURL: g.AdminURL(), Token: g.token, Pid: g.Pid()}
}

// Log is the tail of the gateway's output.
func (g *Gateway) Log() string { return g.log.String() }

// Stop sends SIGTERM, waits for the gateway to exit (SIGKILL after
// stopTimeout), and removes its directory. It reports an exit other than
// a clean one after SIGTERM. It is safe to call more than once.
func (g *Gateway) Stop() error {
	g.stopOnce.Do(func() {
		var errs []error
		for _, o := range g.others {
			errs = append(errs, o.Stop())
		}
		g.stopErr = errors.Join(append(errs, g.stop())...)
		if err := os.RemoveAll(g.dir); err != nil && g.stopErr == nil {
			g.stopErr = err
		}
	})
	return g.stopErr
}

func (g *Gateway) stop() error {
	if g.cmd == nil || g.cmd.Process == nil {
		return nil
	}
	select {
	case <-g.exited:
		return fmt.Errorf("the gateway had exited before Stop (%v); its output:\n%s", g.waitErr, g.Log())
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-g.exited:
	case <-t.C:
		_ = g.cmd.Process.Kill()
		<-g.exited
		return fmt.Errorf("the gateway did not stop within %s of SIGTERM; killed; its output:\n%s", stopTimeout, g.Log())
	}
	if g.waitErr != nil {
		return fmt.Errorf("the gateway exited with %v after SIGTERM; its output:\n%s", g.waitErr, g.Log())
	}
	return nil
}

// editGatewayConfig returns base with the benchmark's overrides: the
// settings, in order, then the catalogue beside the file (whatever a
// setting said). It edits the YAML tree rather than the text so that
// comments and unrelated keys survive, and the gateway's own validation
// (unknown keys, ranges) still applies to the result.
func editGatewayConfig(base []byte, settings []GatewaySetting) ([]byte, error) {
	if len(settings) > MaxGatewaySettings {
		return nil, fmt.Errorf("bench: %d gateway settings are more than %d", len(settings), MaxGatewaySettings)
	}
	paths := make([][]string, len(settings))
	for i, s := range settings {
		paths[i] = strings.Split(s.Key, ".")
		if slices.Contains(paths[i], "") {
			return nil, fmt.Errorf("bench: gateway setting key %q is not a dotted path such as ledger.shards", s.Key)
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("cannot parse the base gateway configuration: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the base gateway configuration is not a YAML mapping")
	}
	root := doc.Content[0]
	for i, s := range settings {
		// No tag: the value is resolved as if typed into the file.
		setYAML(root, paths[i], s.Value, "")
	}
	setYAML(root, []string{"catalogue"}, "models.yaml", "!!str")
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, fmt.Errorf("cannot write the gateway configuration: %w", err)
	}
	return out, nil
}

// setYAML sets the scalar at path under the mapping m, creating missing
// mappings and keys on the way.
func setYAML(m *yaml.Node, path []string, value, tag string) {
	for i, key := range path {
		var child *yaml.Node
		for j := 0; j+1 < len(m.Content); j += 2 {
			if m.Content[j].Value == key {
				child = m.Content[j+1]
				break
			}
		}
		last := i == len(path)-1
		if child == nil {
			child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, child)
		}
		if last {
			*child = yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value, LineComment: child.LineComment}
			return
		}
		if child.Kind != yaml.MappingNode {
			*child = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		m = child
	}
}

// getYAML returns the scalar at path under the mapping m, and whether
// there is one.
func getYAML(m *yaml.Node, path []string) (string, bool) {
	for _, key := range path {
		if m.Kind != yaml.MappingNode {
			return "", false
		}
		var child *yaml.Node
		for j := 0; j+1 < len(m.Content); j += 2 {
			if m.Content[j].Value == key {
				child = m.Content[j+1]
				break
			}
		}
		if child == nil {
			return "", false
		}
		m = child
	}
	return m.Value, m.Kind == yaml.ScalarNode
}

// freeLoopbackAddr returns a loopback address with a port that was free a
// moment ago. Another process may take it before the gateway does; the
// gateway then fails to start and says so.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot find a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
	return "tollbench-" + hex.EncodeToString(b[:])
}

// tailBuffer keeps the last max bytes written to it. It is safe for
// concurrent use (the process's stdout and stderr copiers write to it).
type tailBuffer struct {
	mu struct {
		sync.Mutex
		buf []byte
	}
	max int
}

// Write appends p, dropping the oldest bytes beyond max.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.buf = append(t.mu.buf, p...)
	if over := len(t.mu.buf) - t.max; over > 0 {
		t.mu.buf = append(t.mu.buf[:0], t.mu.buf[over:]...)
	}
	return len(p), nil
}

// String returns the bytes kept, trimmed.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.mu.buf))
}
