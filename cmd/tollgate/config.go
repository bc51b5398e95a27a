package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tollgate/tollgate/configs"
)

// fileConfig is configs/tollgate.yaml. Every field is documented in that file.
type fileConfig struct {
	Listen      string `yaml:"listen"`
	AdminListen string `yaml:"admin_listen"`
	DataDir     string `yaml:"data_dir"`
	Catalogue   string `yaml:"catalogue"`
	Ledger      struct {
		Shards             int      `yaml:"shards"`
		HoldTimeout        duration `yaml:"hold_timeout"`
		SweepInterval      duration `yaml:"sweep_interval"`
		ExpiryInterval     duration `yaml:"expiry_interval"`
		PaidCreditLifetime duration `yaml:"paid_credit_lifetime"`
		// StatementSnapshotInterval is how often accounts whose money moved
		// get a statement snapshot.
		StatementSnapshotInterval duration `yaml:"statement_snapshot_interval"`
	} `yaml:"ledger"`
	WAL struct {
		Mode                   string   `yaml:"mode"`
		Interval               duration `yaml:"interval"`
		CheckpointEveryRecords uint64   `yaml:"checkpoint_every_records"`
		CheckpointInterval     duration `yaml:"checkpoint_interval"`
		MinFreeBytes           uint64   `yaml:"min_free_bytes"`
		StallTimeout           duration `yaml:"stall_timeout"`
	} `yaml:"wal"`
	Upstreams []upstreamConfig `yaml:"upstreams"`
	Routing   struct {
		Sticky      bool     `yaml:"sticky"`
		MaxFailures int      `yaml:"max_failures"`
		Backoff     duration `yaml:"backoff"`
	} `yaml:"routing"`
	Timeouts struct {
		Connect               duration `yaml:"connect"`
		FirstByte             duration `yaml:"first_byte"`
		FirstByteNonStreaming duration `yaml:"first_byte_non_streaming"`
		BetweenEvents         duration `yaml:"between_events"`
		Total                 duration `yaml:"total"`
		Drain                 duration `yaml:"drain"`
		ClientHeader          duration `yaml:"client_header"`
		ClientRead            duration `yaml:"client_read"`
		ClientIdle            duration `yaml:"client_idle"`
		ShutdownGrace         duration `yaml:"shutdown_grace"`
	} `yaml:"timeouts"`
	Limits struct {
		MaxRequestBodyBytes  int         `yaml:"max_request_body_bytes"`
		MaxResponseBodyBytes int         `yaml:"max_response_body_bytes"`
		MaxEventBytes        int         `yaml:"max_event_bytes"`
		HoldMaxOutputTokens  int64       `yaml:"hold_max_output_tokens"`
		DefaultWebSearchUses int64       `yaml:"default_web_search_uses"`
		MaxConnsPerIP        int         `yaml:"max_conns_per_ip"`
		Concurrency          int         `yaml:"concurrency"`
		BodyBytesInFlight    int64       `yaml:"request_body_bytes_in_flight"`
		CountTokensRPM       int64       `yaml:"count_tokens_rpm"`
		ReadRPM              int64       `yaml:"read_rpm"`
		KeyDefaults          limitConfig `yaml:"key_defaults"`
		AccountDefaults      limitConfig `yaml:"account_defaults"`
	} `yaml:"limits"`
	TLS struct {
		Client tlsConfig `yaml:"client"`
		Admin  tlsConfig `yaml:"admin"`
	} `yaml:"tls"`
	Policies struct {
		Disconnect   string `yaml:"disconnect"`
		DrainWorkers int    `yaml:"drain_workers"`
		Recovery     string `yaml:"recovery"`
		// ClosedAccountCredit is forfeit (an adjust entry takes it) or keep
		// (it stays, frozen with the account).
		ClosedAccountCredit string `yaml:"closed_account_credit"`
	} `yaml:"policies"`
	Console struct {
		// Enabled serves the customers' console on the client listener and
		// the operators' on the admin listener, under /console/.
		Enabled bool `yaml:"enabled"`
		// CustomerURL and OperatorURL are where people reach the consoles
		// (invitation links start with them); empty: the listeners' own
		// addresses.
		CustomerURL string `yaml:"customer_url"`
		OperatorURL string `yaml:"operator_url"`
		// MaxKeysPerAccount bounds the active keys a customer may have.
		MaxKeysPerAccount int `yaml:"max_keys_per_account"`
	} `yaml:"console"`
	Notifications struct {
		Enabled bool `yaml:"enabled"`
		SMTP    struct {
			Host     string `yaml:"host"`
			Port     int    `yaml:"port"`
			TLS      string `yaml:"tls"`
			Username string `yaml:"username"`
			From     string `yaml:"from"`
		} `yaml:"smtp"`
		TemplatesDir string `yaml:"templates_dir"`
		Webhooks     struct {
			Timeout               duration `yaml:"timeout"`
			AllowNetworks         []string `yaml:"allow_networks"`
			PlatformAllowNetworks []string `yaml:"platform_allow_networks"`
			DisableAfter          duration `yaml:"disable_after"`
		} `yaml:"webhooks"`
	} `yaml:"notifications"`
	Cluster        clusterConfig `yaml:"cluster"`
	DisputeWindow  duration      `yaml:"dispute_window"`
	CallRetention  duration      `yaml:"call_retention"`
	DeniedBetas    []string      `yaml:"denied_betas"`
	TrustedProxies []string      `yaml:"trusted_proxies"`

	// dir is the directory of the file, for relative paths ("" when embedded).
	dir string
}

// upstreamConfig is one entry of upstreams.
type upstreamConfig struct {
	Name     string `yaml:"name"`
	Kind     string `yaml:"kind"`
	BaseURL  string `yaml:"base_url"`
	MaxConns int    `yaml:"max_conns"`
	Priority int    `yaml:"priority"`
	Weight   int    `yaml:"weight"`
	// Bedrock only.
	Region  string `yaml:"region"`
	Auth    string `yaml:"auth"`
	Profile string `yaml:"profile"`
}

// tlsConfig is a listener's certificate and key files (PEM); both empty
// serve plain HTTP.
type tlsConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

type limitConfig struct {
	RPM         int64 `yaml:"rpm"`
	TPM         int64 `yaml:"tpm"`
	Concurrency int64 `yaml:"concurrency"`
}

// duration is a time.Duration written as a Go duration string.
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as \"90s\"", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

// loadConfig reads the gateway configuration from path, or the embedded
// default when path is the default and does not exist. Unknown keys fail,
// naming the key and its line.
func loadConfig(path string, isDefault bool) (*fileConfig, error) {
	data, err := os.ReadFile(path)
	dir := filepath.Dir(path)
	if err != nil {
		if !isDefault || !os.IsNotExist(err) {
			return nil, fmt.Errorf("cannot read config: %w", err)
		}
		data, dir = configs.Gateway, ""
	}
	cfg, err := parseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("invalid config %s: %w", path, err)
	}
	cfg.dir = dir
	return cfg, nil
}

func parseConfig(data []byte) (*fileConfig, error) {
	cfg := defaultFileConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *fileConfig) validate() error {
	if c.Listen == "" || c.AdminListen == "" {
		return fmt.Errorf("listen and admin_listen are required")
	}
	if len(c.Upstreams) == 0 {
		return fmt.Errorf("upstreams: at least one is required")
	}
	for i, u := range c.Upstreams {
		switch u.Kind {
		case "", "anthropic":
			if u.Region != "" || u.Auth != "" || u.Profile != "" {
				return fmt.Errorf("upstreams[%d] %q: region, auth and profile are for bedrock upstreams", i, u.Name)
			}
		case "bedrock":
			if u.Region == "" {
				return fmt.Errorf("upstreams[%d] %q: a bedrock upstream needs a region", i, u.Name)
			}
			if u.Auth != "" && u.Auth != "sigv4" && u.Auth != "bearer" {
				return fmt.Errorf("upstreams[%d] %q: auth %q: want sigv4 or bearer", i, u.Name, u.Auth)
			}
		default:
			return fmt.Errorf("upstreams[%d] %q: unknown kind %q (want anthropic or bedrock)", i, u.Name, u.Kind)
		}
		if u.Weight < 0 {
			return fmt.Errorf("upstreams[%d] %q: weight must not be negative", i, u.Name)
		}
	}
	for key, list := range map[string][]string{"trusted_proxies": c.TrustedProxies,
		"notifications.webhooks.allow_networks":          c.Notifications.Webhooks.AllowNetworks,
		"notifications.webhooks.platform_allow_networks": c.Notifications.Webhooks.PlatformAllowNetworks} {
		for _, p := range list {
			if _, err := netip.ParsePrefix(p); err != nil {
				return fmt.Errorf("%s: %q is not a CIDR prefix", key, p)
			}
		}
	}
	if sm := c.Notifications.SMTP; sm.Host != "" && (sm.From == "" || sm.TLS != "starttls" && sm.TLS != "implicit" && sm.TLS != "none") {
		return fmt.Errorf("notifications.smtp: with a host, from is required and tls is starttls, implicit or none")
	}
	for _, t := range []struct {
		name string
		tlsConfig
	}{{"tls.client", c.TLS.Client}, {"tls.admin", c.TLS.Admin}} {
		if (t.CertFile == "") != (t.KeyFile == "") {
			return fmt.Errorf("%s: cert_file and key_file go together", t.name)
		}
	}
	if p := c.Policies.ClosedAccountCredit; p != "" && p != "forfeit" && p != "keep" {
		return fmt.Errorf("policies.closed_account_credit %q: want forfeit or keep", p)
	}
	if hold, need := time.Duration(c.Ledger.HoldTimeout), time.Duration(c.Timeouts.Total+c.Timeouts.Drain); hold != 0 && hold <= need {
		return fmt.Errorf("ledger.hold_timeout %s must exceed timeouts.total + timeouts.drain = %s", hold, need)
	}
	return nil
}

// defaultFileConfig holds the defaults of keys whose zero means something
// else (unlimited), so that a file that leaves them out gets the default,
// not the zero.
func defaultFileConfig() fileConfig {
	var c fileConfig
	c.Ledger.StatementSnapshotInterval = duration(24 * time.Hour)
	c.Limits.AccountDefaults.Concurrency = 512
	c.Limits.MaxConnsPerIP = 1024
	c.Limits.CountTokensRPM = 600
	c.Limits.ReadRPM = 600
	return c
}

// bodyBytesInFlight is limits.request_body_bytes_in_flight, or the bound
// sized for the machine when it is 0; never below two bodies of the limit.
func (c *fileConfig) bodyBytesInFlight() int64 {
	n := c.Limits.BodyBytesInFlight
	if n == 0 {
		n = bodyBytesInFlight()
	}
	return max(n, 2*int64(max(c.Limits.MaxRequestBodyBytes, 32<<20)))
}

// cataloguePath resolves the catalogue file relative to the config file.
func (c *fileConfig) cataloguePath() string {
	if c.Catalogue == "" || filepath.IsAbs(c.Catalogue) || c.dir == "" {
		return c.Catalogue
	}
	return filepath.Join(c.dir, c.Catalogue)
}

func (c *fileConfig) trustedProxies() []netip.Prefix { return mustPrefixes(c.TrustedProxies) }

// mustPrefixes parses CIDR prefixes the configuration's check accepted.
func mustPrefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range list {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}
