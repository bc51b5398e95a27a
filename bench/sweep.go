package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// MaxSweepPoints bounds a sweep, its baseline included: each point starts
// a gateway and runs the whole comparison, so a sweep of more points would
// run for hours.
const MaxSweepPoints = 64

// SweepPoint is one gateway setting to measure: Value on Axis (a
// SweepAxis name), every other setting at the base configuration's. The
// baseline, everything at the base configuration's, has an empty Axis and
// a zero Value.
type SweepPoint struct {
	Axis  string `json:"axis,omitempty"`
	Value int    `json:"value,omitempty"`
}

// IsBaseline reports whether p is the baseline point.
func (p SweepPoint) IsBaseline() bool { return p.Axis == "" }

// String is "baseline" or the axis and value, "shards 16".
func (p SweepPoint) String() string {
	if p.IsBaseline() {
		return "baseline"
	}
	return p.Axis + " " + strconv.Itoa(p.Value)
}

func errBadPoint(p SweepPoint) error {
	return fmt.Errorf("bench: %s is not a sweep point (axes: %s)", p, AxisNames())
}

// AxisValues are the values a sweep gives one axis, in the order they are
// run.
type AxisValues struct {
	Axis   string
	Values []int
}

// SweepConfig is a sweep that varies one setting at a time: first the
// baseline, then each axis's values in turn, the other settings at the
// base configuration's. A grid of every combination would cost the
// product of the axes' lengths in points and still show each setting's
// effect only against one value of the others.
type SweepConfig struct {
	// Axes are the axes to vary, in order; each at most once. Empty means
	// a sweep of the baseline alone.
	Axes []AxisValues
	// OnPoint, if set, is called before each point is run, with its
	// index and the number of points (for progress displays).
	OnPoint func(i, n int, p SweepPoint)
}

// Points lists the sweep's points, the baseline first, checking the axes'
// names and values and that there are at most MaxSweepPoints in all.
func (c SweepConfig) Points() ([]SweepPoint, error) {
	points := []SweepPoint{{}}
	seen := make(map[string]bool, len(c.Axes))
	for _, av := range c.Axes {
		a, ok := LookupSweepAxis(av.Axis)
		switch {
		case !ok:
			return nil, fmt.Errorf("bench: unknown sweep axis %q (axes: %s)", av.Axis, AxisNames())
		case seen[av.Axis]:
			return nil, fmt.Errorf("bench: sweep axis %s given twice", av.Axis)
		case len(av.Values) == 0:
			return nil, fmt.Errorf("bench: sweep axis %s has no values", av.Axis)
		}
		seen[av.Axis] = true
		for _, v := range av.Values {
			if !a.checkValue(v) {
				return nil, fmt.Errorf("bench: %s %d out of range (%s)", a.Name, v, a.ValueRange())
			}
			points = append(points, SweepPoint{Axis: a.Name, Value: v})
		}
		if len(points) > MaxSweepPoints {
			return nil, fmt.Errorf("bench: a sweep of more than %d points, the baseline included", MaxSweepPoints)
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

// Baseline is the baseline's row, nil when the sweep has none.
func (r *SweepResult) Baseline() *SweepRow {
	for i := range r.Rows {
		if r.Rows[i].IsBaseline() {
			return &r.Rows[i]
		}
	}
	return nil
}

// Axes lists the axes of the sweep's points, in order of appearance.
func (r *SweepResult) Axes() []string {
	var axes []string
	for _, row := range r.Rows {
		if !row.IsBaseline() && !slices.Contains(axes, row.Axis) {
			axes = append(axes, row.Axis)
		}
	}
	return axes
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
// gateway of gw with the point's setting applied after gw's own, runs the
// comparison cmp against it (GatewayURL, Keys and Probe set from the
// gateway; DirectURL should be gw.UpstreamURL), and stops it. shape is the
// upstream's configuration, recorded in the report's settings with the
// point and the gateway's settings.
func GatewayRunner(gw GatewayConfig, cmp CompareConfig, shape UpstreamConfig) SweepRunner {
	return func(ctx context.Context, p SweepPoint) (*Report, error) {
		gcfg, err := pointConfig(gw, p)
		if err != nil {
			return nil, err
		}
		g, err := StartGateway(ctx, gcfg)
		if err != nil {
			return nil, err
		}
		c := cmp
		c.GatewayURL, c.GatewayMoreURLs, c.Keys, c.Probe = g.ClientURL(), g.OtherClientURLs(), g.Keys(), g.Probe()
		rep, runErr := RunCompare(ctx, c)
		stopErr := g.Stop()
		if rep != nil {
			s := &rep.Settings
			s.Axis, s.Value, s.AxisDefault = p.Axis, p.Value, axisDefault(gw, p.Axis)
			s.Gateway, s.GatewayEnv, s.Accounts = gcfg.Settings, gcfg.Env, len(g.Keys())
			s.Cluster, s.Nodes = gcfg.ClusterDSN != "", 1+len(g.OtherClientURLs())
			s.Deltas, s.DeltaBytes, s.EventDelayMs = shape.Deltas, shape.DeltaBytes, float64(shape.EventDelay)/1e6
			s.EventJitterMs = float64(shape.EventJitter) / 1e6
		}
		return rep, errors.Join(runErr, stopErr)
	}
}
