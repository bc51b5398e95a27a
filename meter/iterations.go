package meter

// Usage beyond the top-level counters (usage.iterations): one entry per
// sampling iteration of the upstream, each with its own counts and, for some
// types, its own model. The top-level counters leave out advisor and
// compaction iterations, and with a server-side fallback they cover only the
// attempt that produced the reply; the iterations are then the whole bill.
// message_delta carries the cumulative list, so each list replaces the last.

// IterationKind is the type of a usage.iterations entry.
type IterationKind uint8

const (
	// IterMessage is a sampling iteration of the requested (or serving)
	// model: a server-tool loop turn, or an attempt a fallback replaced.
	IterMessage IterationKind = iota + 1
	// IterCompaction is context compaction, by the serving model; not in the
	// top-level totals.
	IterCompaction
	// IterAdvisor is an advisor tool consultation, by the advisor model; not
	// in the top-level totals.
	IterAdvisor
	// IterFallback is the attempt of a server-side fallback that produced
	// the reply; its presence says the fallback served.
	IterFallback
	// iterUnknown is a type the meter does not know: billed like a message.
	iterUnknown
)

// maxIterations bounds the distinct (kind, model) entries a reply's
// iterations are folded into; further ones are added to the first entry of
// their kind (their tokens are never dropped).
const maxIterations = 16

// Iteration is the usage of the iterations of one kind and model.
type Iteration struct {
	Kind IterationKind
	// Model is the iteration's model as the upstream named it (a view, valid
	// as the StreamResult holding it), empty when absent.
	Model []byte
	// Usage holds the counts (no modifiers: they are the call's).
	Usage Usage
}

// iterations is a reply's folded usage.iterations, in fixed storage.
type iterations struct {
	n      int
	items  [maxIterations]Iteration
	models [maxIterations][maxModelBytes]byte
	// seen is set once an iterations array was read, even an empty one.
	seen bool
}

func (t *iterations) reset() { t.n, t.seen = 0, false }

// add folds one entry into the table.
func (t *iterations) add(kind IterationKind, model []byte, u *Usage) {
	for i := range t.n {
		it := &t.items[i]
		if it.Kind == kind && string(it.Model) == string(model) {
			it.Usage.addCounts(u)
			return
		}
	}
	if t.n == maxIterations {
		for i := range t.n {
			if t.items[i].Kind == kind {
				t.items[i].Usage.addCounts(u)
				return
			}
		}
		t.items[0].Usage.addCounts(u) // every kind is billed like its first
		return
	}
	it := &t.items[t.n]
	m := copy(t.models[t.n][:], model)
	*it = Iteration{Kind: kind, Model: t.models[t.n][:m], Usage: *u}
	t.n++
}

// list returns the entries; a view valid until the next reset or add.
func (t *iterations) list() []Iteration { return t.items[:t.n] }

// addCounts adds o's token counts to u, saturating.
func (u *Usage) addCounts(o *Usage) {
	u.InputTokens = sat(u.InputTokens, o.InputTokens)
	u.OutputTokens = sat(u.OutputTokens, o.OutputTokens)
	u.CacheCreationInputTokens = sat(u.CacheCreationInputTokens, o.CacheCreationInputTokens)
	u.CacheCreation5mInputTokens = sat(u.CacheCreation5mInputTokens, o.CacheCreation5mInputTokens)
	u.CacheCreation1hInputTokens = sat(u.CacheCreation1hInputTokens, o.CacheCreation1hInputTokens)
	u.CacheReadInputTokens = sat(u.CacheReadInputTokens, o.CacheReadInputTokens)
	u.WebSearchRequests = sat(u.WebSearchRequests, o.WebSearchRequests)
	u.WebFetchRequests = sat(u.WebFetchRequests, o.WebFetchRequests)
}

// parseIterations reads the iterations array at b[i] into t (replacing what
// it held) and returns the index after it. An entry whose counts are not
// non-negative integers makes the array malformed.
func parseIterations(b []byte, i int, t *iterations) (int, bool) {
	t.reset()
	t.seen = true
	if isNull(b, i) {
		return i + 4, true
	}
	if i >= len(b) || b[i] != '[' {
		return i, false
	}
	a := arrIter{b: b, i: i + 1}
	for a.next() {
		var f usageFields
		var model [maxModelBytes]byte
		modelLen, kind := 0, iterUnknown
		o := openObject(b, a.i)
		for o.next() {
			switch {
			case o.keyIs("type"):
				raw, esc, end, ok := stringAt(b, o.i)
				if !ok {
					o.skip(2)
					continue
				}
				kind, o.i = iterationKindOf(raw, esc), end
			case o.keyIs("model"):
				raw, _, end, ok := stringAt(b, o.i)
				if !ok {
					o.skip(2) // null: the iteration's model is the call's
					continue
				}
				d, fits := appendUnescaped(model[:0], raw, true)
				modelLen = 0
				if fits {
					modelLen = len(d)
				}
				o.i = end
			default:
				if !f.member(&o) {
					return a.i, false
				}
			}
		}
		if o.bad {
			return a.i, false
		}
		a.i = o.i
		total := f.cacheCreation
		if f.set&fCacheCreation == 0 {
			total = sat(f.eph5m, f.eph1h)
		}
		u := usageOf(&f, total, f.eph1h)
		u.Modifiers = Modifiers{}
		t.add(kind, model[:modelLen], &u)
	}
	return a.i, !a.bad
}

func iterationKindOf(raw []byte, esc bool) IterationKind {
	switch {
	case rawEqual(raw, esc, "message"):
		return IterMessage
	case rawEqual(raw, esc, "compaction"):
		return IterCompaction
	case rawEqual(raw, esc, "advisor_message"):
		return IterAdvisor
	case rawEqual(raw, esc, "fallback_message"):
		return IterFallback
	}
	return iterUnknown
}
