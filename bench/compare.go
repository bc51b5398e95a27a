package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Limits of CompareConfig.
const (
	DefaultRounds     = 2
	MaxRounds         = 20
	DefaultIdleWindow = time.Second
	MaxIdleWindow     = time.Minute
)

// CompareConfig is one comparison: the same load through the gateway and
// straight to the upstream, in interleaved segments.
type CompareConfig struct {
	// Load is the load of each side. Its URLs and Keys are ignored (each
	// side has its own); its Duration and Requests are each side's total,
	// split evenly over the rounds; its Warmup is run once per side before
	// the first round.
	Load LoadConfig
	// GatewayURL is the gateway's client API; GatewayMoreURLs those of
	// the other nodes of a cluster, the gateway side's calls spread over
	// all of them in turn (LoadConfig.MoreURLs).
	GatewayURL      string
	GatewayMoreURLs []string
	// Keys are the gateway's API keys, used in turn on both sides.
	Keys []string
	// DirectURL is the upstream the gateway forwards to, called by the
	// same client with the same requests.
	DirectURL string
	// Rounds is the number of segments per side. The sides alternate,
	// gateway first in even rounds and direct first in odd ones, so a
	// drift of the machine's speed (other tenants, thermal limits) hits
	// both alike. Zero means DefaultRounds; at most MaxRounds.
	Rounds int
	// Probe, if set, reads the gateway's costs around each gateway
	// segment. Nil leaves Report.GatewayCost out.
	Probe *GatewayProbe
	// CPUProfile, when set, receives the gateway's CPU profile over its
	// first measured segment; HeapProfile its heap halfway through it.
	CPUProfile, HeapProfile io.Writer
	// HopURL, when set, adds a third side: the same load through the floor
	// hop (ServeHop) in front of the same upstream; HopProbe reads its CPU.
	HopURL   string
	HopProbe *GatewayProbe
	// IdleWindow is how long the gateway is watched without calls, after
	// the warm-up, to measure its idle cost (GatewayCost.Idle…). Zero
	// means DefaultIdleWindow; negative skips it. At most MaxIdleWindow.
	IdleWindow time.Duration
}

// Report is one comparison's result. Settings are filled in by whoever
// knows them (RunCompare the load's, GatewayRunner the gateway's and the
// upstream's).
type Report struct {
	Settings Settings `json:"settings"`
	// Gateway and Direct are the two sides, each merged over its rounds.
	Gateway *LoadResult `json:"gateway"`
	Direct  *LoadResult `json:"direct"`
	// Hop is the floor hop's side, nil without one.
	Hop    *LoadResult `json:"hop,omitempty"`
	Ratios Ratios      `json:"ratios"`
	// GatewayCost is nil when the comparison ran without a probe; HopCost
	// (CPU only) without a hop.
	GatewayCost *GatewayCost `json:"gateway_cost,omitempty"`
	HopCost     *GatewayCost `json:"hop_cost,omitempty"`
}

// Settings describes what was measured.
type Settings struct {
	Mode        string  `json:"mode"`                   // "closed" or "open"
	Concurrency int     `json:"concurrency"`            // clients, or most calls in flight (open loop)
	RatePerSec  float64 `json:"rate_per_sec,omitempty"` // open loop's arrival rate
	// DurationSec and Requests are per side, over all rounds.
	DurationSec float64 `json:"duration_sec"`
	Requests    int64   `json:"requests,omitempty"`
	WarmupSec   float64 `json:"warmup_sec"` // per side, unmeasured
	Rounds      int     `json:"rounds"`     // interleaved segments per side
	// DisconnectShare is the share of calls whose client left after the
	// first delta (LoadConfig.DisconnectShare).
	DisconnectShare float64 `json:"disconnect_share,omitempty"`
	// Axis and Value are the sweep point measured (SweepPoint; empty and
	// zero for the baseline and for tollbench run); AxisDefault is the
	// base configuration's value on Axis, zero when it has none (such as
	// wal_interval_ms under wal.mode sync).
	Axis        string `json:"axis,omitempty"`
	Value       int    `json:"value,omitempty"`
	AxisDefault int    `json:"axis_default,omitempty"`
	// The gateway's settings: the overrides of its base configuration
	// (GatewayConfig.Settings; every other key as the base file has it),
	// the environment added to its own (GatewayConfig.Env), and the
	// number of benchmark accounts (one key each).
	Gateway    []GatewaySetting `json:"gateway,omitempty"`
	GatewayEnv []string         `json:"gateway_env,omitempty"`
	Accounts   int              `json:"accounts,omitempty"`
	// Cluster says the gateway ran in cluster mode, on Nodes nodes (1
	// otherwise).
	Cluster bool `json:"cluster,omitempty"`
	Nodes   int  `json:"nodes,omitempty"`
	// The upstream's reply shape: text deltas per reply, bytes per delta,
	// pause before each event, and the jitter added to each pause
	// (uniform in [0, EventJitterMs]).
	Deltas        int     `json:"deltas,omitempty"`
	DeltaBytes    int     `json:"delta_bytes,omitempty"`
	EventDelayMs  float64 `json:"event_delay_ms"`
	EventJitterMs float64 `json:"event_jitter_ms,omitempty"`
	// Machine is where it ran.
	Machine Machine `json:"machine"`
}

// Ratios compare the gateway side with the direct side: ratios are
// gateway / direct (zero when the direct figure is zero), added figures
// gateway − direct.
type Ratios struct {
	// Throughput is the share of the direct throughput left through the
	// gateway (1 means the gateway costs nothing).
	Throughput float64 `json:"throughput"`
	// Latency ratios at p50 and p99, time to first byte and total time.
	TTFBP50  float64 `json:"ttfb_p50"`
	TTFBP99  float64 `json:"ttfb_p99"`
	TotalP50 float64 `json:"total_p50"`
	TotalP99 float64 `json:"total_p99"`
	// Latency the gateway adds, in milliseconds.
	AddedTTFBP50Ms  float64 `json:"added_ttfb_p50_ms"`
	AddedTTFBP99Ms  float64 `json:"added_ttfb_p99_ms"`
	AddedTotalP50Ms float64 `json:"added_total_p50_ms"`
	AddedTotalP99Ms float64 `json:"added_total_p99_ms"`
	// HopThroughput is the floor hop's share of the direct throughput;
	// GatewayCPUOverHop the gateway's CPU per call over the hop's (1 means
	// the gateway costs what a bare proxy hop costs). Zero without a hop.
	HopThroughput     float64 `json:"hop_throughput,omitempty"`
	GatewayCPUOverHop float64 `json:"gateway_cpu_over_hop,omitempty"`
}

// ratio is a / b, zero when b is.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// ComputeRatios compares two finished results.
func ComputeRatios(gateway, direct *LoadResult) Ratios {
	g, d := gateway, direct
	return Ratios{
		Throughput:      ratio(g.RequestsPerSec, d.RequestsPerSec),
		TTFBP50:         ratio(g.TTFB.P50Ms, d.TTFB.P50Ms),
		TTFBP99:         ratio(g.TTFB.P99Ms, d.TTFB.P99Ms),
		TotalP50:        ratio(g.Total.P50Ms, d.Total.P50Ms),
		TotalP99:        ratio(g.Total.P99Ms, d.Total.P99Ms),
		AddedTTFBP50Ms:  g.TTFB.P50Ms - d.TTFB.P50Ms,
		AddedTTFBP99Ms:  g.TTFB.P99Ms - d.TTFB.P99Ms,
		AddedTotalP50Ms: g.Total.P50Ms - d.Total.P50Ms,
		AddedTotalP99Ms: g.Total.P99Ms - d.Total.P99Ms,
	}
}

// side is one side of a comparison in the making.
type side struct {
	name   string
	loader *loader
	result *LoadResult
	probe  *GatewayProbe
	cost   costMeter
	// profile, when set, is called once as the side's first segment starts.
	profile func()
}

// RunCompare runs the comparison. It returns when every call has ended.
func RunCompare(ctx context.Context, cfg CompareConfig) (*Report, error) {
	rounds, idleWindow, err := cfg.limits()
	if err != nil {
		return nil, err
	}
	sides, err := cfg.sides()
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range sides {
			s.loader.close()
		}
	}()
	lc := sides[0].loader.cfg // defaults applied
	machine := currentMachine()
	for _, s := range sides {
		if s.probe != nil && s.probe.Pid > 0 {
			s.cost.idleRSS, _ = ProcRSS(s.probe.Pid) // before any load
		}
	}
	for _, s := range sides {
		if lc.Warmup > 0 {
			s.loader.run(ctx, segment{label: s.name + " warm-up", duration: lc.Warmup})
		}
	}
	if gw := sides[0]; gw.probe != nil && idleWindow > 0 {
		if err := gw.measureIdle(ctx, idleWindow); err != nil {
			return nil, err
		}
	}
	profiled := sides[0].profileFirstSegment(ctx, cfg, lc.Duration/time.Duration(rounds))
	if err := runRounds(ctx, sides, rounds, lc); err != nil {
		return nil, err
	}
	if err := <-profiled; err != nil {
		return nil, err
	}
	machine.LoadAfter = loadAverage()
	rep := newReport(sides, lc, rounds)
	rep.Settings.Machine = machine
	return rep, nil
}

// limits checks the rounds and the idle window, defaults applied.
func (cfg *CompareConfig) limits() (rounds int, idleWindow time.Duration, err error) {
	rounds, idleWindow = cfg.Rounds, cfg.IdleWindow
	if rounds == 0 {
		rounds = DefaultRounds
	}
	if rounds < 1 || rounds > MaxRounds {
		return 0, 0, fmt.Errorf("bench: rounds %d out of range 1..%d", rounds, MaxRounds)
	}
	if idleWindow == 0 {
		idleWindow = DefaultIdleWindow
	}
	if idleWindow > MaxIdleWindow {
		return 0, 0, fmt.Errorf("bench: idle window %s above %s", idleWindow, MaxIdleWindow)
	}
	return rounds, idleWindow, nil
}

// sides makes the comparison's sides, the gateway first, then direct, then
// the hop when there is one.
func (cfg *CompareConfig) sides() ([]*side, error) {
	targets := []struct {
		name, url string
		probe     *GatewayProbe
	}{{"gateway", cfg.GatewayURL, cfg.Probe}, {"direct", cfg.DirectURL, nil}}
	if cfg.HopURL != "" {
		targets = append(targets, struct {
			name, url string
			probe     *GatewayProbe
		}{"hop", cfg.HopURL, cfg.HopProbe})
	}
	var sides []*side
	for _, t := range targets {
		load := cfg.Load
		load.URL, load.MoreURLs, load.Keys, load.Label = t.url, nil, cfg.Keys, t.name
		if t.name == "gateway" {
			load.MoreURLs = cfg.GatewayMoreURLs
		}
		l, err := newLoader(load)
		if err != nil {
			for _, s := range sides {
				s.loader.close()
			}
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		sides = append(sides, &side{name: t.name, loader: l, probe: t.probe})
	}
	return sides, nil
}

// runRounds runs the measured segments. The sides take turns, the first
// side of each round rotating, so a drift of the machine's speed (other
// tenants, thermal limits) hits each alike.
func runRounds(ctx context.Context, sides []*side, rounds int, lc LoadConfig) error {
	segDuration := lc.Duration / time.Duration(rounds)
	for r := range rounds {
		var segRequests int64
		if lc.Requests > 0 {
			segRequests = lc.Requests / int64(rounds)
			if int64(r) < lc.Requests%int64(rounds) {
				segRequests++
			}
			if segRequests == 0 {
				continue
			}
		}
		for i := range sides {
			s := sides[(i+r)%len(sides)]
			seg := segment{label: fmt.Sprintf("%s %d/%d", s.name, r+1, rounds), duration: segDuration, requests: segRequests}
			if err := s.runSegment(ctx, seg); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// newReport gathers the sides' results.
func newReport(sides []*side, lc LoadConfig, rounds int) *Report {
	for _, s := range sides {
		s.result.finish()
		s.result.Label = s.name
	}
	gw, dir := sides[0], sides[1]
	rep := &Report{
		Settings: Settings{
			Mode: gw.result.Mode, Concurrency: lc.Concurrency, RatePerSec: lc.Rate,
			DurationSec: lc.Duration.Seconds(), Requests: lc.Requests, WarmupSec: lc.Warmup.Seconds(), Rounds: rounds,
			DisconnectShare: lc.DisconnectShare,
		},
		Gateway: gw.result,
		Direct:  dir.result,
		Ratios:  ComputeRatios(gw.result, dir.result),
	}
	if gw.probe != nil {
		c := gw.cost.cost()
		if c.PeakRSSMiB > c.IdleRSSMiB && lc.Concurrency > 0 {
			c.PeakRSSPerCallKiB = (c.PeakRSSMiB - c.IdleRSSMiB) * 1024 / float64(lc.Concurrency)
		}
		rep.GatewayCost = &c
	}
	if len(sides) > 2 {
		hop := sides[2]
		rep.Hop = hop.result
		rep.Ratios.HopThroughput = ratio(hop.result.RequestsPerSec, dir.result.RequestsPerSec)
		if hop.probe != nil {
			c := hop.cost.cost()
			rep.HopCost = &c
			if rep.GatewayCost != nil {
				rep.Ratios.GatewayCPUOverHop = ratio(rep.GatewayCost.CPUMsPerCall, c.CPUMsPerCall)
			}
		}
	}
	return rep
}

// profileFirstSegment arranges for the profiles cfg asks for to be taken
// during the side's first segment, of length seg; the channel gives their
// error once they are written (nil at once when none was asked for).
func (s *side) profileFirstSegment(ctx context.Context, cfg CompareConfig, seg time.Duration) <-chan error {
	done := make(chan error, 1)
	if s.probe == nil || (cfg.CPUProfile == nil && cfg.HeapProfile == nil) {
		done <- nil
		return done
	}
	s.profile = func() {
		go func() {
			var cpuErr, heapErr error
			var wg sync.WaitGroup
			if cfg.CPUProfile != nil {
				wg.Go(func() { cpuErr = s.probe.Profile(ctx, "profile", seg, cfg.CPUProfile) })
			}
			if cfg.HeapProfile != nil {
				wg.Go(func() { heapErr = s.probe.Profile(ctx, "heap", seg/2, cfg.HeapProfile) })
			}
			wg.Wait()
			done <- errors.Join(cpuErr, heapErr)
		}()
	}
	return done
}

// measureIdle samples the gateway across a window without calls, once
// the warm-up's drains have ended.
func (s *side) measureIdle(ctx context.Context, window time.Duration) error {
	// The last sample of the wait is followed at once by the next: the
	// pair measures one scrape, as base0 and base1 do around a segment.
	base0, _, err := s.probe.WaitSettled(ctx, s.loader.cfg.Timeout)
	if err != nil {
		return err
	}
	base1, err := s.probe.Sample(ctx)
	if err != nil {
		return err
	}
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	after, err := s.probe.Sample(ctx)
	if err != nil {
		return err
	}
	s.cost.idle(base0, base1, after)
	return nil
}

// runSegment runs one measured segment of this side, sampling the
// gateway's counters around it when the side has a probe.
func (s *side) runSegment(ctx context.Context, seg segment) error {
	var base0, base1 GatewaySample
	var err error
	if s.probe != nil {
		if base0, err = s.probe.Sample(ctx); err != nil {
			return err
		}
		if base1, err = s.probe.Sample(ctx); err != nil {
			return err
		}
	}
	if s.profile != nil {
		s.profile()
		s.profile = nil
	}
	var rss *peakRSS
	if s.probe != nil && s.probe.Pid > 0 {
		rss = watchRSS(s.probe.Pid)
	}
	r := s.loader.run(ctx, seg)
	if rss != nil {
		s.cost.peakRSS = max(s.cost.peakRSS, rss.end())
	}
	if s.probe != nil {
		// Up to one call's timeout: no drain of a call that could have
		// completed outlasts it by much.
		after, extra, err := s.probe.WaitSettled(ctx, s.loader.cfg.Timeout)
		if err != nil {
			return err
		}
		s.cost.add(base0, base1, after, r.Calls, extra)
	}
	if s.result == nil {
		s.result = r
	} else {
		s.result.merge(r)
	}
	return nil
}
