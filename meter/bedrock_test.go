package meter

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestAppendBedrockChunk(t *testing.T) {
	f := func(payload, want string, wantOK bool) {
		t.Helper()
		got, ok := AppendBedrockChunk([]byte("x"), []byte(payload))
		if ok != wantOK || ok && string(got) != "x"+want || !ok && string(got) != "x" {
			t.Fatalf("unexpected chunk of %s; got %q, %v; want %q, %v", payload, got, ok, "x"+want, wantOK)
		}
	}
	event := `{"type":"message_stop"}`
	b64 := base64.StdEncoding.EncodeToString([]byte(event))
	f(`{"bytes":"`+b64+`","p":"abcdefghij"}`, event, true)
	f(` { "p" : "x" , "bytes" : "`+b64+`" } `, event, true)
	f(`{"bytes":"AAAA","bytes":"`+b64+`"}`, event, true) // the last, as JSON decoders read it
	f(`{"bytes":"/+/+"}`, "\xff\xef\xfe", true)
	f(`{"bytes":"\/+\/+"}`, "\xff\xef\xfe", true) // '/' escaped, as some encoders write it
	f(`{"byt\u0065s":"\u0041\u0041\u0041\u0041"}`, "\x00\x00\x00", true)
	f(`{"bytes":"QQ=="}`, "A", true)
	f(`{"bytes":"QQ"}`, "", false) // padding required
	f(`{"bytes":""}`, "", false)
	f(`{"bytes":"!!!"}`, "", false)
	f(`{"bytes":null}`, "", false)
	f(`{"bytes":1}`, "", false)
	f(`{"Bytes":"QQ=="}`, "", false) // keys match exactly
	f(`{"p":"abc"}`, "", false)
	f(`{"bytes":"QQ==",}`, "", false)
	f(`{"bytes":"QQ=="} x`, "", false)
	f(`{"bytes":"QQ==","p":tru}`, "", false)
	f(`["QQ=="]`, "", false)
	f(``, "", false)

	// An escaped payload decodes right whether dst has room or grows.
	long := strings.Repeat("\xff\xef\xfe", 20) // "/+/+" in base64
	escaped := strings.ReplaceAll(base64.StdEncoding.EncodeToString([]byte(long)), "/", `\/`)
	for _, c := range []int{2, 8, 1 << 10} {
		got, ok := AppendBedrockChunk(append(make([]byte, 0, c), "ab"...), []byte(`{"bytes":"`+escaped+`"}`))
		if !ok || string(got) != "ab"+long {
			t.Fatalf("unexpected escaped chunk with capacity %d; got %q, %v; want %q", c, got, ok, "ab"+long)
		}
	}
}

func TestBedrockEventType(t *testing.T) {
	f := func(event, wantType string, wantMetrics, wantOK bool) {
		t.Helper()
		typ, metrics, ok := BedrockEventType([]byte(event))
		if string(typ) != wantType || metrics != wantMetrics || ok != wantOK {
			t.Fatalf("unexpected reading of %s; got %q, %v, %v; want %q, %v, %v", event, typ, metrics, ok, wantType, wantMetrics, wantOK)
		}
	}
	f(`{"type":"message_stop"}`, "message_stop", false, true)
	f(`{"index":0,"type":"content_block_stop"}`, "content_block_stop", false, true)
	f(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":10}}`, "message_stop", true, true)
	f(`{"amazon-bedrock-invocation\u004detrics":{},"type":"message_stop"}`, "message_stop", true, true)
	f(`{"type":"ping","type":"error"}`, "ping", false, true) // the first, as the Observer reads it
	f(` { "t\u0079pe" : "ping" } `, "ping", false, true)
	f(`{"type":"p\u0069ng"}`, "", false, false) // no event type has escapes
	f(`{"type":""}`, "", false, false)
	f(`{"type":1}`, "", false, false)
	f(`{"index":0}`, "", false, false)
	f(`{"type":"ping"`, "", false, false)
	f(`{"type":"ping","a":[}`, "", false, false)
	f(`{"type":"ping"} {}`, "", false, false)
	f(`"ping"`, "", false, false)
}

func TestAppendWithoutInvocationMetrics(t *testing.T) {
	f := func(event, want string) {
		t.Helper()
		if got := AppendWithoutInvocationMetrics([]byte("x"), []byte(event)); string(got) != "x"+want {
			t.Fatalf("unexpected event from %s; got %s; want %s", event, got[1:], want)
		}
	}
	f(`{"type":"message_stop"}`, `{"type":"message_stop"}`)
	f(`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":10,"outputTokenCount":15}}`, `{"type":"message_stop"}`)
	f(` { "amazon-bedrock-invocationMetrics" : {} , "type" : "message_stop" , "x":[1, 2] } `, `{"type" : "message_stop","x":[1, 2]}`)
	f(`{"amazon-bedrock-invocationMetrics":{}}`, `{}`)
	f(`{}`, `{}`)
}

// bedrockSeeds are the events of a real Bedrock stream.
var bedrockSeeds = []string{
	`{"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","id":"msg_bdrk_012GBPzpcoMCLP1b2pcJsSHk","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1}}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
	`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":10,"outputTokenCount":15,"invocationLatency":1798,"firstByteLatency":1507}}`,
}

func FuzzAppendBedrockChunk(f *testing.F) {
	for _, e := range bedrockSeeds {
		f.Add([]byte(`{"bytes":"` + base64.StdEncoding.EncodeToString([]byte(e)) + `","p":"abcdefghij"}`))
	}
	f.Add([]byte(`{"bytes":"\/+\/+","bytes":"QQ=="}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, ok := AppendBedrockChunk(nil, payload)
		if nesting(payload) > maxJSONDepth {
			return // deeper than the scanner goes; encoding/json goes deeper
		}
		// The reference: encoding/json's last "bytes" member, exactly named.
		var members map[string]json.RawMessage
		var s string
		var want []byte
		wantOK := json.Unmarshal(payload, &members) == nil && json.Unmarshal(members["bytes"], &s) == nil
		if wantOK {
			var err error
			want, err = base64.StdEncoding.DecodeString(s)
			wantOK = err == nil && len(want) > 0
		}
		if ok != wantOK || ok && !bytes.Equal(got, want) {
			t.Fatalf("unexpected chunk of %q; got %q, %v; encoding/json says %q, %v", payload, got, ok, want, wantOK)
		}
	})
}

func FuzzBedrockEvent(f *testing.F) {
	for _, e := range bedrockSeeds {
		f.Add([]byte(e))
	}
	f.Add([]byte(`{"amazon-bedrock-invocation\u004detrics":{},"type":"ping","type":"x"}`))
	f.Fuzz(func(t *testing.T, event []byte) {
		typ, metrics, ok := BedrockEventType(event)
		if !ok {
			return
		}
		if !json.Valid(event) {
			t.Fatalf("unexpected acceptance of invalid JSON %q", event)
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(event, &members); err != nil {
			t.Fatalf("cannot decode %q: %s", event, err)
		}
		if want := firstType(t, event); invalidBytesReplaced(string(typ)) != want {
			t.Fatalf("unexpected type of %q; got %q; encoding/json says %q", event, typ, want)
		}
		if _, want := members[invocationMetricsKey]; metrics != want {
			t.Fatalf("unexpected metrics flag of %q; got %v; want %v", event, metrics, want)
		}
		out := AppendWithoutInvocationMetrics(nil, event)
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("invalid event %q from %q: %s", out, event, err)
		}
		delete(members, invocationMetricsKey)
		if !reflect.DeepEqual(got, members) {
			t.Fatalf("unexpected event from %q; got %q", event, out)
		}
		if typ2, metrics2, ok2 := BedrockEventType(out); !ok2 || metrics2 || string(typ2) != string(typ) {
			t.Fatalf("unexpected reading of %q: %q, %v, %v", out, typ2, metrics2, ok2)
		}
	})
}

// firstType returns the first top-level "type" string of the JSON object b,
// as encoding/json's tokenizer reads it.
func firstType(t *testing.T, b []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		t.Fatalf("cannot read %q: %s", b, err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatalf("cannot read %q: %s", b, err)
		}
		if k == "type" {
			v, _ := dec.Token()
			s, _ := v.(string)
			return s
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil && err != io.EOF {
			t.Fatalf("cannot read %q: %s", b, err)
		}
	}
	return ""
}
