package meter

import "errors"

// Errors of ParseMessage.
var (
	ErrMalformedMessage = errors.New("meter: malformed message JSON")
	ErrNoUsage          = errors.New("meter: message has no usage")
)

// ParseMessageUsage returns the usage of a non-streaming Messages response
// body (WIRE §2), with the cache-write split of CONTRACT §5. It does not
// allocate.
func ParseMessageUsage(body []byte) (Usage, error) {
	u, _, err := parseMessage(nil, body, false)
	return u, err
}

// ParseMessage returns the usage of a non-streaming Messages response body and
// appends its model (decoded) to dst, fasthttp-style. The whole body is
// validated as JSON; a body without a usage object is ErrNoUsage.
func ParseMessage(dst, body []byte) (u Usage, model []byte, err error) {
	return parseMessage(dst, body, true)
}

func parseMessage(dst, body []byte, wantModel bool) (u Usage, model []byte, err error) {
	var f usageFields
	haveUsage := false
	model = dst
	it := openObject(body, 0)
	for it.next() {
		switch {
		case it.keyIs("usage"):
			end, ok := parseUsage(body, it.i, &f)
			if !ok {
				return Usage{}, dst, ErrMalformedMessage
			}
			it.i, haveUsage = end, true
		case wantModel && it.keyIs("model"):
			model = dst
			raw, _, end, ok := stringAt(body, it.i)
			if !ok {
				it.skip(1)
				continue
			}
			model, _ = appendUnescaped(dst, raw, false)
			it.i = end
		default:
			it.skip(1)
		}
	}
	if it.bad || !atEnd(body, it.i) {
		return Usage{}, dst, ErrMalformedMessage
	}
	if !haveUsage {
		return Usage{}, dst, ErrNoUsage
	}
	total := f.cacheCreation
	if f.set&fCacheCreation == 0 {
		total = sat(f.eph5m, f.eph1h)
	}
	return usageOf(&f, total, f.eph1h), model, nil
}
