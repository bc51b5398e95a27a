package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/bytedance/sonic"
	"github.com/tollgate/tollgate/bench"
	"github.com/tollgate/tollgate/configs"
)

// commonFlags are the flags of run and sweep: the load, the upstream's
// replies, and how to start the gateway.
type commonFlags struct {
	tollgate    string
	config      string
	catalogue   string
	concurrency int
	rate        float64
	duration    time.Duration
	requests    int64
	warmup      time.Duration
	rounds      int
	idleWindow  time.Duration
	timeout     time.Duration
	disconnect  float64
	deltas      int
	deltaBytes  int
	eventDelay  time.Duration
	eventJitter time.Duration
	accounts    int
	walMode     string
	clusterDSN  string
	nodes       int
	jsonOut     bool
	noProgress  bool
	hop         bool
}

// commonDefaults are the defaults in which run and sweep differ.
type commonDefaults struct {
	duration   time.Duration
	disconnect float64
	eventDelay time.Duration
}

func (f *commonFlags) register(fs *flag.FlagSet, d commonDefaults) {
	fs.StringVar(&f.tollgate, "tollgate", "", "tollgate binary (default: build ./cmd/tollgate into a temporary directory, else ./bin/tollgate)")
	fs.StringVar(&f.config, "config", "configs/tollgate.yaml", "base gateway configuration (the embedded default when this default path is absent)")
	fs.StringVar(&f.catalogue, "catalogue", "configs/models.yaml", "model catalogue (the embedded default when this default path is absent)")
	fs.IntVar(&f.concurrency, "concurrency", bench.DefaultConcurrency, "closed loop: concurrent clients; open loop: most calls in flight")
	fs.Float64Var(&f.rate, "rate", 0, "open loop: calls started per second, latency counted from each call's intended start (0: closed loop)")
	fs.DurationVar(&f.duration, "duration", d.duration, "measured time per side (gateway, direct, hop), split over the rounds")
	fs.Int64Var(&f.requests, "requests", 0, "measured calls per side, split over the rounds (0: bounded by -duration only)")
	fs.DurationVar(&f.warmup, "warmup", time.Second, "unmeasured load per side before the first round")
	fs.IntVar(&f.rounds, "rounds", bench.DefaultRounds, "interleaved segments per side")
	fs.DurationVar(&f.idleWindow, "idle-window", bench.DefaultIdleWindow, "time the gateway is watched without calls, to measure its idle cost (negative: skip)")
	fs.DurationVar(&f.timeout, "timeout", bench.DefaultTimeout, "one call's limit, from sending to the last byte")
	fs.Float64Var(&f.disconnect, "disconnect", d.disconnect, "share of calls (0 to 1) whose client leaves after the first delta, so that the gateway drains (only if it is still streaming: see -event-delay)")
	fs.IntVar(&f.deltas, "deltas", bench.DefaultDeltas, "text deltas per streamed reply")
	fs.IntVar(&f.deltaBytes, "delta-bytes", bench.DefaultDeltaBytes, "bytes of text per delta")
	fs.DurationVar(&f.eventDelay, "event-delay", d.eventDelay, "upstream pause before each event (0: back to back)")
	fs.DurationVar(&f.eventJitter, "event-jitter", 0, "added to each pause, uniform in [0, this]: -event-delay 20ms -event-jitter 30ms -deltas 100 streams for seconds, as a model does")
	fs.IntVar(&f.accounts, "accounts", bench.DefaultAccounts, "benchmark accounts (one key each), spread over the ledger's shards")
	fs.StringVar(&f.walMode, "wal-mode", "", "wal.mode for the gateway: sync, interval or none (default: the configuration's)")
	fs.StringVar(&f.clusterDSN, "cluster-dsn", "", "run the gateway in cluster mode on this PostgreSQL (a postgres:// URL on loopback, the password in PGPASSWORD)")
	fs.IntVar(&f.nodes, "nodes", 1, "cluster nodes (with -cluster-dsn): the gateway side's calls go to each in turn")
	fs.BoolVar(&f.jsonOut, "json", false, "write JSON instead of a Markdown table")
	fs.BoolVar(&f.noProgress, "no-progress", false, "no progress line, even on a terminal")
}

// setup is what run and sweep share once flags are parsed: a running
// upstream and the configurations for the gateway and the comparison.
type setup struct {
	upstream *bench.Upstream
	gateway  bench.GatewayConfig
	compare  bench.CompareConfig
	cleanup  func()
}

func (f *commonFlags) setup(ctx context.Context, stderr io.Writer, stderrIsTerminal bool) (*setup, error) {
	// The rest of the flags' values are checked by bench, once the
	// upstream runs; these are cheap to refuse as usage errors first.
	if f.walMode != "" && f.walMode != "sync" && f.walMode != "interval" && f.walMode != "none" {
		return nil, fmt.Errorf("%w: -wal-mode %q is not sync, interval or none", errUsage, f.walMode)
	}
	if !(f.disconnect >= 0 && f.disconnect <= 1) {
		return nil, fmt.Errorf("%w: -disconnect %g is not a share from 0 to 1", errUsage, f.disconnect)
	}
	if f.nodes < 1 || f.nodes > bench.MaxNodes || f.nodes > 1 && f.clusterDSN == "" {
		return nil, fmt.Errorf("%w: -nodes %d: from 1 to %d, and more than one needs -cluster-dsn", errUsage, f.nodes, bench.MaxNodes)
	}
	if f.clusterDSN != "" {
		if err := bench.CheckClusterDSN(f.clusterDSN); err != nil {
			return nil, fmt.Errorf("%w: -cluster-dsn: %w", errUsage, err)
		}
	}
	baseConfig, err := readDefaulted(f.config, "configs/tollgate.yaml", configs.Gateway)
	if err != nil {
		return nil, err
	}
	catalogue, err := readDefaulted(f.catalogue, "configs/models.yaml", configs.Models)
	if err != nil {
		return nil, err
	}
	binary, cleanupBinary, err := findTollgate(ctx, f.tollgate, stderr)
	if err != nil {
		return nil, err
	}
	up, err := bench.StartUpstream(bench.UpstreamConfig{Deltas: f.deltas, DeltaBytes: f.deltaBytes, EventDelay: f.eventDelay, EventJitter: f.eventJitter})
	if err != nil {
		cleanupBinary()
		return nil, err
	}
	s := &setup{upstream: up, cleanup: func() {
		up.Close()
		cleanupBinary()
	}}
	s.compare = bench.CompareConfig{DirectURL: up.URL(), Rounds: f.rounds, IdleWindow: f.idleWindow}
	if f.hop {
		exe, err := os.Executable()
		if err == nil {
			var hop *bench.Hop
			if hop, err = bench.StartHop(ctx, exe, up.URL()); err == nil {
				s.compare.HopURL, s.compare.HopProbe = hop.URL(), hop.Probe()
				s.cleanup = func() { hop.Close(); up.Close(); cleanupBinary() }
			}
		}
		if err != nil {
			s.cleanup()
			return nil, err
		}
	}
	s.gateway = bench.GatewayConfig{
		Binary:      binary,
		BaseConfig:  baseConfig,
		Catalogue:   catalogue,
		UpstreamURL: up.URL(),
		Accounts:    f.accounts,
		Env:         bench.RuntimeEnv(),
		ClusterDSN:  f.clusterDSN,
		Nodes:       f.nodes,
	}
	if f.walMode != "" {
		s.gateway.Settings = append(s.gateway.Settings, bench.GatewaySetting{Key: "wal.mode", Value: f.walMode})
	}
	s.compare.Load = f.load(stderr, stderrIsTerminal)
	return s, nil
}

// load is the load the flags ask for, with a progress line on a terminal.
func (f *commonFlags) load(stderr io.Writer, stderrIsTerminal bool) bench.LoadConfig {
	load := bench.LoadConfig{
		Concurrency:     f.concurrency,
		Rate:            f.rate,
		Duration:        f.duration,
		Requests:        f.requests,
		Warmup:          f.warmup,
		Timeout:         f.timeout,
		DisconnectShare: f.disconnect,
	}
	if stderrIsTerminal && !f.noProgress {
		load.Progress = bench.ProgressPrinter(stderr)
	}
	return load
}

// runCommand is `tollbench run`: one comparison at one setting.
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer, stderrIsTerminal bool) error {
	var f commonFlags
	var shards, workers int
	var cpuProfile, heapProfile string
	fs := flag.NewFlagSet("tollbench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs, commonDefaults{duration: bench.DefaultDuration})
	fs.IntVar(&shards, "shards", 0, "ledger.shards for the gateway (0: the configuration's)")
	fs.IntVar(&workers, "workers", 0, "policies.drain_workers for the gateway (0: the configuration's)")
	fs.BoolVar(&f.hop, "hop", true, "also measure the floor: the same load through a bare httputil.ReverseProxy hop")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write the gateway's CPU profile over its first measured round to this file (go tool pprof)")
	fs.StringVar(&heapProfile, "memprofile", "", "write the gateway's heap profile, halfway through its first measured round, to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, err := f.setup(ctx, stderr, stderrIsTerminal)
	if err != nil {
		return err
	}
	defer s.cleanup()
	for _, p := range []struct {
		path string
		dst  *io.Writer
	}{{cpuProfile, &s.compare.CPUProfile}, {heapProfile, &s.compare.HeapProfile}} {
		if p.path == "" {
			continue
		}
		pf, err := os.Create(p.path)
		if err != nil {
			return err
		}
		defer pf.Close()
		*p.dst = pf
	}
	for _, o := range []struct {
		key string
		v   int
	}{{"ledger.shards", shards}, {"policies.drain_workers", workers}} {
		if o.v != 0 {
			s.gateway.Settings = append(s.gateway.Settings, bench.GatewaySetting{Key: o.key, Value: strconv.Itoa(o.v)})
		}
	}
	runner := bench.GatewayRunner(s.gateway, s.compare, s.upstream.Config())
	rep, err := runner(ctx, bench.SweepPoint{})
	if rep == nil {
		return err
	}
	if werr := writeReport(stdout, f.jsonOut, rep, bench.WriteMarkdown); werr != nil {
		return werr
	}
	return err
}

// writeReport writes v as indented JSON or with its Markdown writer.
func writeReport[T any](w io.Writer, asJSON bool, v T, markdown func(io.Writer, T) error) error {
	if !asJSON {
		return markdown(w, v)
	}
	enc := sonic.ConfigStd.NewEncoder(w) // encoding/json's output, keys sorted
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %s", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}

// readDefaulted reads path, or returns embedded when path is the default
// and absent (tollbench run outside the repository).
func readDefaulted(path, defaultPath string, embedded []byte) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if path == defaultPath && errors.Is(err, os.ErrNotExist) {
			return embedded, nil
		}
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	return data, nil
}
