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
	f := func(shards, workers int, walMode string, want conf) {
		t.Helper()
		out, err := editGatewayConfig([]byte(base), shards, workers, walMode)
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
	f(0, 0, "", want)
	// Existing keys changed, a missing section added.
	want.Ledger.Shards, want.Policies.DrainWorkers, want.WAL.Mode = 4, 16, "none"
	f(4, 16, "none", want)

	if _, err := editGatewayConfig([]byte("- a list\n"), 1, 1, ""); err == nil {
		t.Fatalf("a configuration that is not a mapping was accepted")
	}
	if _, err := editGatewayConfig([]byte("a: [\n"), 1, 1, ""); err == nil {
		t.Fatalf("malformed YAML was accepted")
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 8}
	b.Write([]byte("hello "))
	b.Write([]byte("world, again"))
	if got := b.String(); got != "d, again" {
		t.Fatalf("unexpected tail; got %q; want %q", got, "d, again")
	}
}
