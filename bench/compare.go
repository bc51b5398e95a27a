package bench

import (
	"context"
	"fmt"
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
	// Load is the load of each side. Its URL and Keys are ignored (each
	// side has its own); its Duration and Requests are each side's total,
	// split evenly over the rounds; its Warmup is run once per side before
	// the first round.
	Load LoadConfig
	// GatewayURL is the gateway's client API.
	GatewayURL string
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
	Ratios  Ratios      `json:"ratios"`
	// GatewayCost is nil when the comparison ran without a probe.
	GatewayCost *GatewayCost `json:"gateway_cost,omitempty"`
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
	// The gateway's settings: ledger.shards, policies.drain_workers,
	// wal.mode (zero or empty: the base configuration's), and the number
	// of benchmark accounts (one key each).
	Shards       int    `json:"shards,omitempty"`
	DrainWorkers int    `json:"drain_workers,omitempty"`
	WALMode      string `json:"wal_mode,omitempty"`
	Accounts     int    `json:"accounts,omitempty"`
	// The upstream's reply shape: text deltas per reply, bytes per delta,
	// pause before each event.
	Deltas       int     `json:"deltas,omitempty"`
	DeltaBytes   int     `json:"delta_bytes,omitempty"`
	EventDelayMs float64 `json:"event_delay_ms"`
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
}

// ComputeRatios compares two finished results.
func ComputeRatios(gateway, direct *LoadResult) Ratios {
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
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
}

// RunCompare runs the comparison. It returns when every call has ended.
func RunCompare(ctx context.Context, cfg CompareConfig) (*Report, error) {
	rounds := cfg.Rounds
	if rounds == 0 {
		rounds = DefaultRounds
	}
	if rounds < 1 || rounds > MaxRounds {
		return nil, fmt.Errorf("bench: rounds %d out of range 1..%d", rounds, MaxRounds)
	}
	idleWindow := cfg.IdleWindow
	if idleWindow == 0 {
		idleWindow = DefaultIdleWindow
	}
	if idleWindow > MaxIdleWindow {
		return nil, fmt.Errorf("bench: idle window %s above %s", idleWindow, MaxIdleWindow)
	}
	gwLoad, dirLoad := cfg.Load, cfg.Load
	gwLoad.URL, gwLoad.Keys, gwLoad.Label = cfg.GatewayURL, cfg.Keys, "gateway"
	dirLoad.URL, dirLoad.Keys, dirLoad.Label = cfg.DirectURL, cfg.Keys, "direct"
	gwLoader, err := newLoader(gwLoad)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	defer gwLoader.close()
	dirLoader, err := newLoader(dirLoad)
	if err != nil {
		return nil, fmt.Errorf("direct: %w", err)
	}
	defer dirLoader.close()
	lc := gwLoader.cfg // defaults applied
	machine := currentMachine()
	gw := &side{name: "gateway", loader: gwLoader, probe: cfg.Probe}
	dir := &side{name: "direct", loader: dirLoader}

	for _, s := range []*side{gw, dir} {
		if lc.Warmup > 0 {
			s.loader.run(ctx, segment{label: s.name + " warm-up", duration: lc.Warmup})
		}
	}
	if gw.probe != nil && idleWindow > 0 {
		if err := gw.measureIdle(ctx, idleWindow); err != nil {
			return nil, err
		}
	}
	segDuration := lc.Duration / time.Duration(rounds)
	for r := range rounds {
		order := []*side{gw, dir}
		if r%2 == 1 {
			order = []*side{dir, gw}
		}
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
		for _, s := range order {
			seg := segment{label: fmt.Sprintf("%s %d/%d", s.name, r+1, rounds), duration: segDuration, requests: segRequests}
			if err := s.runSegment(ctx, seg); err != nil {
				return nil, err
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	machine.LoadAfter = loadAverage()
	gw.result.finish()
	dir.result.finish()
	gw.result.Label, dir.result.Label = "gateway", "direct"
	rep := &Report{
		Settings: Settings{
			Mode: gw.result.Mode, Concurrency: lc.Concurrency, RatePerSec: lc.Rate,
			DurationSec: lc.Duration.Seconds(), Requests: lc.Requests, WarmupSec: lc.Warmup.Seconds(), Rounds: rounds,
			Machine: machine,
		},
		Gateway: gw.result,
		Direct:  dir.result,
		Ratios:  ComputeRatios(gw.result, dir.result),
	}
	if cfg.Probe != nil {
		c := gw.cost.cost()
		rep.GatewayCost = &c
	}
	return rep, nil
}

// measureIdle samples the gateway across a window without calls.
func (s *side) measureIdle(ctx context.Context, window time.Duration) error {
	base0, err := s.probe.Sample(ctx)
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
	r := s.loader.run(ctx, seg)
	if s.probe != nil {
		after, err := s.probe.Sample(ctx)
		if err != nil {
			return err
		}
		s.cost.add(base0, base1, after, r.Calls)
	}
	if s.result == nil {
		s.result = r
	} else {
		s.result.merge(r)
	}
	return nil
}
