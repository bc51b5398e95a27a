package bench

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// SweepAxis is a gateway setting a sweep can vary. The axes are those
// that change results on real machines: how finely the ledger is locked,
// how many drains run at once, how many connections the client API
// serves, how often the WAL syncs, and how many cores the runtime uses.
type SweepAxis struct {
	// Name is the axis as the user types it (-axis shards=1,16).
	Name string
	// Doc says what a value sets, for help texts.
	Doc string
	// Max is the largest value accepted; every value must be positive.
	Max int
	// PowerOfTwo says the values must be powers of two.
	PowerOfTwo bool
	// apply returns what value v changes: configuration overrides and
	// environment entries of the gateway.
	apply func(v int) ([]GatewaySetting, []string)
	// base reads the base configuration's value (root is its top-level
	// mapping, env the gateway's added environment); zero when it has no
	// value on this axis, such as wal_interval_ms under wal.mode sync.
	base func(root *yaml.Node, env []string) int
}

// sweepAxes are the axes, in the order help texts list them.
var sweepAxes = []SweepAxis{
	keyAxis("shards", "ledger.shards", "lock shards of the ledger", 1<<16, true),
	keyAxis("drain_workers", "policies.drain_workers", "calls whose client left, drained at once", 1<<20, false),
	keyAxis("concurrency", "limits.concurrency", "connections the client API serves at once (fasthttp's Server.Concurrency); more are refused", 1<<24, false),
	{
		Name: "wal_interval_ms",
		Doc:  "wal.mode interval with wal.interval this many ms: syncs on a timer instead of before each acknowledgement",
		Max:  10_000,
		apply: func(v int) ([]GatewaySetting, []string) {
			return []GatewaySetting{{"wal.mode", "interval"}, {"wal.interval", strconv.Itoa(v) + "ms"}}, nil
		},
		base: func(root *yaml.Node, _ []string) int {
			if mode, _ := getYAML(root, []string{"wal", "mode"}); mode != "interval" {
				return 0
			}
			s, _ := getYAML(root, []string{"wal", "interval"})
			d, err := time.ParseDuration(s)
			if err != nil || d%time.Millisecond != 0 {
				return 0
			}
			return int(d / time.Millisecond)
		},
	},
	{
		Name: "gomaxprocs",
		Doc:  "GOMAXPROCS of the gateway process: the cores its Go runtime uses",
		Max:  1024,
		apply: func(v int) ([]GatewaySetting, []string) {
			return nil, []string{"GOMAXPROCS=" + strconv.Itoa(v)}
		},
		base: func(_ *yaml.Node, env []string) int {
			for _, e := range slices.Backward(env) {
				if v, ok := strings.CutPrefix(e, "GOMAXPROCS="); ok {
					n, _ := strconv.Atoi(v)
					return n
				}
			}
			// The gateway runs on this machine with tollbench's own
			// environment in this respect, so its runtime picks the same.
			return runtime.GOMAXPROCS(0)
		},
	},
}

// keyAxis is an axis that sets one integer key of the configuration.
func keyAxis(name, key, doc string, maxValue int, powerOfTwo bool) SweepAxis {
	path := strings.Split(key, ".")
	return SweepAxis{
		Name: name, Doc: key + ": " + doc, Max: maxValue, PowerOfTwo: powerOfTwo,
		apply: func(v int) ([]GatewaySetting, []string) {
			return []GatewaySetting{{key, strconv.Itoa(v)}}, nil
		},
		base: func(root *yaml.Node, _ []string) int {
			s, _ := getYAML(root, path)
			n, _ := strconv.Atoi(s)
			return n
		},
	}
}

// SweepAxes lists the axes a sweep can vary.
func SweepAxes() []SweepAxis { return slices.Clone(sweepAxes) }

// LookupSweepAxis returns the axis of that name.
func LookupSweepAxis(name string) (SweepAxis, bool) {
	i := slices.IndexFunc(sweepAxes, func(a SweepAxis) bool { return a.Name == name })
	if i < 0 {
		return SweepAxis{}, false
	}
	return sweepAxes[i], true
}

// AxisNames is the axes' names, comma-separated, for messages.
func AxisNames() string {
	names := make([]string, len(sweepAxes))
	for i, a := range sweepAxes {
		names[i] = a.Name
	}
	return strings.Join(names, ", ")
}

// DefaultSweepAxes is the sweep run when none is given: values on either
// side of configs/tollgate.yaml's (shards 64, drain workers 256,
// concurrency 65536, wal.mode sync, GOMAXPROCS the machine's), which the
// baseline measures; a concurrency below the default load's 64 clients
// shows what a cap set too low does. 13 points and the baseline.
func DefaultSweepAxes() []AxisValues {
	return []AxisValues{
		{"shards", []int{1, 16, 256}},
		{"drain_workers", []int{4, 64, 1024}},
		{"concurrency", []int{32, 256, 4096}},
		{"wal_interval_ms", []int{2, 10}},
		{"gomaxprocs", []int{1, 2}},
	}
}

// ValueRange says which values the axis accepts: "1..65536, powers of
// two".
func (a SweepAxis) ValueRange() string {
	r := "1.." + strconv.Itoa(a.Max)
	if a.PowerOfTwo {
		r += ", powers of two"
	}
	return r
}

// checkValue reports whether v is a value the axis accepts.
func (a SweepAxis) checkValue(v int) bool {
	return v >= 1 && v <= a.Max && (!a.PowerOfTwo || v&(v-1) == 0)
}

// pointConfig is gw with point p's setting applied after gw's own.
func pointConfig(gw GatewayConfig, p SweepPoint) (GatewayConfig, error) {
	gw.Settings, gw.Env = slices.Clone(gw.Settings), slices.Clone(gw.Env)
	if p.IsBaseline() {
		return gw, nil
	}
	a, ok := LookupSweepAxis(p.Axis)
	if !ok || !a.checkValue(p.Value) {
		return gw, errBadPoint(p)
	}
	settings, env := a.apply(p.Value)
	gw.Settings = append(gw.Settings, settings...)
	gw.Env = append(gw.Env, env...)
	return gw, nil
}

// axisDefault is the value of axis in the base configuration gw starts
// from, its own settings applied; zero when there is none.
func axisDefault(gw GatewayConfig, axis string) int {
	a, ok := LookupSweepAxis(axis)
	if !ok {
		return 0
	}
	conf, err := editGatewayConfig(gw.BaseConfig, gw.Settings)
	if err != nil {
		return 0
	}
	var doc yaml.Node
	if yaml.Unmarshal(conf, &doc) != nil || len(doc.Content) != 1 {
		return 0
	}
	return a.base(doc.Content[0], gw.Env)
}
