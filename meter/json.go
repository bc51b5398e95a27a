package meter

import (
	"encoding/binary"
	"unicode/utf8"
)

// This file is a small JSON scanner over caller-owned bytes. It validates what it
// walks (strings, numbers, literals, nesting), never allocates, and never builds
// a tree: callers walk the one path they need and skip everything else. The full
// JSON grammar is checked, but invalid UTF-8 inside strings is accepted, as Go's
// encoding/json accepts it. AppendJSONString, at the end, is the matching
// encoder.

// maxJSONDepth bounds nesting when skipping values, so hostile input cannot
// exhaust the stack. Anthropic's own limit is not published; 512 is far deeper
// than any real request or event.
const maxJSONDepth = 512

// strStop marks the bytes that end the fast path of a string scan: the closing
// quote, a backslash and the control characters JSON forbids inside strings.
var strStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

// hasStop reports whether any byte of w is a quote, a backslash or below 0x20
// (the classic SWAR tests: x - n*ones & ^x & highs is nonzero when some byte
// of x is below n).
func hasStop(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := w ^ ('"' * ones)
	s := w ^ ('\\' * ones)
	return ((w-0x20*ones)&^w|(q-ones)&^q|(s-ones)&^s)&highs != 0
}

func isWS(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// scanString scans the string starting at b[i] == '"'. It returns the index after
// the closing quote, the length of the decoded string in UTF-8 bytes, and whether
// it holds escapes. ok is false on a malformed string.
func scanString(b []byte, i int) (end int, n int64, esc, ok bool) {
	i++
	for {
		start := i
		// Eight bytes at a time while none of them ends the fast path: text
		// deltas and prompts are mostly plain runs.
		for i+8 <= len(b) && !hasStop(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && !strStop[b[i]] {
			i++
		}
		n += int64(i - start)
		if i >= len(b) || b[i] < 0x20 {
			return 0, 0, false, false
		}
		if b[i] == '"' {
			return i + 1, n, esc, true
		}
		esc = true
		if i+1 >= len(b) {
			return 0, 0, false, false
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			n++
			i += 2
		case 'u':
			r, ok := hex4(b, i+2)
			if !ok {
				return 0, 0, false, false
			}
			i += 6
			if r >= 0xd800 && r < 0xdc00 {
				if r2, ok := hex4(b, i+2); ok && i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' && r2 >= 0xdc00 && r2 < 0xe000 {
					n += 4
					i += 6
					continue
				}
			}
			n += int64(runeLen(r))
		default:
			return 0, 0, false, false
		}
	}
}

// runeLen is the UTF-8 length of r as a decoder writes it: lone surrogates
// become U+FFFD (3 bytes).
func runeLen(r rune) int {
	if r >= 0xd800 && r < 0xe000 {
		return 3
	}
	return utf8.RuneLen(r)
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// appendUnescaped appends the decoded content of the raw string body s (the
// bytes between the quotes, already validated by scanString) to dst, but never
// past cap(dst) when bounded is set: it reports false when the result would not fit.
func appendUnescaped(dst, s []byte, bounded bool) ([]byte, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			if bounded && len(dst) == cap(dst) {
				return dst, false
			}
			dst = append(dst, c)
			i++
			continue
		}
		var r rune
		switch s[i+1] {
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			r, _ = hex4(s, i+2)
			i += 4
			if r >= 0xd800 && r < 0xdc00 && i+2 < len(s) && s[i+2] == '\\' && s[i+3] == 'u' {
				if r2, ok := hex4(s, i+4); ok && r2 >= 0xdc00 && r2 < 0xe000 {
					r = (r-0xd800)<<10 | (r2 - 0xdc00) + 0x10000
					i += 6
				}
			}
			if r >= 0xd800 && r < 0xe000 {
				r = utf8.RuneError
			}
		default: // '"', '\\', '/'
			r = rune(s[i+1])
		}
		i += 2
		if bounded && len(dst)+utf8.RuneLen(r) > cap(dst) {
			return dst, false
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst, true
}

// rawEqual reports whether the raw string body raw (escaped or not) decodes to s.
func rawEqual(raw []byte, esc bool, s string) bool {
	if !esc {
		return string(raw) == s
	}
	if len(raw) < len(s) {
		return false
	}
	var buf [64]byte
	d, ok := appendUnescaped(buf[:0], raw, true)
	return ok && string(d) == s
}

// scanNumber validates the JSON number at b[i] and returns the index after it.
// isInt is true when it has neither fraction nor exponent.
func scanNumber(b []byte, i int) (end int, isInt, ok bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, false, false
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, false, false
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return 0, false, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return 0, false, false
		}
	}
	return i, isInt, true
}

// intResult says what parseInt found.
type intResult uint8

const (
	intOK       intResult = iota
	intBad                // not a JSON number at all
	intNotInt             // a valid number with a fraction or exponent
	intOverflow           // an integer outside int64
)

// parseInt parses the JSON number at b[i] as an int64.
func parseInt(b []byte, i int) (v int64, end int, res intResult) {
	end, isInt, ok := scanNumber(b, i)
	if !ok {
		return 0, 0, intBad
	}
	if !isInt {
		return 0, end, intNotInt
	}
	neg := b[i] == '-'
	if neg {
		i++
	}
	var u uint64
	for ; i < end; i++ {
		d := uint64(b[i] - '0')
		if u > (1<<63-d)/10 {
			return 0, end, intOverflow
		}
		u = u*10 + d
	}
	if neg {
		return -int64(u), end, intOK
	}
	if u == 1<<63 {
		return 0, end, intOverflow
	}
	return int64(u), end, intOK
}

// skipValue validates and skips the value at b[i] (no leading whitespace) and
// returns the index after it.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; c {
	case '"':
		end, _, _, ok := scanString(b, i)
		return end, ok
	case '{':
		if depth >= maxJSONDepth {
			return 0, false
		}
		it := objIter{b: b, i: i + 1}
		for it.next() {
			if !it.skip(depth + 1) {
				return 0, false
			}
		}
		return it.i, !it.bad
	case '[':
		if depth >= maxJSONDepth {
			return 0, false
		}
		it := arrIter{b: b, i: i + 1}
		for it.next() {
			end, ok := skipValue(b, it.i, depth+1)
			if !ok {
				return 0, false
			}
			it.i = end
		}
		return it.i, !it.bad
	case 't':
		return literal(b, i, "true")
	case 'f':
		return literal(b, i, "false")
	case 'n':
		return literal(b, i, "null")
	default:
		end, _, ok := scanNumber(b, i)
		return end, ok
	}
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

func isNull(b []byte, i int) bool {
	_, ok := literal(b, i, "null")
	return ok
}

// objIter walks the members of an object. Start it with i just after '{'. Each
// successful next leaves i at the member's value (whitespace skipped); the caller
// consumes the value and sets i after it, or calls skip. When next returns false,
// bad says whether the object was malformed, and otherwise i is after '}'.
type objIter struct {
	b      []byte
	i      int
	n      int
	key    []byte
	keyEsc bool
	keyAt  int // the index of the current key's opening quote
	bad    bool
	done   bool // an empty walk (null)
}

// openObject starts an objIter at the object at b[i] (leading whitespace allowed).
func openObject(b []byte, i int) objIter {
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '{' {
		return objIter{bad: true}
	}
	return objIter{b: b, i: i + 1}
}

func (it *objIter) next() bool {
	if it.bad || it.done {
		return false
	}
	b := it.b
	i := skipWS(b, it.i)
	if i >= len(b) {
		it.bad = true
		return false
	}
	if b[i] == '}' {
		it.i = i + 1
		return false
	}
	if it.n > 0 {
		if b[i] != ',' {
			it.bad = true
			return false
		}
		i = skipWS(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		it.bad = true
		return false
	}
	end, _, esc, ok := scanString(b, i)
	if !ok {
		it.bad = true
		return false
	}
	it.key, it.keyEsc, it.keyAt = b[i+1:end-1], esc, i
	i = skipWS(b, end)
	if i >= len(b) || b[i] != ':' {
		it.bad = true
		return false
	}
	it.i = skipWS(b, i+1)
	it.n++
	return true
}

func (it *objIter) keyIs(s string) bool { return rawEqual(it.key, it.keyEsc, s) }

// skip skips the current member's value.
func (it *objIter) skip(depth int) bool {
	end, ok := skipValue(it.b, it.i, depth)
	if !ok {
		it.bad = true
		return false
	}
	it.i = end
	return true
}

// fail marks the object malformed and stops the walk.
func (it *objIter) fail() { it.bad = true }

// sub starts a walk of the current member's value as an object; null gives an
// empty walk. Finish it with exit.
func (it *objIter) sub() objIter {
	if isNull(it.b, it.i) {
		return objIter{b: it.b, i: it.i + 4, done: true}
	}
	return openObject(it.b, it.i)
}

// exit resumes it after the sub-object walk s.
func (it *objIter) exit(s *objIter) {
	if s.bad {
		it.bad = true
		return
	}
	it.i = s.i
}

// arrIter walks the elements of an array, in the same way as objIter: start it
// just after '['; next leaves i at an element.
type arrIter struct {
	b   []byte
	i   int
	n   int
	bad bool
}

func (it *arrIter) next() bool {
	if it.bad {
		return false
	}
	b := it.b
	i := skipWS(b, it.i)
	if i >= len(b) {
		it.bad = true
		return false
	}
	if b[i] == ']' {
		it.i = i + 1
		return false
	}
	if it.n > 0 {
		if b[i] != ',' {
			it.bad = true
			return false
		}
		i = skipWS(b, i+1)
	}
	if i >= len(b) {
		it.bad = true
		return false
	}
	it.i = i
	it.n++
	return true
}

// stringAt scans the string value at b[i] and returns its raw body (between the
// quotes) and whether it holds escapes. ok is false when b[i] is not a string.
func stringAt(b []byte, i int) (raw []byte, esc bool, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, false, 0, false
	}
	end, _, esc, ok = scanString(b, i)
	if !ok {
		return nil, false, 0, false
	}
	return b[i+1 : end-1], esc, end, true
}

// atEnd reports whether only whitespace follows b[i:].
func atEnd(b []byte, i int) bool { return skipWS(b, i) == len(b) }

// AppendJSONString appends s to dst as a JSON string. It escapes quotes and
// backslashes, writes \n, \r and \t as such and the other control characters
// and DEL as \u00XX, and replaces each byte of invalid UTF-8 with \ufffd, so
// the result is valid JSON whatever s holds. <, > and & stay literal, as
// Anthropic's API sends them (encoding/json would escape them). It is the
// one JSON string encoder of Tollgate's wire: error bodies, events the
// gateway writes, request rewrites, the simulator's replies.
func AppendJSONString(dst []byte, s string) []byte { return appendJSONString(dst, s) }

// appendJSONString is AppendJSONString over a string or bytes, so that byte
// views (header values) need no conversion.
func appendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0 // the bytes from start to i need no escape
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		// At most UTFMax bytes convert on the stack, not the heap.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			start = i + 1
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
