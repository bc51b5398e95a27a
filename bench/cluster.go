package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// MaxNodes bounds a benchmark cluster's nodes (GatewayConfig.Nodes).
const MaxNodes = 16

// startOthers starts a cluster's nodes after the first (g), each in a
// directory of its own, and waits until each knows the last key g made
// (its mirror of PostgreSQL has them all: keys arrive in order).
func (g *Gateway) startOthers(ctx context.Context, cfg GatewayConfig, conf []byte) error {
	if cfg.Nodes < 0 || cfg.Nodes > MaxNodes || cfg.Nodes > 1 && cfg.ClusterDSN == "" {
		return fmt.Errorf("bench: %d nodes: from 1 to %d, and more than one needs a cluster DSN", cfg.Nodes, MaxNodes)
	}
	for range cfg.Nodes - 1 {
		dir, err := os.MkdirTemp(cfg.TempDir, "tollbench-gateway-")
		if err != nil {
			return fmt.Errorf("cannot make a node's directory: %w", err)
		}
		o := &Gateway{dir: dir, token: randomToken(), log: &tailBuffer{max: gatewayLogTail}, exited: make(chan struct{})}
		g.others = append(g.others, o) // stopped with g, even if it fails to start
		if err := o.start(ctx, cfg, conf, false); err != nil {
			return err
		}
		o.keys = g.keys
		if err := o.waitForKey(ctx, g.keys[len(g.keys)-1], cfg.ReadyTimeout); err != nil {
			return err
		}
	}
	return nil
}

// waitForKey polls the node's GET /v1/balance with key until it answers
// 200.
func (g *Gateway) waitForKey(ctx context.Context, key string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.ClientURL()+"/v1/balance", nil)
		if err != nil {
			return err
		}
		req.Header.Set("x-api-key", key)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("a cluster node did not know the benchmark's keys within %s; its output:\n%s", timeout, g.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// OtherClientURLs are the client APIs of a cluster's nodes after the first
// (ClientURL).
func (g *Gateway) OtherClientURLs() []string {
	var out []string
	for _, o := range g.others {
		out = append(out, o.ClientURL())
	}
	return out
}

// CheckClusterDSN checks that dsn is a postgres:// URL without a password
// whose hosts are all loopback addresses or localhost: a benchmark's
// cluster lives on the machine it runs on.
func CheckClusterDSN(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" || u.Host == "" {
		return fmt.Errorf("bench: cluster DSN %q: give a postgres://host:port/db URL", dsn)
	}
	if _, has := u.User.Password(); has {
		return fmt.Errorf("bench: cluster DSN: put the password in PGPASSWORD, not in the DSN")
	}
	for k := range u.Query() { // libpq's parameters would override the URL's hosts or credentials
		if k == "host" || k == "hostaddr" || k == "password" || k == "passfile" || k == "service" {
			return fmt.Errorf("bench: cluster DSN: the parameter %q is not allowed (hosts go in the URL, the password in PGPASSWORD)", k)
		}
	}
	for _, h := range strings.Split(u.Host, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "5432")
		}
		if err := checkLoopbackHostPort(h); err != nil {
			return fmt.Errorf("%w: cluster DSN host %q", err, h)
		}
	}
	return nil
}

// postgresEnv is the environment a cluster node needs to reach PostgreSQL:
// libpq's password and password-file variables, when set.
func postgresEnv() []string {
	var env []string
	for _, k := range []string{"PGPASSWORD", "PGPASSFILE", "HOME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
