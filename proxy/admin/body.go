package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/bytedance/sonic"
)

// maxBodyFields bounds the fields of a request body.
const maxBodyFields = 64

// decodeBody reads r's body, a JSON object, into dst, a pointer to a
// struct whose fields carry json tags (embedded structs' fields count as
// its own). A field that is absent or null leaves dst's field as it was,
// so a PATCH starts from the current values; an unknown field, or a value
// of the wrong type, is refused with a message naming the field. An empty
// body is an empty object.
func decodeBody(r *http.Request, dst any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("cannot read the body (at most %d bytes)", maxBodyBytes)
	}
	if strings.TrimSpace(string(body)) == "" {
		return nil
	}
	var raw map[string]sonic.NoCopyRawMessage
	if err := sonic.Unmarshal(body, &raw); err != nil || raw == nil {
		return errors.New("the body must be a JSON object")
	}
	if len(raw) > maxBodyFields {
		return errors.New("the body has too many fields")
	}
	fields := map[string]reflect.Value{}
	collectFields(reflect.ValueOf(dst).Elem(), fields)
	for _, name := range slices.Sorted(maps.Keys(raw)) { // the first problem by name, every time
		value := raw[name]
		f, ok := fields[name]
		if !ok {
			return fmt.Errorf("%.64q: unknown field", name)
		}
		if string(value) == "null" {
			continue
		}
		if err := decodeField(f, value); err != nil {
			return fmt.Errorf("%s: %s", name, err)
		}
	}
	return nil
}

// collectFields adds v's fields by their JSON names, descending into
// embedded structs.
func collectFields(v reflect.Value, into map[string]reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			collectFields(v.Field(i), into)
			continue
		}
		if name, _, _ := strings.Cut(sf.Tag.Get("json"), ","); name != "" && name != "-" {
			into[name] = v.Field(i)
		}
	}
}

// decodeField decodes one value into f (allocating when f is a pointer).
// Types with their own UnmarshalJSON say what is wrong in their words; the
// others get a message from their kind.
func decodeField(f reflect.Value, value []byte) error {
	target := f
	if f.Kind() == reflect.Pointer {
		target = reflect.New(f.Type().Elem()).Elem()
	}
	var err error
	if u, ok := target.Addr().Interface().(json.Unmarshaler); ok {
		err = u.UnmarshalJSON(value)
	} else if sonic.Unmarshal(value, target.Addr().Interface()) != nil {
		err = kindProblem(target.Type())
	}
	if err != nil {
		return err
	}
	if f.Kind() == reflect.Pointer {
		f.Set(target.Addr())
	}
	return nil
}

// kindProblem says what a value of type t must be.
func kindProblem(t reflect.Type) error {
	switch {
	case t.Kind() == reflect.String:
		return errors.New("must be a string")
	case t.Kind() == reflect.Bool:
		return errors.New("must be true or false")
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return errors.New("must be an array of strings")
	default:
		return fmt.Errorf("must be a JSON %s", t.Kind())
	}
}
