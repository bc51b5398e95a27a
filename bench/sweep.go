package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// MaxSweepPoints bounds a sweep: each point starts a gateway and runs the
// whole comparison, so a sweep of more points would run for hours.
const MaxSweepPoints = 64

// SweepPoint is one combination of gateway settings. Zero keeps the base
// configuration's value.
type SweepPoint struct {
	Shards       int `json:"shards"`        // ledger.shards
	DrainWorkers int `json:"drain_workers"` // policies.drain_workers
}

// SweepConfig is a sweep over every combination of Shards × DrainWorkers,
// shards in the outer loop, in the order given.
type SweepConfig struct {
	// Shards are the ledger.shards values; empty means one point with the
	// base configuration's value.
	Shards []int
	// DrainWorkers are the policies.drain_workers values; empty likewise.
	DrainWorkers []int
	// OnPoint, if set, is called before each point is run, with its
	// index and the number of points (for progress displays).
	OnPoint func(i, n int, p SweepPoint)
}

// Points lists the sweep's combinations, checking that there are at most
// MaxSweepPoints and that no value is negative.
func (c SweepConfig) Points() ([]SweepPoint, error) {
	shards, workers := c.Shards, c.DrainWorkers
	if len(shards) == 0 {
		shards = []int{0}
	}
	if len(workers) == 0 {
		workers = []int{0}
	}
	if n := len(shards) * len(workers); n > MaxSweepPoints {
		return nil, fmt.Errorf("bench: a sweep of %d points is more than %d", n, MaxSweepPoints)
	}
	points := make([]SweepPoint, 0, len(shards)*len(workers))
	for _, s := range shards {
		for _, w := range workers {
			if s < 0 || w < 0 {
				return nil, fmt.Errorf("bench: negative sweep value (shards %d, drain workers %d)", s, w)
			}
			points = append(points, SweepPoint{Shards: s, DrainWorkers: w})
		}
	}
	return points, nil
}

// SweepRunner measures one point: typically GatewayRunner's, which starts
// a gateway with the point's settings and runs a comparison against it.
type SweepRunner func(ctx context.Context, p SweepPoint) (*Report, error)

// SweepResult is a sweep's outcome, one row per point in sweep order.
type SweepResult struct {
	Rows []SweepRow `json:"rows"` // one per point, in sweep order
}

// SweepRow is one point's outcome: its report, its error, or both (a
// gateway that measured fine but did not stop cleanly).
type SweepRow struct {
	SweepPoint
	Report *Report `json:"report,omitempty"` // nil when the point could not be measured
	Error  string  `json:"error,omitempty"`  // empty when all went well
}

// Failed reports whether any point had an error.
func (r *SweepResult) Failed() bool {
	for _, row := range r.Rows {
		if row.Error != "" {
			return true
		}
	}
	return false
}

// RunSweep runs every point in turn. A point's error is recorded in its
// row and the sweep goes on, so that one bad setting does not cost the
// others; cancelling ctx stops the sweep and returns the rows so far with
// ctx's error.
func RunSweep(ctx context.Context, cfg SweepConfig, run SweepRunner) (*SweepResult, error) {
	points, err := cfg.Points()
	if err != nil {
		return nil, err
	}
	res := &SweepResult{Rows: make([]SweepRow, 0, len(points))}
	for i, p := range points {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if cfg.OnPoint != nil {
			cfg.OnPoint(i, len(points), p)
		}
		rep, err := run(ctx, p)
		row := SweepRow{SweepPoint: p, Report: rep}
		if err != nil {
			row.Error = err.Error()
		}
		res.Rows = append(res.Rows, row)
	}
	return res, ctx.Err()
}

// GatewayRunner returns a SweepRunner that, for each point, starts the
// gateway of gw with the point's settings, runs the comparison cmp against
// it (GatewayURL, Keys and Probe set from the gateway; DirectURL should
// be gw.UpstreamURL), and stops it. shape is the upstream's configuration,
// recorded in the report's settings.
func GatewayRunner(gw GatewayConfig, cmp CompareConfig, shape UpstreamConfig) SweepRunner {
	return func(ctx context.Context, p SweepPoint) (*Report, error) {
		gcfg := gw
		gcfg.Settings = slices.Clone(gw.Settings)
		if p.Shards != 0 {
			gcfg.Settings = append(gcfg.Settings, GatewaySetting{"ledger.shards", strconv.Itoa(p.Shards)})
		}
		if p.DrainWorkers != 0 {
			gcfg.Settings = append(gcfg.Settings, GatewaySetting{"policies.drain_workers", strconv.Itoa(p.DrainWorkers)})
		}
		g, err := StartGateway(ctx, gcfg)
		if err != nil {
			return nil, err
		}
		c := cmp
		c.GatewayURL, c.Keys, c.Probe = g.ClientURL(), g.Keys(), g.Probe()
		rep, runErr := RunCompare(ctx, c)
		stopErr := g.Stop()
		if rep != nil {
			s := &rep.Settings
			s.Gateway, s.GatewayEnv, s.Accounts = gcfg.Settings, gcfg.Env, len(g.Keys())
			s.Deltas, s.DeltaBytes, s.EventDelayMs = shape.Deltas, shape.DeltaBytes, float64(shape.EventDelay)/1e6
			s.EventJitterMs = float64(shape.EventJitter) / 1e6
		}
		return rep, errors.Join(runErr, stopErr)
	}
}
