package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/tollgate/tollgate/configs"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy"
	"github.com/tollgate/tollgate/proxy/admin"
	"github.com/tollgate/tollgate/proxy/simulator"
	"github.com/tollgate/tollgate/wal"
)

// serveFlags are the flags of `tollgate serve`; they override the file.
type serveFlags struct {
	config      string
	dataDir     string
	listen      string
	adminListen string
	upstreamURL string
	// bedrockEndpoint replaces every bedrock upstream's endpoint.
	bedrockEndpoint string
	demo            bool
	// simulator serves from the built-in simulator on any listen address.
	simulator bool
}

func parseServeFlags(args []string) (serveFlags, bool, error) {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&f.config, "config", "configs/tollgate.yaml", "gateway configuration file (the embedded default when the default path is absent)")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory (default: the file's data_dir, ./data)")
	fs.StringVar(&f.listen, "listen", "", "client API address (default: the file's listen)")
	fs.StringVar(&f.adminListen, "admin-listen", "", "admin API address (default: the file's admin_listen)")
	fs.StringVar(&f.upstreamURL, "upstream-url", "", "base URL replacing every anthropic upstream's (tests point it at a local upstream)")
	fs.StringVar(&f.bedrockEndpoint, "bedrock-endpoint", "", "endpoint URL replacing every bedrock upstream's (tests point it at a local upstream)")
	fs.BoolVar(&f.demo, "demo", false, "create a demo account once, mint a demo key and print how to call the gateway (make run)")
	fs.BoolVar(&f.simulator, "simulator", false, "serve from the built-in upstream simulator even when the client API listens beyond loopback")
	isDefault := true
	err := fs.Parse(args)
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "config" {
			isDefault = false
		}
	})
	return f, isDefault, err
}

// runServe is `tollgate serve`: parse flags, load and check the
// configuration, open and replay the WAL, recover open holds, start the
// servers and jobs, wait for a signal, then stop in reverse order.
func runServe(args []string, stdout io.Writer) error {
	logger := log.New(os.Stderr, "tollgate: ", log.LstdFlags|log.LUTC|log.Lmsgprefix)
	flags, defaultConfig, err := parseServeFlags(args)
	if err != nil {
		return err
	}
	fc, err := loadConfig(flags.config, defaultConfig)
	if err != nil {
		return err
	}
	applyFlags(fc, flags)

	adminToken := os.Getenv("TOLLGATE_ADMIN_TOKEN")
	if adminToken == "" {
		if !flags.demo {
			return errors.New("TOLLGATE_ADMIN_TOKEN is not set: the admin API needs a bearer token")
		}
		adminToken = "tga-" + randomHex(24)
	}
	cat, err := loadCatalogue(fc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(fc.DataDir, 0o700); err != nil {
		return fmt.Errorf("cannot create data directory: %w", err)
	}
	ipKey, err := ipDigestKey(fc.DataDir)
	if err != nil {
		return err
	}

	upstreams, sim, err := chooseUpstreams(fc, flags, logger)
	if err != nil {
		return err
	}
	clientCert, err := newCertificate(fc.TLS.Client)
	if err != nil {
		return err
	}
	adminCert, err := newCertificate(fc.TLS.Admin)
	if err != nil {
		return err
	}
	if sim != nil {
		defer sim.Shutdown()
	}

	// Open the WAL and replay it into the ledger.
	start := time.Now()
	mode, err := wal.ParseMode(fc.WAL.Mode)
	if err != nil {
		return err
	}
	wlog, err := wal.Open(walDir(fc.DataDir), wal.Config{Mode: mode, Interval: time.Duration(fc.WAL.Interval),
		StallTimeout: time.Duration(fc.WAL.StallTimeout)})
	if err != nil {
		return err
	}
	defer wlog.Close()
	l, err := ledger.Open(wlog, ledger.Config{
		Shards:             fc.Ledger.Shards,
		HoldTimeout:        time.Duration(fc.Ledger.HoldTimeout),
		PaidCreditLifetime: time.Duration(fc.Ledger.PaidCreditLifetime),
	})
	if err != nil {
		return fmt.Errorf("cannot replay the wal: %w", err)
	}
	defer l.Close()
	replay := time.Since(start)

	g, err := proxy.New(proxy.Config{
		Upstreams:                    upstreams,
		StickyRouting:                fc.Routing.Sticky,
		UpstreamMaxFailures:          fc.Routing.MaxFailures,
		UpstreamBackoff:              time.Duration(fc.Routing.Backoff),
		MaxRequestBodyBytes:          fc.Limits.MaxRequestBodyBytes,
		MaxResponseBodyBytes:         fc.Limits.MaxResponseBodyBytes,
		MaxEventBytes:                fc.Limits.MaxEventBytes,
		ConnectTimeout:               time.Duration(fc.Timeouts.Connect),
		FirstByteTimeout:             time.Duration(fc.Timeouts.FirstByte),
		FirstByteTimeoutNonStreaming: time.Duration(fc.Timeouts.FirstByteNonStreaming),
		IdleTimeout:                  time.Duration(fc.Timeouts.BetweenEvents),
		TotalTimeout:                 time.Duration(fc.Timeouts.Total),
		DrainTimeout:                 time.Duration(fc.Timeouts.Drain),
		ClientHeaderTimeout:          time.Duration(fc.Timeouts.ClientHeader),
		ClientReadTimeout:            time.Duration(fc.Timeouts.ClientRead),
		ClientIdleTimeout:            time.Duration(fc.Timeouts.ClientIdle),
		MaxConnsPerIP:                fc.Limits.MaxConnsPerIP,
		Concurrency:                  fc.Limits.Concurrency,
		MaxBodyBytesInFlight:         fc.bodyBytesInFlight(),
		CountTokensRPM:               fc.Limits.CountTokensRPM,
		ReadRPM:                      fc.Limits.ReadRPM,
		ClientTLS:                    clientCert.config(),
		HoldMaxOutputTokens:          fc.Limits.HoldMaxOutputTokens,
		DefaultWebSearchUses:         fc.Limits.DefaultWebSearchUses,
		DisconnectPolicy:             fc.Policies.Disconnect,
		DrainWorkers:                 fc.Policies.DrainWorkers,
		RecoveryPolicy:               fc.Policies.Recovery,
		DeniedBetas:                  fc.DeniedBetas,
		TrustedProxies:               fc.trustedProxies(),
		IPDigestKey:                  ipKey,
		DefaultKeyLimits:             proxy.Limits(fc.Limits.KeyDefaults),
		DefaultAccountLimits:         proxy.Limits(fc.Limits.AccountDefaults),
	}, l, cat, logger)
	if err != nil {
		return err
	}
	adminAPI, err := admin.New(admin.Config{Ledger: l, Catalogue: g.Catalogue, Token: adminToken,
		MetricsToken: os.Getenv("TOLLGATE_METRICS_TOKEN"), DisputeWindow: time.Duration(fc.DisputeWindow),
		Backup: backupTo(wlog, fc.DataDir), Ready: readiness(g, wlog, time.Duration(fc.WAL.StallTimeout)),
		TLS: adminCert.config(), Logger: logger})
	if err != nil {
		return err
	}
	recovered, err := g.RecoverOpenHolds()
	if err != nil {
		return fmt.Errorf("cannot recover open holds: %w", err)
	}

	clientLn, err := net.Listen("tcp", fc.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", fc.Listen, err)
	}
	adminLn, err := net.Listen("tcp", fc.AdminListen)
	if err != nil {
		clientLn.Close()
		return fmt.Errorf("cannot listen on %s: %w", fc.AdminListen, err)
	}
	if ap, err := netipAddrPort(adminLn.Addr()); err == nil && !ap.Addr().IsLoopback() {
		logger.Printf("WARNING: the admin API listens on %s, beyond loopback: put TLS and access control in front of it", adminLn.Addr())
	}
	errc := make(chan error, 2)
	go func() { errc <- g.ServeClient(clientLn) }()
	go func() { errc <- adminAPI.Serve(adminLn) }()
	jobs := startJobs(fc, l, g, logger)

	check := meter.CheckCatalogue(cat, time.Now())
	logger.Print(catalogueSummary(cat, &check))
	logger.Printf("started: version %s, %s; shards %d, drain workers %d, wal mode %s; replayed %d records in %s, recovered %d open holds; client API %s, admin API %s",
		version(), runtime.Version(), fc.Ledger.Shards, fc.Policies.DrainWorkers, mode, wlog.LastSeq(), replay.Round(time.Millisecond), recovered,
		clientLn.Addr(), adminLn.Addr())
	if flags.demo {
		scheme := func(c *certificate) string {
			if c != nil {
				return "https://"
			}
			return "http://"
		}
		err := runDemo(stdout, g, demoInfo{token: adminToken, tokenGenerated: os.Getenv("TOLLGATE_ADMIN_TOKEN") == "",
			client: scheme(clientCert) + clientLn.Addr().String(), admin: scheme(adminCert) + adminLn.Addr().String()})
		if err != nil {
			logger.Printf("cannot set up the demo: %s", err)
		}
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sig)
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				reloadCatalogue(fc, g, logger)
				for _, c := range []*certificate{clientCert, adminCert} {
					if err := c.reload(); err != nil {
						logger.Printf("SIGHUP: keeping the old certificate: %s", err)
					}
				}
				continue
			}
			logger.Printf("%s: stopping; running calls have %s to finish", s, time.Duration(fc.Timeouts.ShutdownGrace))
			return shutdown(g, adminAPI, jobs, l, logger, time.Duration(fc.Timeouts.ShutdownGrace))
		case <-wlog.Failed():
			// Every later WAL write would fail too: stop at once, without
			// acknowledging anything more; the next start replays the log.
			logger.Printf("FATAL: the wal failed: %s", wlog.Err())
			os.Exit(1)
		case err := <-errc:
			jobs.stop()
			return fmt.Errorf("server stopped: %w", err)
		}
	}
}

func shutdown(g *proxy.Gateway, adminAPI *admin.Server, jobs *jobRunner, l *ledger.Ledger, logger *log.Logger, grace time.Duration) error {
	t := time.Now()
	err := g.Shutdown(grace)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = errors.Join(err, adminAPI.Shutdown(ctx))
	logger.Printf("servers stopped in %s", time.Since(t).Round(time.Millisecond))
	jobs.stop()
	t = time.Now()
	if _, cerr := l.Checkpoint(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	logger.Printf("checkpoint written in %s; stopped", time.Since(t).Round(time.Millisecond))
	return err
}

func applyFlags(fc *fileConfig, f serveFlags) {
	if f.dataDir != "" {
		fc.DataDir = f.dataDir
	}
	if fc.DataDir == "" {
		fc.DataDir = "./data"
	}
	if f.listen != "" {
		fc.Listen = f.listen
	}
	if f.adminListen != "" {
		fc.AdminListen = f.adminListen
	}
}

func loadCatalogue(fc *fileConfig) (*meter.Catalogue, error) {
	path := fc.cataloguePath()
	if fc.dir == "" || path == "" {
		return meter.ParseCatalogue(configs.Models)
	}
	cat, err := meter.LoadCatalogue(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load the catalogue: %w", err)
	}
	return cat, nil
}

func reloadCatalogue(fc *fileConfig, g *proxy.Gateway, logger *log.Logger) {
	cat, err := loadCatalogue(fc)
	if err != nil {
		logger.Printf("SIGHUP: keeping the old catalogue: %s", err)
		return
	}
	g.SetCatalogue(cat)
	check := meter.CheckCatalogue(cat, time.Now())
	logger.Printf("SIGHUP: catalogue reloaded: %s", catalogueSummary(cat, &check))
}

// chooseUpstreams applies --upstream-url, --bedrock-endpoint and the
// environment: with an anthropic upstream but neither an upstream URL nor
// ANTHROPIC_API_KEY, it starts the built-in simulator, but only while the
// client API listens on loopback or --simulator asks for it, so that real
// customers are never answered by it; bedrock upstreams take their
// credentials from the standard AWS sources (bedrock.go).
func chooseUpstreams(fc *fileConfig, flags serveFlags, logger *log.Logger) ([]proxy.UpstreamConfig, *simulator.Simulator, error) {
	upstreamURL, bedrockEndpoint := flags.upstreamURL, flags.bedrockEndpoint
	apiKey := os.Getenv("ANTHROPIC_API_KEY")
	var sim *simulator.Simulator
	hasAnthropic := false
	for _, u := range fc.Upstreams {
		hasAnthropic = hasAnthropic || u.Kind == "" || u.Kind == "anthropic"
	}
	if hasAnthropic && upstreamURL == "" && apiKey == "" {
		if !flags.simulator && !loopbackAddress(fc.Listen) {
			return nil, nil, fmt.Errorf("no ANTHROPIC_API_KEY and no --upstream-url: the built-in simulator would answer customers on %s; "+
				"set ANTHROPIC_API_KEY, or listen on loopback, or pass --simulator to serve from the simulator on purpose", fc.Listen)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("cannot start the simulator: %w", err)
		}
		sim = simulator.New(simulator.Config{})
		go sim.Serve(ln)
		upstreamURL = "http://" + ln.Addr().String()
		logger.Printf("NO ANTHROPIC_API_KEY: SERVING FROM THE BUILT-IN UPSTREAM SIMULATOR at %s (set ANTHROPIC_API_KEY to use the real Anthropic API)", upstreamURL)
	}
	var out []proxy.UpstreamConfig
	for _, u := range fc.Upstreams {
		uc := proxy.UpstreamConfig{Name: u.Name, Kind: u.Kind, BaseURL: u.BaseURL, MaxConns: u.MaxConns,
			Priority: u.Priority, Weight: u.Weight, Region: u.Region}
		if uc.Kind == "" || uc.Kind == "anthropic" {
			uc.APIKey = apiKey
			if upstreamURL != "" {
				uc.BaseURL = upstreamURL
			}
		} else if uc.Kind == "bedrock" {
			if bedrockEndpoint != "" {
				uc.BaseURL = bedrockEndpoint
			}
			if err := bedrockAuth(&uc, u); err != nil {
				if sim != nil {
					sim.Shutdown()
				}
				return nil, nil, err
			}
		}
		out = append(out, uc)
	}
	return out, sim, nil
}

// loopbackAddress reports whether the listen address addr binds only a
// loopback interface (an empty or unspecified host binds them all).
func loopbackAddress(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readiness is the gateway's readiness check (GET /readyz): not ready while
// the data directory is short of space, once the WAL failed, nor while a
// commit has run for a third of the stall bound (the watchdog stops the
// process at the whole bound).
func readiness(g *proxy.Gateway, l *wal.Log, stall time.Duration) func() error {
	if stall <= 0 {
		stall = 30 * time.Second
	}
	return func() error {
		if g.DiskLow() {
			return errors.New("the data directory is short of free space")
		}
		if err := l.Err(); err != nil {
			return fmt.Errorf("the wal failed: %w", err)
		}
		if age := l.CommitAge(); age > stall/3 {
			return fmt.Errorf("a wal sync has been running for %s", age.Round(time.Millisecond))
		}
		return nil
	}
}

// ipDigestKeyFile is the file of the generated IP digest key in the data
// directory.
const ipDigestKeyFile = "ip-digest.key"

// ipDigestKey is TOLLGATE_IP_DIGEST_KEY, or a key generated on first start
// and kept in the data directory with mode 0600.
func ipDigestKey(dataDir string) ([]byte, error) {
	if k := os.Getenv("TOLLGATE_IP_DIGEST_KEY"); k != "" {
		return []byte(k), nil
	}
	path := filepath.Join(dataDir, ipDigestKeyFile)
	if k, err := os.ReadFile(path); err == nil && len(k) >= 32 {
		return k, nil
	}
	k := []byte(randomHex(32))
	if err := os.WriteFile(path, k, 0o600); err != nil {
		return nil, fmt.Errorf("cannot store the IP digest key: %w", err)
	}
	return k, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
		if bi.Main.Version != "" {
			return bi.Main.Version
		}
	}
	return "devel"
}
