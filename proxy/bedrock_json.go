package proxy

// A scanner of the top-level members of one JSON object, for the two edits
// Bedrock needs: dropping and adding members of a request body, and dropping
// amazon-bedrock-invocationMetrics from an event. Both edit a few top-level
// keys and copy every other byte as it is, so a full decoder (and the
// re-encoding that would reorder keys and change numbers) is not needed.

// jsonMember is one top-level member of an object: its key as it appears
// between the quotes (escapes not decoded) and the bytes of the whole member
// (from the key's opening quote to the end of the value) and of the value.
type jsonMember struct {
	key        []byte
	start, end int
	value      []byte
}

// maxJSONDepth bounds the nesting scanJSONObject follows in a skipped value.
const maxJSONDepth = 512

// scanJSONObject calls f with each top-level member of the object in b, in
// order, and reports whether b is one well-formed object at the top level
// (values are skipped by matching brackets outside strings, not validated in
// full). f's views are valid as long as b is. It never reads past b.
func scanJSONObject(b []byte, f func(m jsonMember)) bool {
	i := skipJSONSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipJSONSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipJSONSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		keyEnd, ok := skipJSONString(b, i)
		if !ok {
			return false
		}
		m := jsonMember{key: b[i+1 : keyEnd-1], start: i}
		i = skipJSONSpace(b, keyEnd)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipJSONSpace(b, i+1)
		valEnd, ok := skipJSONValue(b, i)
		if !ok {
			return false
		}
		m.value, m.end = b[i:valEnd], valEnd
		f(m)
		i = skipJSONSpace(b, valEnd)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipJSONSpace(b, i+1)
		case '}':
			return skipJSONSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipJSONString returns the offset just past the string starting at b[i] ('"').
func skipJSONString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// skipJSONValue returns the offset just past the value starting at b[i].
func skipJSONValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipJSONString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, ok := skipJSONString(b, i)
				if !ok {
					return 0, false
				}
				i = end - 1
			case '{', '[':
				if depth++; depth > maxJSONDepth {
					return 0, false
				}
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	}
	// A number or a literal: up to the next delimiter.
	start := i
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i, i > start
}

// jsonStringValue returns the raw contents of a JSON string value (between
// the quotes, escapes not decoded), or false when v is not a string.
func jsonStringValue(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, false
	}
	return v[1 : len(v)-1], true
}
