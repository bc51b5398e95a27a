package bench

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestEditGatewayConfig(t *testing.T) {
	const base = `# the gateway
listen: 127.0.0.1:8080
catalogue: ../somewhere/models.yaml
ledger:
  # power of two
  shards: 64
  hold_timeout: 45m
wal:
  mode: sync
  interval: 10ms
`
	type conf struct {
		Listen    string `yaml:"listen"`
		Catalogue string `yaml:"catalogue"`
		Ledger    struct {
			Shards      int    `yaml:"shards"`
			HoldTimeout string `yaml:"hold_timeout"`
		} `yaml:"ledger"`
		WAL struct {
			Mode     string `yaml:"mode"`
			Interval string `yaml:"interval"`
		} `yaml:"wal"`
		Policies struct {
			DrainWorkers int `yaml:"drain_workers"`
		} `yaml:"policies"`
	}
	f := func(settings []GatewaySetting, want conf) {
		t.Helper()
		out, err := editGatewayConfig([]byte(base), settings)
		if err != nil {
			t.Fatal(err)
		}
		var got conf
		dec := yaml.NewDecoder(strings.NewReader(string(out)))
		dec.KnownFields(true)
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("cannot read the edited configuration back: %s\n%s", err, out)
		}
		if got != want {
			t.Fatalf("unexpected configuration;\ngot  %+v\nwant %+v\n%s", got, want, out)
		}
		if !strings.Contains(string(out), "# power of two") {
			t.Fatalf("comments were lost:\n%s", out)
		}
	}
	var want conf
	want.Listen, want.Catalogue = "127.0.0.1:8080", "models.yaml"
	want.Ledger.Shards, want.Ledger.HoldTimeout = 64, "45m"
	want.WAL.Mode, want.WAL.Interval = "sync", "10ms"
	// Nothing set: only the catalogue moves beside the file.
	f(nil, want)
	// Existing keys changed, a missing section added; values typed as in
	// the file (an int, a string, a duration).
	want.Ledger.Shards, want.Policies.DrainWorkers, want.WAL.Mode, want.WAL.Interval = 4, 16, "interval", "5ms"
	f([]GatewaySetting{{"ledger.shards", "4"}, {"policies.drain_workers", "16"}, {"wal.mode", "interval"}, {"wal.interval", "5ms"}}, want)
	// The later of two settings of one key wins; the catalogue stays
	// beside the file whatever a setting says.
	want.Ledger.Shards = 8
	f([]GatewaySetting{{"ledger.shards", "4"}, {"policies.drain_workers", "16"}, {"wal.mode", "interval"}, {"wal.interval", "5ms"},
		{"ledger.shards", "8"}, {"catalogue", "/elsewhere.yaml"}}, want)

}

func TestEditGatewayConfigRefuses(t *testing.T) {
	const base = "ledger:\n  shards: 64\n"
	bad := func(base string, settings []GatewaySetting) {
		t.Helper()
		if out, err := editGatewayConfig([]byte(base), settings); err == nil {
			t.Fatalf("base %q with settings %v was accepted:\n%s", base, settings, out)
		}
	}
	bad("- a list\n", nil)
	bad("a: [\n", nil)
	bad(base, []GatewaySetting{{"ledger..shards", "1"}})
	bad(base, []GatewaySetting{{"", "1"}})
	bad(base, make([]GatewaySetting, MaxGatewaySettings+1))
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 8}
	b.Write([]byte("hello "))
	b.Write([]byte("world, again"))
	if got := b.String(); got != "d, again" {
		t.Fatalf("unexpected tail; got %q; want %q", got, "d, again")
	}
}
