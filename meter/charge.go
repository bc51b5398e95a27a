package meter

import "time"

// A reply's bill is more than its top-level usage: the upstream reports
// work the top-level counters leave out (advisor consultations, context
// compaction), a server-side fallback serves the reply with another model
// than the one requested, and a refusal before any output is not billed at
// all. Charge puts these together from what the Observer saw.

// Charge is how a call's reply is billed.
type Charge struct {
	// Price is the call's price in nano-credits, rounded up once.
	Price int64
	// Served is the catalogue model whose rates the top-level usage was
	// billed at: the requested model, or the one a fallback handed to.
	Served *Model
	// UnknownModels counts parts named by a model the catalogue does not
	// know; they are billed at Served's rates.
	UnknownModels int
	// Refused is set when the reply is a refusal before any output, which
	// is billed nothing.
	Refused bool
}

// Charge prices a call to model requested that started at at: usage is the
// top-level usage to bill (as reported, or estimated for a reply cut
// short), r what the Observer saw of the reply, for an account with
// multiplier accountMult.
//
//   - A refusal before any output costs nothing.
//   - The top-level usage is billed at the serving model: the fallback
//     block's or fallback iteration's model, else the reply's model, when
//     the catalogue knows it; else the requested one.
//   - With a fallback iteration the iterations are the whole bill, each at
//     its own model (a declined attempt at the requested model); the
//     top-level web searches go with the serving part.
//   - Otherwise compaction iterations add at the serving model's rates and
//     advisor iterations at the advisor's.
//
// Every part takes the call's modifiers. It does not allocate.
func (c *Catalogue) Charge(requested *Model, usage Usage, r *StreamResult, at time.Time, accountMult Multiplier) (Charge, error) {
	var ch Charge
	ch.Served = c.servingModel(requested, r, &ch.UnknownModels)
	if r.RefusedBeforeOutput() {
		ch.Refused = true
		return ch, nil
	}
	var b Bill
	if fallbackServed(r.Iterations) {
		for i := range r.Iterations {
			it := &r.Iterations[i]
			u := it.Usage
			u.Modifiers = usage.Modifiers
			def := requested
			switch it.Kind {
			case IterFallback:
				def, u.WebSearchRequests = ch.Served, usage.WebSearchRequests
			case IterCompaction:
				def = ch.Served
			}
			b.Add(c.modelOr(it.Model, def, &ch.UnknownModels), &u, at)
		}
	} else {
		b.Add(ch.Served, &usage, at)
		for i := range r.Iterations {
			it := &r.Iterations[i]
			if it.Kind != IterCompaction && it.Kind != IterAdvisor {
				continue // in the top-level totals
			}
			u := it.Usage
			u.Modifiers = usage.Modifiers
			b.Add(c.modelOr(it.Model, ch.Served, &ch.UnknownModels), &u, at)
		}
	}
	var err error
	ch.Price, err = b.Total(accountMult)
	return ch, err
}

// servingModel is the catalogue model that served the reply.
func (c *Catalogue) servingModel(requested *Model, r *StreamResult, unknown *int) *Model {
	name := r.FallbackModel
	for i := range r.Iterations {
		if it := &r.Iterations[i]; it.Kind == IterFallback && len(it.Model) > 0 {
			name = it.Model
		}
	}
	if len(name) == 0 {
		name = r.Model
	}
	return c.modelOr(name, requested, unknown)
}

// modelOr is the catalogue model named name, or def when name is empty or
// unknown (an unknown name is counted).
func (c *Catalogue) modelOr(name []byte, def *Model, unknown *int) *Model {
	if len(name) == 0 {
		return def
	}
	if m, ok := c.LookupBytes(name); ok {
		return m
	}
	*unknown++
	return def
}

func fallbackServed(its []Iteration) bool {
	for i := range its {
		if its[i].Kind == IterFallback {
			return true
		}
	}
	return false
}
