package meter

import "errors"

// Errors of ObserveMessage.
var (
	ErrMalformedMessage = errors.New("meter: malformed message JSON")
	ErrNoUsage          = errors.New("meter: message has no usage")
)

// ObserveMessage reads a whole non-streaming Messages response body into o,
// as if it had streamed: afterwards Result reports its usage (iterations
// included), model, fallback, stop reason and content bytes, with End
// EndCompleted. The whole body is validated as JSON; a body without a usage
// object is ErrNoUsage. o must be fresh (Reset).
func (o *Observer) ObserveMessage(body []byte) error {
	var u usageFields
	haveUsage := false
	it := openObject(body, 0)
	for it.next() {
		switch {
		case it.keyIs("usage"):
			end, ok := parseUsage(body, it.i, &u, &o.iters)
			if !ok {
				return ErrMalformedMessage
			}
			it.i, haveUsage = end, true
		case it.keyIs("model"):
			o.res.Model = nil
			raw, _, end, ok := stringAt(body, it.i)
			if !ok {
				it.skip(1)
				continue
			}
			if d, fits := appendUnescaped(o.model[:0], raw, true); fits {
				o.res.Model = d
			}
			it.i = end
		case it.keyIs("stop_reason"):
			raw, esc, end, ok := stringAt(body, it.i)
			if !ok {
				it.skip(1)
				continue
			}
			o.res.Refused, it.i = rawEqual(raw, esc, "refusal"), end
		case it.keyIs("content"):
			if !o.observeContent(&it) {
				return ErrMalformedMessage
			}
		default:
			it.skip(1)
		}
	}
	if it.bad || !atEnd(body, it.i) {
		return ErrMalformedMessage
	}
	if !haveUsage {
		return ErrNoUsage
	}
	o.fold.onStart(&u)
	o.res.SawMessageStart = true
	o.res.End = EndCompleted
	o.reported(&u)
	return nil
}

// observeContent counts the content blocks of a reply's content array as
// content_block_start events would be counted (a tool's input object counts
// as tool input).
func (o *Observer) observeContent(it *objIter) bool {
	b := it.b
	if it.i >= len(b) || b[it.i] != '[' {
		return it.skip(1)
	}
	var n [NumContentKinds]int64
	a := arrIter{b: b, i: it.i + 1}
	for a.next() {
		if b[a.i] != '{' {
			return false
		}
		o.res.Blocks++
		block := openObject(b, a.i)
		o.countBlock(&block, &n, true)
		if block.bad {
			return false
		}
		a.i = block.i
	}
	o.addContent(&n)
	it.i = a.i
	return !a.bad
}
