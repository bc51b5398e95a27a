package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/bench"
)

// The sweep's defaults where they differ from run's. sweepDuration, per
// side and point, is shorter, as a sweep runs many points.
// sweepEventDelay paces the replies just enough (a stream of about 6 ms)
// that a client leaving after the first delta finds the gateway still
// streaming, so that it drains and the drain_workers axis has something
// to show: back to back, the gateway has written a whole reply before
// the client has read its first delta, and next to no call drains. It is
// short enough that the gateway, not the pacing, still bounds the
// throughput at the default concurrency.
const (
	sweepDuration   = 4 * time.Second
	sweepDisconnect = 0.2
	sweepEventDelay = 200 * time.Microsecond
)

// sweepCommand is `tollbench sweep`: the baseline, then one setting at a
// time along each -axis.
func sweepCommand(ctx context.Context, args []string, stdout, stderr io.Writer, stderrIsTerminal bool) error {
	var f commonFlags
	var axes axisFlag
	var chart string
	fs := flag.NewFlagSet("tollbench sweep", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs, commonDefaults{duration: sweepDuration, disconnect: sweepDisconnect, eventDelay: sweepEventDelay})
	fs.Var(&axes, "axis", axisUsage())
	fs.StringVar(&chart, "chart", "tollbench-sweep", "SVG charts, one per axis: `PREFIX`-AXIS.svg, such as tollbench-sweep-shards.svg (empty: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sc := bench.SweepConfig{Axes: axes}
	if len(axes) == 0 {
		sc.Axes = bench.DefaultSweepAxes()
	}
	if _, err := sc.Points(); err != nil {
		return fmt.Errorf("%w: -axis: %s", errUsage, err)
	}
	s, err := f.setup(ctx, stderr, stderrIsTerminal)
	if err != nil {
		return err
	}
	defer s.cleanup()
	if stderrIsTerminal && !f.noProgress {
		sc.OnPoint = func(i, n int, p bench.SweepPoint) {
			fmt.Fprintf(stderr, "point %d/%d: %s\n", i+1, n, p)
		}
	}
	res, err := bench.RunSweep(ctx, sc, bench.GatewayRunner(s.gateway, s.compare, s.upstream.Config()))
	if res == nil {
		return err
	}
	if chart != "" {
		if cerr := writeCharts(strings.TrimSuffix(chart, ".svg"), res, stderr); cerr != nil {
			return cerr
		}
	}
	if werr := writeReport(stdout, f.jsonOut, res, bench.WriteSweepMarkdown); werr != nil {
		return werr
	}
	if err == nil && res.Failed() {
		err = errors.New("some sweep points failed (see the errors column)")
	}
	return err
}

// axisFlag is the repeatable -axis name=v1,v2,... flag.
type axisFlag []bench.AxisValues

func (a *axisFlag) String() string {
	if a == nil {
		return ""
	}
	return formatAxes(*a)
}

// Set adds one axis, checking its name and values' syntax; the ranges
// and the number of points are SweepConfig.Points's to check.
func (a *axisFlag) Set(s string) error {
	name, list, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("%q is not an axis and its values, such as shards=1,16", s)
	}
	if _, ok := bench.LookupSweepAxis(name); !ok {
		return fmt.Errorf("unknown axis %q (axes: %s)", name, bench.AxisNames())
	}
	values, err := parseInts(list)
	if err != nil {
		return fmt.Errorf("%s: %s", name, err)
	}
	*a = append(*a, bench.AxisValues{Axis: name, Values: values})
	return nil
}

// formatAxes writes axes as -axis takes them: "shards=1,16 gomaxprocs=1".
func formatAxes(axes []bench.AxisValues) string {
	parts := make([]string, len(axes))
	for i, av := range axes {
		vs := make([]string, len(av.Values))
		for j, v := range av.Values {
			vs[j] = strconv.Itoa(v)
		}
		parts[i] = av.Axis + "=" + strings.Join(vs, ",")
	}
	return strings.Join(parts, " ")
}

// axisUsage is the -axis flag's help: the axes, and the default sweep
// with its size.
func axisUsage() string {
	var b strings.Builder
	b.WriteString("vary a setting: `name=v1,v2,...`, one value at a time from the baseline (repeatable). Axes:")
	for _, a := range bench.SweepAxes() {
		fmt.Fprintf(&b, "\n  %s: %s (%s)", a.Name, a.Doc, a.ValueRange())
	}
	def := bench.DefaultSweepAxes()
	points, _ := bench.SweepConfig{Axes: def}.Points()
	fmt.Fprintf(&b, "\nWithout -axis: %s, the baseline first: %d points, about %d minutes at the default -duration",
		formatAxes(def), len(points), (len(points)*sweepPointSeconds+30)/60)
	return b.String()
}

// sweepPointSeconds is about how long a point takes at the defaults: a
// second of warm-up per side, the idle window, the measured time per
// side, and a second for the gateway's start, its accounts and its stop.
// On two shared cores a point took 9.3 s at -duration 3s, so about 11 s
// at the default 4 s: the estimate errs long.
const sweepPointSeconds = 2 + 1 + 2*int(sweepDuration/time.Second) + 1

// writeCharts writes one chart per axis of the sweep, PREFIX-AXIS.svg,
// and says where on stderr.
func writeCharts(prefix string, res *bench.SweepResult, stderr io.Writer) error {
	for _, axis := range res.Axes() {
		path := prefix + "-" + axis + ".svg"
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("cannot write the chart: %w", err)
		}
		if err := bench.WriteAxisSVG(f, res, axis); err != nil {
			f.Close()
			return fmt.Errorf("cannot write the chart %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("cannot write the chart %s: %w", path, err)
		}
		fmt.Fprintf(stderr, "tollbench: chart %s\n", path)
	}
	return nil
}

// parseInts parses "1,4,16"; at most bench.MaxSweepPoints values.
func parseInts(s string) ([]int, error) {
	parts := strings.Split(s, ",")
	if len(parts) > bench.MaxSweepPoints {
		return nil, fmt.Errorf("more than %d values", bench.MaxSweepPoints)
	}
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", p)
		}
		out = append(out, v)
	}
	return out, nil
}
