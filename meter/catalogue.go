package meter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Upstream kinds a catalogue may list.
const (
	UpstreamAnthropic = "anthropic"
	UpstreamBedrock   = "bedrock"
)

// Catalogue is the set of models the gateway serves, with their prices
// (configs/models.yaml, documented there). It is immutable once loaded and safe for
// concurrent use; to change prices, load a new one and swap the pointer.
type Catalogue struct {
	models []*Model
	byName map[string]*Model
	// AsOf is the date the catalogue's figures were last checked (as_of);
	// zero when the file does not say.
	AsOf time.Time
	// NoticeOverride is the operator's reason for changes that come with
	// less than NoticePeriod's notice (notice_override; "" for none).
	NoticeOverride string
}

// Model is one catalogue model.
type Model struct {
	// ID is the model's canonical ID, as /v1/models lists it.
	ID string
	// Aliases are other names clients and responses use for it (the undated
	// alias of a dated ID, or the reverse).
	Aliases []string
	// DisplayName is the human-readable name /v1/models shows.
	DisplayName string
	// Created is when the model was released; zero when unknown.
	Created time.Time
	// MaxInputTokens is the largest context window (with any beta); it caps
	// the hold's input estimate. Zero when unknown.
	MaxInputTokens int64
	// MaxOutputTokens is the largest max_tokens the model accepts; zero when unknown.
	MaxOutputTokens int64
	// Upstreams are the upstream kinds that serve the model, sorted by kind.
	Upstreams []Upstream
	// Retires is when the gateway stops serving the model on every upstream;
	// zero when no date is set.
	Retires time.Time
	// Multiplier is the model's price multiplier (1 unless the operator set one).
	Multiplier Multiplier
	// Prices are the price versions in effective order; the first has a zero
	// Effective.
	Prices []PriceVersion
	// Disabled models are listed but not served (limited-access models the
	// platform's upstream account may not reach; enabled: false).
	Disabled bool
	// Successor is the model to move to when this one retires; empty when
	// none is named. The catalogue serves it.
	Successor string
	// Sources are where the model's figures come from (URLs), so that an
	// operator can check them again.
	Sources []string
	// Unconfirmed names the figures no official source confirms (free text,
	// such as "cache_read" or "fast mode price").
	Unconfirmed []string
	// Line is the model's line in the catalogue file.
	Line int
}

// Available reports whether the gateway serves the model at t: enabled and
// not retired.
func (m *Model) Available(t time.Time) bool { return !m.Disabled && !m.Retired(t) }

// Upstream is how one kind of upstream serves a model.
type Upstream struct {
	// Kind is UpstreamAnthropic or UpstreamBedrock.
	Kind string
	// ModelID is the model's ID on that upstream.
	ModelID string
	// Retires is when that upstream stops serving the model; zero when no date is set.
	Retires time.Time
	// CostMultiplier is what the upstream charges relative to list price
	// (Bedrock's regional endpoints: 1.1), for Model.Cost.
	CostMultiplier Multiplier
	// Offers are the price modifiers this upstream serves the model with: a
	// call asking for another is not routed here.
	Offers ModifierSet
}

// ModifierSet is a set of the price modifiers a request can ask for.
type ModifierSet uint8

// Modifiers an upstream can offer.
const (
	OfferSpeedFast ModifierSet = 1 << iota
	OfferInferenceGeoUS
	// offersAll is what an anthropic upstream offers unless its entry says.
	offersAll = OfferSpeedFast | OfferInferenceGeoUS
)

// Serves reports whether the upstream serves a request asking for m.
func (u *Upstream) Serves(m Modifiers) bool {
	return (m.Speed != SpeedFast || u.Offers&OfferSpeedFast != 0) &&
		(m.InferenceGeo != GeoUS || u.Offers&OfferInferenceGeoUS != 0)
}

// modifierKeys are the catalogue's names of the modifiers an upstream offers.
var modifierKeys = map[string]ModifierSet{"speed_fast": OfferSpeedFast, "inference_geo_us": OfferInferenceGeoUS}

// Retired reports whether the model is retired at t: past its own retirement
// time, or past the retirement time of every upstream that serves it.
func (m *Model) Retired(t time.Time) bool {
	if !m.Retires.IsZero() && !t.Before(m.Retires) {
		return true
	}
	for i := range m.Upstreams {
		if r := m.Upstreams[i].Retires; r.IsZero() || t.Before(r) {
			return false
		}
	}
	return true
}

// Upstream returns how the upstream of the given kind serves the model at t,
// or false when it does not serve it (not listed, or retired there).
func (m *Model) Upstream(kind string, t time.Time) (*Upstream, bool) {
	if !m.Retires.IsZero() && !t.Before(m.Retires) {
		return nil, false
	}
	for i := range m.Upstreams {
		u := &m.Upstreams[i]
		if u.Kind == kind && (u.Retires.IsZero() || t.Before(u.Retires)) {
			return u, true
		}
	}
	return nil, false
}

// Models returns the models in file order. The slice must not be modified.
func (c *Catalogue) Models() []*Model { return c.models }

// Lookup finds a model by ID, alias or upstream model ID (a response may carry
// the dated ID where the request used the alias). It does not allocate.
func (c *Catalogue) Lookup(name string) (*Model, bool) {
	m, ok := c.byName[name]
	return m, ok
}

// LookupBytes is Lookup for a name held in bytes, such as StreamResult.Model.
// It does not allocate.
func (c *Catalogue) LookupBytes(name []byte) (*Model, bool) {
	m, ok := c.byName[string(name)]
	return m, ok
}

// LoadCatalogue reads and parses the catalogue file at path.
func LoadCatalogue(path string) (*Catalogue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read catalogue: %w", err)
	}
	c, err := ParseCatalogue(data)
	if err != nil {
		return nil, fmt.Errorf("cannot load catalogue %q: %w", path, err)
	}
	return c, nil
}

// ParseCatalogue parses a catalogue (the schema is documented in
// configs/models.yaml). Unknown keys, missing or malformed prices, bad times,
// unordered price versions and names used twice fail it, naming the line.
func ParseCatalogue(data []byte) (*Catalogue, error) {
	var f yamlFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("cannot parse catalogue: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("cannot parse catalogue: %w", err)
	}
	if len(f.Models) == 0 {
		return nil, errors.New("cannot parse catalogue: it lists no models")
	}
	modelNodes := seqItems(mapValue(docRoot(&doc), "models"))
	c := &Catalogue{byName: make(map[string]*Model)}
	for i := range f.Models {
		var node *yaml.Node
		if i < len(modelNodes) {
			node = modelNodes[i]
		}
		m, err := f.Models[i].model(node)
		if err != nil {
			return nil, fmt.Errorf("cannot parse catalogue: line %d: %w", lineOf(node), err)
		}
		names := append([]string{m.ID}, m.Aliases...)
		for _, u := range m.Upstreams {
			if !slices.Contains(names, u.ModelID) {
				names = append(names, u.ModelID)
			}
		}
		for _, n := range names {
			if prev, ok := c.byName[n]; ok && prev != m {
				return nil, fmt.Errorf("cannot parse catalogue: line %d: model %s: name %q is already used by model %s at line %d", m.Line, m.ID, n, prev.ID, prev.Line)
			}
			c.byName[n] = m
		}
		c.models = append(c.models, m)
	}
	for _, m := range c.models {
		if m.Successor == "" {
			continue
		}
		if next, ok := c.byName[m.Successor]; !ok || next.Disabled || next == m {
			return nil, fmt.Errorf("cannot parse catalogue: line %d: model %s: successor %q is not a model the catalogue serves", m.Line, m.ID, m.Successor)
		}
	}
	c.AsOf, c.NoticeOverride = f.AsOf.t, f.NoticeOverride
	return c, nil
}

// The YAML schema. Each struct mirrors a mapping in configs/models.yaml, where
// every key is documented; KnownFields turns any other key into an error that
// names it and its line.
type yamlFile struct {
	AsOf           yamlTime    `yaml:"as_of"`
	NoticeOverride string      `yaml:"notice_override"`
	Models         []yamlModel `yaml:"models"`
}

type yamlModel struct {
	ID              string                  `yaml:"id"`
	Aliases         []string                `yaml:"aliases"`
	DisplayName     string                  `yaml:"display_name"`
	Created         yamlTime                `yaml:"created"`
	MaxInputTokens  int64                   `yaml:"max_input_tokens"`
	MaxOutputTokens int64                   `yaml:"max_output_tokens"`
	Retires         yamlTime                `yaml:"retires"`
	Multiplier      yamlDecimal             `yaml:"multiplier"`
	Upstreams       map[string]yamlUpstream `yaml:"upstreams"`
	Prices          []yamlPrice             `yaml:"prices"`
	Enabled         *bool                   `yaml:"enabled"`
	Successor       string                  `yaml:"successor"`
	Sources         []string                `yaml:"sources"`
	Unconfirmed     []string                `yaml:"unconfirmed"`
}

type yamlUpstream struct {
	ID             string      `yaml:"id"`
	Retires        yamlTime    `yaml:"retires"`
	CostMultiplier yamlDecimal `yaml:"cost_multiplier"`
	Modifiers      *[]string   `yaml:"modifiers"`
}

// offers reads the modifiers an upstream of kind offers: the listed ones,
// or, when the entry lists none, every one for anthropic (the first-party
// API serves them all) and none for bedrock (it serves neither fast mode
// nor data residency).
func (yu *yamlUpstream) offers(kind string) (ModifierSet, error) {
	if yu.Modifiers == nil {
		if kind == UpstreamAnthropic {
			return offersAll, nil
		}
		return 0, nil
	}
	var set ModifierSet
	for _, name := range *yu.Modifiers {
		bit, ok := modifierKeys[name]
		if !ok {
			return 0, fmt.Errorf("unknown modifier %q (want speed_fast or inference_geo_us)", name)
		}
		set |= bit
	}
	return set, nil
}

type yamlRates struct {
	Input        yamlDecimal `yaml:"input"`
	Output       yamlDecimal `yaml:"output"`
	CacheWrite5m yamlDecimal `yaml:"cache_write_5m"`
	CacheWrite1h yamlDecimal `yaml:"cache_write_1h"`
	CacheRead    yamlDecimal `yaml:"cache_read"`
}

type yamlPrice struct {
	Effective        yamlTime `yaml:"effective"`
	yamlRates        `yaml:",inline"`
	WebSearchPer1000 yamlDecimal      `yaml:"web_search_per_1000"`
	LongContext      *yamlLongContext `yaml:"long_context"`
	Modifiers        *yamlModifiers   `yaml:"modifiers"`
}

type yamlLongContext struct {
	Threshold int64 `yaml:"threshold"`
	yamlRates `yaml:",inline"`
}

type yamlModifiers struct {
	SpeedFast           yamlDecimal `yaml:"speed_fast"`
	InferenceGeoUS      yamlDecimal `yaml:"inference_geo_us"`
	ServiceTierPriority yamlDecimal `yaml:"service_tier_priority"`
	ServiceTierBatch    yamlDecimal `yaml:"service_tier_batch"`
}

// yamlDecimal is an exact decimal scalar ("3", "0.30", also unquoted), read
// from its text, never through a float.
type yamlDecimal struct {
	v    int64
	set  bool
	line int
}

// UnmarshalYAML reads the scalar's text as an exact decimal, naming its line
// on error.
func (d *yamlDecimal) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a decimal number such as \"3\" or \"0.30\"", n.Line)
	}
	v, err := parseDecimal(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: invalid decimal %q: %w", n.Line, n.Value, err)
	}
	*d = yamlDecimal{v: v, set: true, line: n.Line}
	return nil
}

// yamlTime is an RFC 3339 time, or a date meaning its start in UTC.
type yamlTime struct {
	t    time.Time
	set  bool
	line int
}

// UnmarshalYAML reads an RFC 3339 time or a date, naming its line on error.
func (t *yamlTime) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want an RFC 3339 time or a date (2026-11-30)", n.Line)
	}
	v, err := time.Parse(time.RFC3339, n.Value)
	if err != nil {
		v, err = time.Parse(time.DateOnly, n.Value)
	}
	if err != nil {
		return fmt.Errorf("line %d: invalid time %q: want an RFC 3339 time or a date (2026-11-30)", n.Line, n.Value)
	}
	*t = yamlTime{t: v.UTC(), set: true, line: n.Line}
	return nil
}

// model checks one entry of the models list and returns its Model. node
// is the entry's YAML node, for line numbers.
func (ym *yamlModel) model(node *yaml.Node) (*Model, error) {
	if ym.ID == "" {
		return nil, errors.New("model without id")
	}
	m := &Model{
		ID:              ym.ID,
		Aliases:         ym.Aliases,
		DisplayName:     ym.DisplayName,
		Created:         ym.Created.t,
		MaxInputTokens:  ym.MaxInputTokens,
		MaxOutputTokens: ym.MaxOutputTokens,
		Retires:         ym.Retires.t,
		Multiplier:      MultiplierOne,
		Disabled:        ym.Enabled != nil && !*ym.Enabled,
		Successor:       ym.Successor,
		Sources:         ym.Sources,
		Unconfirmed:     ym.Unconfirmed,
		Line:            lineOf(node),
	}
	if m.DisplayName == "" {
		m.DisplayName = m.ID
	}
	for _, a := range m.Aliases {
		if a == "" {
			return nil, fmt.Errorf("model %s: empty alias", m.ID)
		}
	}
	if m.MaxInputTokens < 0 || m.MaxOutputTokens < 0 {
		return nil, fmt.Errorf("model %s: negative max_input_tokens or max_output_tokens", m.ID)
	}
	var err error
	if m.Multiplier, err = multiplierOf(ym.Multiplier, "multiplier"); err != nil {
		return nil, fmt.Errorf("model %s: %w", m.ID, err)
	}
	if m.Upstreams, err = ym.upstreams(); err != nil {
		return nil, err
	}
	if m.Prices, err = ym.prices(m.Line, node); err != nil {
		return nil, err
	}
	return m, nil
}

// upstreams checks the entry's upstreams and returns them sorted by kind.
// They are checked in that order too, so that of several faulty ones the
// same is reported every time.
func (ym *yamlModel) upstreams() ([]Upstream, error) {
	if len(ym.Upstreams) == 0 {
		return nil, fmt.Errorf("model %s: no upstreams", ym.ID)
	}
	var ups []Upstream
	for _, kind := range slices.Sorted(maps.Keys(ym.Upstreams)) {
		yu := ym.Upstreams[kind]
		if kind != UpstreamAnthropic && kind != UpstreamBedrock {
			return nil, fmt.Errorf("model %s: unknown upstream kind %q (want %s or %s)", ym.ID, kind, UpstreamAnthropic, UpstreamBedrock)
		}
		if yu.ID == "" {
			return nil, fmt.Errorf("model %s: upstream %s has no id", ym.ID, kind)
		}
		cm, err := multiplierOf(yu.CostMultiplier, "cost_multiplier")
		if err != nil {
			return nil, fmt.Errorf("model %s: upstream %s: %w", ym.ID, kind, err)
		}
		offers, err := yu.offers(kind)
		if err != nil {
			return nil, fmt.Errorf("model %s: upstream %s: %w", ym.ID, kind, err)
		}
		ups = append(ups, Upstream{Kind: kind, ModelID: yu.ID, Retires: yu.Retires.t, CostMultiplier: cm, Offers: offers})
	}
	return ups, nil
}

// prices checks the entry's price versions: the first in force from the
// start, each later one with an effective time after the one before. line
// is the entry's, node its YAML node, for the line of each version.
func (ym *yamlModel) prices(line int, node *yaml.Node) ([]PriceVersion, error) {
	if len(ym.Prices) == 0 {
		return nil, fmt.Errorf("model %s: no prices", ym.ID)
	}
	priceNodes := seqItems(mapValue(node, "prices"))
	var prices []PriceVersion
	for i := range ym.Prices {
		yp := &ym.Prices[i]
		at := line
		if i < len(priceNodes) {
			at = priceNodes[i].Line
		}
		v, err := yp.version()
		if err != nil {
			return nil, fmt.Errorf("model %s: prices[%d] at line %d: %w", ym.ID, i, at, err)
		}
		switch {
		case i == 0 && yp.Effective.set:
			return nil, fmt.Errorf("model %s: prices[0] at line %d: the first price version is in force from the start and takes no effective time", ym.ID, at)
		case i > 0 && !yp.Effective.set:
			return nil, fmt.Errorf("model %s: prices[%d] at line %d: effective is required after the first price version", ym.ID, i, at)
		case i > 0 && !v.Effective.After(prices[i-1].Effective):
			return nil, fmt.Errorf("model %s: prices[%d] at line %d: effective times must increase", ym.ID, i, at)
		}
		prices = append(prices, v)
	}
	return prices, nil
}

func multiplierOf(d yamlDecimal, key string) (Multiplier, error) {
	if !d.set {
		return MultiplierOne, nil
	}
	if d.v > int64(MaxMultiplier) {
		return 0, fmt.Errorf("line %d: %s is above the maximum of 1000", d.line, key)
	}
	return Multiplier(d.v), nil
}

func (yp *yamlPrice) version() (PriceVersion, error) {
	v := PriceVersion{Effective: yp.Effective.t}
	var err error
	if v.Rates, err = yp.yamlRates.rates(); err != nil {
		return v, err
	}
	if yp.WebSearchPer1000.set {
		if v.WebSearchPer1000, err = rateOf(yp.WebSearchPer1000, "web_search_per_1000"); err != nil {
			return v, err
		}
		v.WebSearchPriced = true
	}
	if lc := yp.LongContext; lc != nil {
		if lc.Threshold <= 0 {
			return v, errors.New("long_context: threshold must be a positive number of tokens")
		}
		r, err := lc.yamlRates.rates()
		if err != nil {
			return v, fmt.Errorf("long_context: %w", err)
		}
		v.LongContext = &LongContext{Threshold: lc.Threshold, Rates: r}
	}
	if md := yp.Modifiers; md != nil {
		for _, f := range []struct {
			d   yamlDecimal
			dst *Multiplier
			key string
		}{
			{md.SpeedFast, &v.Modifiers.SpeedFast, "speed_fast"},
			{md.InferenceGeoUS, &v.Modifiers.InferenceGeoUS, "inference_geo_us"},
			{md.ServiceTierPriority, &v.Modifiers.ServiceTierPriority, "service_tier_priority"},
			{md.ServiceTierBatch, &v.Modifiers.ServiceTierBatch, "service_tier_batch"},
		} {
			if !f.d.set {
				continue
			}
			if f.d.v == 0 {
				return v, fmt.Errorf("line %d: modifiers: %s is 0; leave it out to refuse the modifier", f.d.line, f.key)
			}
			if *f.dst, err = multiplierOf(f.d, "modifiers: "+f.key); err != nil {
				return v, err
			}
		}
	}
	return v, nil
}

func (yr *yamlRates) rates() (Rates, error) {
	var r Rates
	for _, f := range []struct {
		d   yamlDecimal
		dst *int64
		key string
	}{
		{yr.Input, &r.Input, "input"},
		{yr.Output, &r.Output, "output"},
		{yr.CacheWrite5m, &r.CacheWrite5m, "cache_write_5m"},
		{yr.CacheWrite1h, &r.CacheWrite1h, "cache_write_1h"},
		{yr.CacheRead, &r.CacheRead, "cache_read"},
	} {
		if !f.d.set {
			return r, fmt.Errorf("%s is required", f.key)
		}
		v, err := rateOf(f.d, f.key)
		if err != nil {
			return r, err
		}
		*f.dst = v
	}
	return r, nil
}

func rateOf(d yamlDecimal, key string) (int64, error) {
	if d.v > MaxRateNanos {
		return 0, fmt.Errorf("line %d: %s is above the maximum of 1000000", d.line, key)
	}
	return d.v, nil
}

// Helpers that find line numbers in the YAML node tree, which the typed
// decode does not keep.

func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0]
	}
	return nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func seqItems(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

func lineOf(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}
