package bench

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// sweptConf is the part of the gateway's configuration the axes set.
type sweptConf struct {
	Ledger struct {
		Shards int `yaml:"shards"`
	} `yaml:"ledger"`
	WAL struct {
		Mode     string `yaml:"mode"`
		Interval string `yaml:"interval"`
	} `yaml:"wal"`
	Limits struct {
		Concurrency int `yaml:"concurrency"`
	} `yaml:"limits"`
	Policies struct {
		DrainWorkers int `yaml:"drain_workers"`
	} `yaml:"policies"`
}

func readDefaultConfig(t *testing.T) []byte {
	t.Helper()
	base, err := os.ReadFile("../configs/tollgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// TestPointConfig checks what each axis changes, on the default
// configuration: its keys in the file the gateway reads, or its
// environment, after the base settings and never in their place.
func TestPointConfig(t *testing.T) {
	gw := GatewayConfig{
		BaseConfig: readDefaultConfig(t),
		// Room to grow in place: a point must not write into gw's arrays.
		Settings: append(make([]GatewaySetting, 0, 8), GatewaySetting{"wal.mode", "none"}),
		Env:      append(make([]string, 0, 8), "GOGC=200"),
	}
	f := func(p SweepPoint, wantEnv []string, want func(c *sweptConf)) {
		t.Helper()
		got, err := pointConfig(gw, p)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Env, wantEnv) {
			t.Fatalf("unexpected environment of %s; got %q; want %q", p, got.Env, wantEnv)
		}
		out, err := editGatewayConfig(gw.BaseConfig, got.Settings)
		if err != nil {
			t.Fatal(err)
		}
		var c, wantConf sweptConf
		if err := yaml.Unmarshal(out, &c); err != nil {
			t.Fatal(err)
		}
		wantConf.Ledger.Shards, wantConf.Policies.DrainWorkers, wantConf.Limits.Concurrency = 64, 256, 65536
		wantConf.WAL.Mode, wantConf.WAL.Interval = "none", "10ms"
		want(&wantConf)
		if c != wantConf {
			t.Fatalf("unexpected configuration of %s;\ngot  %+v\nwant %+v", p, c, wantConf)
		}
	}
	base := []string{"GOGC=200"}
	f(SweepPoint{}, base, func(c *sweptConf) {})
	f(SweepPoint{"shards", 16}, base, func(c *sweptConf) { c.Ledger.Shards = 16 })
	f(SweepPoint{"drain_workers", 8}, base, func(c *sweptConf) { c.Policies.DrainWorkers = 8 })
	f(SweepPoint{"concurrency", 32}, base, func(c *sweptConf) { c.Limits.Concurrency = 32 })
	f(SweepPoint{"wal_interval_ms", 5}, base, func(c *sweptConf) { c.WAL.Mode, c.WAL.Interval = "interval", "5ms" })
	// GOMAXPROCS goes last, so that it wins over one passed through.
	f(SweepPoint{"gomaxprocs", 1}, []string{"GOGC=200", "GOMAXPROCS=1"}, func(c *sweptConf) {})
	if len(gw.Settings) != 1 || len(gw.Env) != 1 || gw.Settings[:2][1] != (GatewaySetting{}) || gw.Env[:2][1] != "" {
		t.Fatalf("a point changed the base gateway configuration: %v %q", gw.Settings[:2], gw.Env[:2])
	}
	for _, p := range []SweepPoint{{"bogus", 1}, {"shards", 3}, {"gomaxprocs", 0}} {
		if _, err := pointConfig(gw, p); err == nil {
			t.Fatalf("point %s was accepted", p)
		}
	}
}

// TestAxisDefault reads each axis's value in the base configuration, the
// base settings applied: what the charts mark "default".
func TestAxisDefault(t *testing.T) {
	gw := GatewayConfig{BaseConfig: readDefaultConfig(t)}
	f := func(axis string, want int) {
		t.Helper()
		if got := axisDefault(gw, axis); got != want {
			t.Fatalf("unexpected default of %s; got %d; want %d", axis, got, want)
		}
	}
	f("shards", 64)
	f("drain_workers", 256)
	f("concurrency", 65536)
	f("wal_interval_ms", 0) // wal.mode sync: no interval
	f("gomaxprocs", runtime.GOMAXPROCS(0))
	f("", 0)
	f("bogus", 0)
	gw.Settings = []GatewaySetting{{"wal.mode", "interval"}, {"ledger.shards", "8"}}
	gw.Env = []string{"GOMAXPROCS=7", "GOGC=100", "GOMAXPROCS=3"}
	f("wal_interval_ms", 10)
	f("shards", 8)
	f("gomaxprocs", 3)
	gw.Settings = append(gw.Settings, GatewaySetting{"wal.interval", "1500us"})
	f("wal_interval_ms", 0) // not a whole number of milliseconds
}

func TestSweepAxesDocumented(t *testing.T) {
	for _, a := range SweepAxes() {
		if a.Name == "" || a.Doc == "" || a.Max < 1 || a.apply == nil || a.base == nil || !strings.Contains(AxisNames(), a.Name) {
			t.Fatalf("axis %+v is incomplete", a)
		}
		if got, ok := LookupSweepAxis(a.Name); !ok || got.Name != a.Name {
			t.Fatalf("axis %s cannot be looked up", a.Name)
		}
	}
}
