package meter

import "github.com/tollgate/tollgate/internal/tokens"

// Usage is the usage of one call, folded as the official SDKs fold it
// (message_start's usage, overwritten field by field by message_delta's).
// Token counts are as Anthropic reports them:
// InputTokens is uncached input only; the total input of a call is
// InputTokens + CacheCreationInputTokens + CacheReadInputTokens.
//
// CacheCreationInputTokens is the total of all cache writes and is what Price
// reads; the split fields: CacheCreation1hInputTokens is
// min(the message_start 1h count, the final total) and CacheCreation5mInputTokens
// the rest, so a total without a split is all 5-minute writes.
//
// Speed, InferenceGeo and ServiceTier are the price modifiers the upstream
// reported in message_start (or the JSON body); their zero values are the
// standard, unmodified price. Upstreams that do not report them (Bedrock) leave
// them zero; the caller may copy Request.Modifiers into them.
type Usage struct {
	// Counts are the seven counters the price depends on.
	tokens.Counts
	// WebFetchRequests is server-side web fetches (tokens only).
	WebFetchRequests int64

	// Modifiers are the price modifiers reported with the usage.
	Modifiers
}

// Modifiers are the request or response options that change a call's price,
// each priced from the catalogue's modifier entries.
type Modifiers struct {
	// Speed is the speed option (fast mode).
	Speed Speed
	// InferenceGeo is the data-residency option.
	InferenceGeo Geo
	// ServiceTier is the tier that served (or is asked to serve) the call.
	ServiceTier Tier
}

// Speed is the `speed` option (fast mode).
type Speed uint8

const (
	// SpeedStandard is the default speed; no modifier applies.
	SpeedStandard Speed = iota
	// SpeedFast is `speed: "fast"`, priced by the `speed_fast` modifier.
	SpeedFast
	// SpeedUnknown is a request value the meter does not know; it cannot be
	// priced, so Model.Supports refuses it.
	SpeedUnknown
)

// Geo is the `inference_geo` option (data residency).
type Geo uint8

const (
	// GeoDefault is no residency request (`global`, `not_available` or absent).
	GeoDefault Geo = iota
	// GeoUS is `inference_geo: "us"`, priced by the `inference_geo_us` modifier.
	GeoUS
	// GeoUnknown is a request value the meter does not know; Model.Supports refuses it.
	GeoUnknown
)

// Tier is the service tier that served a call.
type Tier uint8

const (
	// TierStandard is the standard tier (also `auto` and `standard_only` in requests).
	TierStandard Tier = iota
	// TierPriority is the priority tier, priced by `service_tier_priority`.
	TierPriority
	// TierBatch is the batch tier, priced by `service_tier_batch`.
	TierBatch
	// TierUnknown is a request value the meter does not know; Model.Supports refuses it.
	TierUnknown
)

// usageFields is one usage object as parsed, with which fields were present and
// not null: message_delta overwrites only those, as the official SDKs do.
type usageFields struct {
	set                                     uint16
	input, output, cacheCreation, cacheRead int64
	eph5m, eph1h                            int64
	webSearch, webFetch                     int64
	speed                                   Speed
	geo                                     Geo
	tier                                    Tier
}

const (
	fInput uint16 = 1 << iota
	fOutput
	fCacheCreation
	fCacheRead
	fEph5m
	fEph1h
	fWebSearch
	fWebFetch
	fSpeed
	fGeo
	fTier
)

// parseUsage parses the usage object at b[i] into u and returns the index after
// it; its iterations array goes into iters, when iters is not nil. A field
// with a value that is not a non-negative int64 makes the whole object
// malformed: the SDKs' typed decoders reject such an event too.
func parseUsage(b []byte, i int, u *usageFields, iters *iterations) (int, bool) {
	*u = usageFields{}
	it := openObject(b, i)
	for it.next() {
		if iters != nil && it.keyIs("iterations") {
			end, ok := parseIterations(b, it.i, iters)
			if !ok {
				return it.i, false
			}
			it.i = end
			continue
		}
		if !u.member(&it) {
			return it.i, false
		}
	}
	return it.i, !it.bad
}

// member reads the current member of a usage object: a counter, the cache
// split, the server-tool counts or a modifier; anything else is skipped. It
// reports false when the object went bad.
func (u *usageFields) member(it *objIter) bool {
	switch {
	case it.keyIs("input_tokens"):
		it.intField(&u.input, &u.set, fInput)
	case it.keyIs("output_tokens"):
		it.intField(&u.output, &u.set, fOutput)
	case it.keyIs("cache_creation_input_tokens"):
		it.intField(&u.cacheCreation, &u.set, fCacheCreation)
	case it.keyIs("cache_read_input_tokens"):
		it.intField(&u.cacheRead, &u.set, fCacheRead)
	case it.keyIs("cache_creation"):
		// A repeated key replaces the whole object, as in JSON.
		u.eph5m, u.eph1h, u.set = 0, 0, u.set&^(fEph5m|fEph1h)
		s := it.sub()
		for s.next() {
			switch {
			case s.keyIs("ephemeral_5m_input_tokens"):
				s.intField(&u.eph5m, &u.set, fEph5m)
			case s.keyIs("ephemeral_1h_input_tokens"):
				s.intField(&u.eph1h, &u.set, fEph1h)
			default:
				s.skip(2)
			}
		}
		it.exit(&s)
	case it.keyIs("server_tool_use"):
		u.webSearch, u.webFetch, u.set = 0, 0, u.set&^(fWebSearch|fWebFetch)
		s := it.sub()
		for s.next() {
			switch {
			case s.keyIs("web_search_requests"):
				s.intField(&u.webSearch, &u.set, fWebSearch)
			case s.keyIs("web_fetch_requests"):
				s.intField(&u.webFetch, &u.set, fWebFetch)
			default:
				s.skip(2)
			}
		}
		it.exit(&s)
	case it.keyIs("speed"):
		u.speed = SpeedStandard
		if raw, esc, ok := it.stringField(&u.set, fSpeed); ok {
			u.speed = speedOf(raw, esc)
			if u.speed == SpeedUnknown {
				u.speed = SpeedStandard // a response value we cannot price is priced as standard
			}
		}
	case it.keyIs("inference_geo"):
		u.geo = GeoDefault
		if raw, esc, ok := it.stringField(&u.set, fGeo); ok {
			u.geo = geoOf(raw, esc)
			if u.geo == GeoUnknown {
				u.geo = GeoDefault
			}
		}
	case it.keyIs("service_tier"):
		u.tier = TierStandard
		if raw, esc, ok := it.stringField(&u.set, fTier); ok {
			u.tier = tierOf(raw, esc)
			if u.tier == TierUnknown {
				u.tier = TierStandard
			}
		}
	default:
		it.skip(1)
	}
	return !it.bad
}

// intField reads the current value as a non-negative int64 into *dst and marks
// bit in *set; null clears both, as a later duplicate key wins in JSON.
func (it *objIter) intField(dst *int64, set *uint16, bit uint16) {
	if isNull(it.b, it.i) {
		it.i += 4
		*dst = 0
		*set &^= bit
		return
	}
	v, end, res := parseInt(it.b, it.i)
	if res != intOK || v < 0 {
		it.bad = true
		return
	}
	*dst, it.i = v, end
	*set |= bit
}

// stringField reads the current value as a string and marks bit in *set; null
// clears the bit and yields ok == false.
func (it *objIter) stringField(set *uint16, bit uint16) (raw []byte, esc, ok bool) {
	if isNull(it.b, it.i) {
		it.i += 4
		*set &^= bit
		return nil, false, false
	}
	raw, esc, end, ok := stringAt(it.b, it.i)
	if !ok {
		it.bad = true
		return nil, false, false
	}
	it.i = end
	*set |= bit
	return raw, esc, true
}

func speedOf(raw []byte, esc bool) Speed {
	switch {
	case rawEqual(raw, esc, "standard"):
		return SpeedStandard
	case rawEqual(raw, esc, "fast"):
		return SpeedFast
	}
	return SpeedUnknown
}

func geoOf(raw []byte, esc bool) Geo {
	switch {
	case rawEqual(raw, esc, "global"), rawEqual(raw, esc, "not_available"):
		return GeoDefault
	case rawEqual(raw, esc, "us"):
		return GeoUS
	}
	return GeoUnknown
}

func tierOf(raw []byte, esc bool) Tier {
	switch {
	case rawEqual(raw, esc, "standard"), rawEqual(raw, esc, "auto"), rawEqual(raw, esc, "standard_only"):
		return TierStandard
	case rawEqual(raw, esc, "priority"):
		return TierPriority
	case rawEqual(raw, esc, "batch"):
		return TierBatch
	}
	return TierUnknown
}

// usageFold folds message_start and message_delta usage objects.
type usageFold struct {
	cur   usageFields // the current value of every field
	start usageFields // message_start's object, for the 1h cache-write split
}

func (f *usageFold) onStart(u *usageFields) {
	f.start = *u
	f.cur = *u
}

// onDelta overwrites the fields present in a message_delta usage object. The
// cache_creation split and the modifiers are message_start-only (Anthropic
// sends them there alone) and
// never taken from a delta.
func (f *usageFold) onDelta(u *usageFields) {
	c := &f.cur
	if u.set&fInput != 0 {
		c.input = u.input
	}
	if u.set&fOutput != 0 {
		c.output = u.output
	}
	if u.set&fCacheCreation != 0 {
		c.cacheCreation = u.cacheCreation
		c.set |= fCacheCreation
	}
	if u.set&fCacheRead != 0 {
		c.cacheRead = u.cacheRead
	}
	if u.set&fWebSearch != 0 {
		c.webSearch = u.webSearch
	}
	if u.set&fWebFetch != 0 {
		c.webFetch = u.webFetch
	}
}

// usage returns the folded usage with its cache-write split (Usage).
func (f *usageFold) usage() Usage {
	c := &f.cur
	total := c.cacheCreation
	if c.set&fCacheCreation == 0 {
		// No total was reported anywhere; the split alone is the best account.
		total = sat(f.start.eph5m, f.start.eph1h)
	}
	return usageOf(c, total, f.start.eph1h)
}

// usageOf builds a Usage from parsed fields with total cache writes total, of
// which min(h1, total) are 1-hour writes.
func usageOf(c *usageFields, total, h1 int64) Usage {
	h1 = min(h1, total)
	return Usage{Counts: tokens.Counts{InputTokens: c.input,
		OutputTokens:               c.output,
		CacheCreationInputTokens:   total,
		CacheCreation5mInputTokens: total - h1,
		CacheCreation1hInputTokens: h1,
		CacheReadInputTokens:       c.cacheRead,
		WebSearchRequests:          c.webSearch}, WebFetchRequests: c.webFetch,
		Modifiers: Modifiers{Speed: c.speed, InferenceGeo: c.geo, ServiceTier: c.tier},
	}
}

// sat adds non-negative a and b, saturating at the largest int64.
func sat(a, b int64) int64 {
	if s := a + b; s >= a {
		return s
	}
	return 1<<63 - 1
}

// SettledModifiers are the modifiers a call is billed with: what the
// upstream reported where it reported them, else what the request asked for
// (Bedrock never reports speed or residency; a first-party reply may leave a
// field out). disagreed is set when a report differs from the request.
func SettledModifiers(asked Modifiers, r *StreamResult) (m Modifiers, disagreed bool) {
	m = r.Usage.Modifiers
	if !r.SpeedReported {
		m.Speed = asked.Speed
	} else if m.Speed != asked.Speed {
		disagreed = true
	}
	if !r.GeoReported {
		m.InferenceGeo = asked.InferenceGeo
	} else if m.InferenceGeo != asked.InferenceGeo {
		disagreed = true
	}
	return m, disagreed
}
