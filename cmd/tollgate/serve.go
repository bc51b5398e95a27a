package main

import (
	"cmp"
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
	"github.com/tollgate/tollgate/internal/testclock"
	"github.com/tollgate/tollgate/ledger"
	"github.com/tollgate/tollgate/meter"
	"github.com/tollgate/tollgate/proxy"
	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/admin"
	"github.com/tollgate/tollgate/proxy/console"
	"github.com/tollgate/tollgate/proxy/notify"
	"github.com/tollgate/tollgate/proxy/simulator"
	"github.com/tollgate/tollgate/proxy/upstream"
	"github.com/tollgate/tollgate/wal"
	"github.com/valyala/fasthttp/fasthttpadaptor"
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
	// clusterDSN replaces the file's cluster.dsn.
	clusterDSN string
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
	fs.StringVar(&f.clusterDSN, "cluster-dsn", "", "PostgreSQL DSN turning cluster mode on (default: the file's cluster.dsn); the password comes from PGPASSWORD")
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
	if flags.demo && fc.Cluster.DSN != "" {
		return errors.New("--demo is for single-node mode: in cluster mode, create accounts and keys through the admin API")
	}
	adminToken := os.Getenv("TOLLGATE_ADMIN_TOKEN")
	if adminToken == "" {
		if !flags.demo {
			return errors.New("TOLLGATE_ADMIN_TOKEN is not set: the admin API needs a bearer token")
		}
		adminToken = "tga-" + randomHex(24)
	}
	p := &process{fc: fc, flags: flags, logger: logger, started: time.Now()}
	defer p.close()
	// The listeners are bound first, before the built-in simulator takes a
	// port of its own: a port the operator (or a test) chose is never lost
	// to it.
	if err := p.listen(); err != nil {
		return err
	}
	if err := p.open(adminToken); err != nil {
		return err
	}
	if err := p.start(); err != nil {
		return err
	}
	if flags.demo {
		err := runDemo(stdout, p.gateway, demoInfo{token: adminToken, tokenGenerated: os.Getenv("TOLLGATE_ADMIN_TOKEN") == "",
			users: p.consoleUsers, operators: p.operators,
			client: p.clientCert.scheme() + p.clientLn.Addr().String(), admin: p.adminCert.scheme() + p.adminLn.Addr().String()})
		if err != nil {
			logger.Printf("cannot set up the demo: %s", err)
		}
	}
	return p.serve()
}

// process is a running gateway: what `serve` opened, in the order it
// opened it, so that close can undo it in reverse.
type process struct {
	fc     *fileConfig
	flags  serveFlags
	logger *log.Logger

	sim                   *simulator.Simulator
	clientCert, adminCert *certificate
	wlog                  *wal.Log
	ledger                *ledger.Ledger
	catalogue             *meter.Catalogue
	gateway               *proxy.Gateway
	notifier              *notify.Notifier
	cluster               *clusterParts // nil unless cluster.dsn is set
	operators             *access.Store
	consoleUsers          access.UserStore // nil when the consoles are off
	admin                 *admin.Server
	clientLn, adminLn     net.Listener
	jobs                  *jobRunner
	served                chan error // a server that stopped on its own
	walMode               wal.Mode
	started               time.Time
	replayed              time.Duration
	recovered             int
}

// open loads the catalogue, opens the data directory, replays the WAL
// into the ledger, builds both APIs and recovers the holds a crash left.
func (p *process) open(adminToken string) error {
	fc := p.fc
	var err error
	cat, raw, embedded, err := readCatalogue(fc)
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
	upstreams, sim, err := chooseUpstreams(fc, p.flags, p.logger)
	p.sim = sim
	if err != nil {
		return err
	}
	if p.clientCert, err = newCertificate(fc.TLS.Client); err != nil {
		return err
	}
	if p.adminCert, err = newCertificate(fc.TLS.Admin); err != nil {
		return err
	}
	if err := p.openLedger(); err != nil {
		return err
	}
	if fc.Cluster.DSN != "" {
		if err := p.openCluster(); err != nil {
			return err
		}
	}
	if p.operators, err = p.openOperators(); err != nil {
		return err
	}
	if fc.Console.Enabled {
		if p.consoleUsers, err = p.openUsers(); err != nil {
			return err
		}
	}
	users := p.consoleUsers
	if err := p.openNotifier(); err != nil {
		return err
	}
	if err := acceptCatalogue(fc.DataDir, cat, raw, embedded, testclock.Now(), p.notifier.Catalogue, p.logger); err != nil {
		return err
	}
	p.catalogue = cat
	clientCfg := clientAPIConfig(fc, upstreams, p.clientCert, ipKey)
	if fc.Console.Enabled {
		clientCfg.Console = fasthttpadaptor.NewFastHTTPHandler(console.NewCustomer(console.CustomerConfig{
			Users: users, Books: p.books(),
			Served:        func(now time.Time) []*meter.Model { return p.gateway.ServedModels(now) },
			Retirement:    func(m *meter.Model, now time.Time) time.Time { return p.gateway.Retirement(m, now) },
			DisputeWindow: time.Duration(fc.DisputeWindow), AccountDefaults: ledger.Limits(clientCfg.DefaultAccountLimits),
			MaxKeys: fc.Console.MaxKeysPerAccount, Notifier: p.notifier, SignInAttempts: p.signInAttempts(access.RealmCustomer), Logger: p.logger}))
	}
	if p.cluster != nil {
		clientCfg.Credit = clusterCredit{p.cluster.node, p.cluster.auth}
	}
	if p.gateway, err = proxy.New(clientCfg, p.ledger, p.catalogue, p.logger); err != nil {
		return err
	}
	if p.cluster != nil {
		p.cluster.node.NodesChanged = p.gateway.ShareLimits
	}
	ready := readiness(p.gateway, p.wlog, time.Duration(fc.WAL.StallTimeout))
	adminCfg := admin.Config{Ledger: p.ledger, Catalogue: p.gateway.Catalogue, Token: adminToken, Access: p.operators,
		MetricsToken: os.Getenv("TOLLGATE_METRICS_TOKEN"), DisputeWindow: time.Duration(fc.DisputeWindow),
		KeepCreditOnClose: fc.Policies.ClosedAccountCredit == "keep",
		Backup:            backupTo(p.wlog, fc.DataDir), Ready: ready, Notifier: p.notifier,
		TLS: p.adminCert.config(), Logger: p.logger}
	if fc.Console.Enabled {
		adminCfg.Users = users
		adminCfg.CustomerConsoleURL = cmp.Or(fc.Console.CustomerURL, p.clientCert.scheme()+p.clientLn.Addr().String())
		adminCfg.OperatorConsoleURL = cmp.Or(fc.Console.OperatorURL, p.adminCert.scheme()+p.adminLn.Addr().String())
		adminCfg.Console = console.NewOperator(console.OperatorConfig{Users: users, Operators: p.operators, Books: p.books(),
			Catalogue: p.gateway.Catalogue, KeepCreditOnClose: adminCfg.KeepCreditOnClose, CustomerConsoleURL: adminCfg.CustomerConsoleURL,
			Ready: ready, Health: p.headlineFigures, Notifier: p.notifier, SignInAttempts: p.signInAttempts(access.RealmOperator), Logger: p.logger})
	}
	adminCfg.Books = p.books()
	if p.admin, err = admin.New(adminCfg); err != nil {
		return err
	}
	if p.recovered, err = p.gateway.RecoverOpenHolds(); err != nil {
		return fmt.Errorf("cannot recover open holds: %w", err)
	}
	if p.cluster != nil {
		return p.resumeCluster()
	}
	return nil
}

// openLedger opens the WAL and replays it into the ledger.
func (p *process) openLedger() error {
	fc, start := p.fc, time.Now()
	var err error
	if p.walMode, err = wal.ParseMode(fc.WAL.Mode); err != nil {
		return err
	}
	p.wlog, err = wal.Open(walDir(fc.DataDir), wal.Config{Mode: p.walMode, Interval: time.Duration(fc.WAL.Interval),
		StallTimeout: time.Duration(fc.WAL.StallTimeout)})
	if err != nil {
		return err
	}
	p.ledger, err = ledger.Open(p.wlog, ledger.Config{
		Shards:             fc.Ledger.Shards,
		HoldTimeout:        time.Duration(fc.Ledger.HoldTimeout),
		PaidCreditLifetime: time.Duration(fc.Ledger.PaidCreditLifetime),
		Now:                testclock.Seam,
	})
	if err != nil {
		return fmt.Errorf("cannot replay the wal: %w", err)
	}
	p.replayed = time.Since(start)
	return nil
}

// clientAPIConfig is the client API's configuration from the file's.
func clientAPIConfig(fc *fileConfig, upstreams []upstream.Config, clientCert *certificate, ipKey []byte) proxy.Config {
	return proxy.Config{
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
		DisputeWindow:                time.Duration(fc.DisputeWindow),
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
	}
}

// listen binds both addresses.
func (p *process) listen() error {
	fc := p.fc
	var err error
	if p.clientLn, err = net.Listen("tcp", fc.Listen); err != nil {
		return fmt.Errorf("cannot listen on %s: %w", fc.Listen, err)
	}
	if p.adminLn, err = net.Listen("tcp", fc.AdminListen); err != nil {
		return fmt.Errorf("cannot listen on %s: %w", fc.AdminListen, err)
	}
	if ap, err := netipAddrPort(p.adminLn.Addr()); err == nil && !ap.Addr().IsLoopback() {
		p.logger.Printf("WARNING: the admin API listens on %s, beyond loopback: put TLS and access control in front of it", p.adminLn.Addr())
	}
	return nil
}

// start serves both APIs on the bound listeners, starts the jobs and says
// so in the log.
func (p *process) start() error {
	fc := p.fc
	p.served = make(chan error, 2)
	go func() { p.served <- p.gateway.ServeClient(p.clientLn) }()
	go func() { p.served <- p.admin.Serve(p.adminLn) }()
	p.jobs = startJobs(fc, p.ledger, p.gateway, p.logger)
	if p.notifier != nil {
		p.jobs.run(p.runNotifier)
	}
	if p.cluster != nil {
		p.startClusterJobs()
	}

	check := meter.CheckCatalogue(p.catalogue, time.Now())
	p.logger.Print(catalogueSummary(p.catalogue, &check))
	p.logger.Printf("started: version %s, %s; shards %d, drain workers %d, wal mode %s; replayed %d records in %s, recovered %d open holds; client API %s, admin API %s",
		version(), runtime.Version(), fc.Ledger.Shards, fc.Policies.DrainWorkers, p.walMode, p.wlog.LastSeq(), p.replayed.Round(time.Millisecond),
		p.recovered, p.clientLn.Addr(), p.adminLn.Addr())
	return nil
}

// serve waits for a signal: SIGHUP reloads the catalogue and the
// certificates, SIGTERM and SIGINT stop the process gracefully; a failed
// WAL stops it at once.
func (p *process) serve() error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sig)
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				p.reload()
				continue
			}
			grace := time.Duration(p.fc.Timeouts.ShutdownGrace)
			p.logger.Printf("%s: stopping; running calls have %s to finish", s, grace)
			return p.shutdown(grace)
		case <-p.wlog.Failed():
			// Every later WAL write would fail too: stop at once, without
			// acknowledging anything more; the next start replays the log.
			p.logger.Printf("FATAL: the wal failed: %s", p.wlog.Err())
			os.Exit(1)
		case err := <-p.served:
			p.jobs.stop()
			p.jobs = nil
			return fmt.Errorf("server stopped: %w", err)
		}
	}
}

// reload is SIGHUP: the catalogue and the certificates from their files,
// each kept as it was when its file does not load.
func (p *process) reload() {
	reloadCatalogue(p.fc, p.gateway, p.notifier, p.logger)
	for _, c := range []*certificate{p.clientCert, p.adminCert} {
		if err := c.reload(); err != nil {
			p.logger.Printf("SIGHUP: keeping the old certificate: %s", err)
		}
	}
}

// shutdown stops both servers (running calls get grace), then the jobs,
// and writes a checkpoint so the next start replays little.
func (p *process) shutdown(grace time.Duration) error {
	t := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := errors.Join(p.gateway.Shutdown(grace), p.admin.Shutdown(ctx))
	p.logger.Printf("servers stopped in %s", time.Since(t).Round(time.Millisecond))
	p.jobs.stop()
	p.jobs = nil
	t = time.Now()
	if _, cerr := p.ledger.Checkpoint(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	p.logger.Printf("checkpoint written in %s; stopped", time.Since(t).Round(time.Millisecond))
	return err
}

// close releases what open and start took, in reverse order.
func (p *process) close() {
	if p.jobs != nil {
		p.jobs.stop()
	}
	for _, ln := range []net.Listener{p.adminLn, p.clientLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if p.cluster != nil {
		if p.cluster.claim != nil {
			p.cluster.claim.Close()
		}
		p.cluster.pool.Close()
	}
	if p.wlog != nil {
		p.wlog.Close()
	}
	if p.sim != nil {
		p.sim.Shutdown()
	}
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
	if f.clusterDSN != "" {
		fc.Cluster.DSN = f.clusterDSN
	}
}

func loadCatalogue(fc *fileConfig) (*meter.Catalogue, error) {
	cat, _, _, err := readCatalogue(fc)
	return cat, err
}

// readCatalogue loads the catalogue with its bytes, and says whether it is
// the embedded default (which notice periods never refuse).
func readCatalogue(fc *fileConfig) (cat *meter.Catalogue, raw []byte, embedded bool, err error) {
	path := fc.cataloguePath()
	if fc.dir == "" || path == "" {
		cat, err = meter.ParseCatalogue(configs.Models)
		return cat, configs.Models, true, err
	}
	if raw, err = os.ReadFile(path); err != nil {
		return nil, nil, false, fmt.Errorf("cannot load the catalogue: %w", err)
	}
	if cat, err = meter.ParseCatalogue(raw); err != nil {
		return nil, nil, false, fmt.Errorf("cannot load the catalogue: %w", err)
	}
	return cat, raw, false, nil
}

// reloadCatalogue is SIGHUP's catalogue: loaded, checked against the notice
// periods, then in force (or the old one kept, and why logged).
func reloadCatalogue(fc *fileConfig, g *proxy.Gateway, n *notify.Notifier, logger *log.Logger) {
	cat, raw, embedded, err := readCatalogue(fc)
	if err == nil {
		err = acceptCatalogue(fc.DataDir, cat, raw, embedded, testclock.Now(), n.Catalogue, logger)
	}
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
func chooseUpstreams(fc *fileConfig, flags serveFlags, logger *log.Logger) ([]upstream.Config, *simulator.Simulator, error) {
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
	var out []upstream.Config
	for _, u := range fc.Upstreams {
		uc := upstream.Config{Name: u.Name, Kind: u.Kind, BaseURL: u.BaseURL, MaxConns: u.MaxConns,
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
