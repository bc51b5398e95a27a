package openai

import (
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/bytedance/sonic"
)

// strictJSON decodes what clients send: a key the target type does not
// declare is an error (so no parameter is dropped unseen), and keys match
// exactly, as OpenAI's API matches them ("Model" is not "model").
var strictJSON = sonic.Config{DisallowUnknownFields: true, CaseSensitive: true, ValidateString: true}.Froze()

// lenientJSON decodes what the upstream sends, whose objects gain fields
// over time.
var lenientJSON = sonic.Config{CaseSensitive: true}.Froze()

var rawType = reflect.TypeFor[sonic.NoCopyRawMessage]()

// decode decodes raw into v strictly. On failure it returns the
// *RequestError that names the offending parameter under path.
func decode(raw []byte, v any, path string) error {
	if strictJSON.Unmarshal(raw, v) == nil {
		return nil
	}
	if e := locate(raw, reflect.TypeOf(v).Elem(), path); e != nil {
		return e
	}
	// The parts all decode alone but not together (nesting too deep for
	// the decoder, say): name the whole.
	if path == "" {
		return badParam("", "the request body is not valid")
	}
	return badParam(path, "is not valid")
}

// locate finds why raw does not decode into a value of type t: an unknown
// key or a value of the wrong type, the first in key order, named by its
// path. It returns nil when it finds nothing wrong. It is the error path
// only, so it may decode the same bytes again at each level.
func locate(raw []byte, t reflect.Type, path string) *RequestError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawType || isNull(raw) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		return locateFields(raw, t, path)
	case reflect.Slice:
		var items []sonic.NoCopyRawMessage
		if lenientJSON.Unmarshal(raw, &items) != nil {
			return badParam(path, "must be an array")
		}
		for i, item := range items {
			if e := locate(item, t.Elem(), indexPath(path, i)); e != nil {
				return e
			}
		}
		return nil
	case reflect.Map:
		var m map[string]sonic.NoCopyRawMessage
		if lenientJSON.Unmarshal(raw, &m) != nil {
			return badParam(path, "must be an object")
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if e := locate(m[k], t.Elem(), fieldPath(path, k)); e != nil {
				return e
			}
		}
		return nil
	}
	if strictJSON.Unmarshal(raw, reflect.New(t).Interface()) != nil {
		return badParam(path, "must be "+kindName(t.Kind()))
	}
	return nil
}

// locateFields is locate for an object decoded into struct type t.
func locateFields(raw []byte, t reflect.Type, path string) *RequestError {
	var m map[string]sonic.NoCopyRawMessage
	if lenientJSON.Unmarshal(raw, &m) != nil {
		return badParam(path, "must be an object")
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		f, ok := fieldByTag(t, k)
		if !ok {
			return badParam(fieldPath(path, k), "is not a parameter this gateway knows")
		}
		if e := locate(m[k], f.Type, fieldPath(path, k)); e != nil {
			return e
		}
	}
	return nil
}

// fieldByTag returns the field of struct type t whose JSON name is name.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	}
	return "valid"
}

// fieldPath names key inside path the way OpenAI names parameters:
// "messages[2].content[1].image_url".
func fieldPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// isNull reports whether raw is absent or the JSON null (with any
// surrounding white space): OpenAI takes an explicit null as "not given".
func isNull(raw []byte) bool {
	i, j := 0, len(raw)
	for i < j && isSpace(raw[i]) {
		i++
	}
	for j > i && isSpace(raw[j-1]) {
		j--
	}
	return i == j || string(raw[i:j]) == "null"
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// firstByte returns the first byte of raw that is not white space, or 0.
func firstByte(raw []byte) byte {
	for _, c := range raw {
		if !isSpace(c) {
			return c
		}
	}
	return 0
}

// appendCompact appends valid JSON src without the white space between
// its tokens (the encoder writes raw values as they are, and a tool's
// arguments go out compact, as OpenAI sends them).
func appendCompact(dst, src []byte) []byte {
	inString, escaped := false, false
	for _, c := range src {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case isSpace(c):
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// compactObject returns raw compacted when it is a JSON object, else false.
func compactObject(raw []byte) (sonic.NoCopyRawMessage, bool) {
	if firstByte(raw) != '{' || !lenientJSON.Valid(raw) {
		return nil, false
	}
	return appendCompact(make([]byte, 0, len(raw)), raw), true
}
