package meter

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/tokens"
)

// The fuzz targets check invariants that must hold for any input, and that
// the meter never panics. `go test` replays the corpus in testdata/fuzz.

func addStreamSeeds(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join("testdata", "streams", "*.sse"))
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			f.Fatalf("cannot read seed: %s", err)
		}
		f.Add(data, uint16(len(data)/2))
	}
}

func FuzzObserver(f *testing.F) {
	addStreamSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		whole := observeChunks(data)
		at := int(split) % (len(data) + 1)
		if got, want := resultString(observeChunks(data[:at], data[at:])), resultString(whole); got != want {
			t.Fatalf("unexpected result split at %d;\ngot  %s\nwant %s", at, got, want)
		}
		var o Observer
		o.Reset(0)
		for i := range data {
			o.Write(data[i : i+1])
		}
		if got, want := resultString(o.Result()), resultString(whole); got != want {
			t.Fatalf("unexpected result fed byte by byte;\ngot  %s\nwant %s", got, want)
		}
		checkResult(t, whole)
		if whole.Events > bytes.Count(data, []byte("\n"))+bytes.Count(data, []byte("\r")) {
			t.Fatalf("unexpected event count %d for %d line ends", whole.Events, bytes.Count(data, []byte("\n")))
		}
		// A small bound: the buffer stays within it.
		o.Reset(32)
		o.Write(data)
		if cap(o.data) > 32 {
			t.Fatalf("unexpected event buffer capacity %d above the bound 32", cap(o.data))
		}
		checkResult(t, o.Result())
		// The data of each event fed to WriteEvent: never a panic.
		o.Reset(0)
		for _, ev := range bytes.Split(data, []byte("\n")) {
			o.WriteEvent(ev)
		}
		checkResult(t, o.Result())
	})
}

func checkResult(t *testing.T, r StreamResult) {
	t.Helper()
	u := r.Usage
	if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheCreationInputTokens < 0 || u.CacheReadInputTokens < 0 ||
		u.CacheCreation1hInputTokens < 0 || u.CacheCreation5mInputTokens < 0 || u.WebSearchRequests < 0 || u.WebFetchRequests < 0 ||
		u.CacheCreation1hInputTokens+u.CacheCreation5mInputTokens != u.CacheCreationInputTokens {
		t.Fatalf("unexpected usage %+v", u)
	}
	for _, n := range r.ContentBytes {
		if n < 0 {
			t.Fatalf("unexpected content bytes %v", r.ContentBytes)
		}
	}
	if len(r.Model) > maxModelBytes || r.End > EndError || r.OversizedEvents > r.Events || r.MalformedEvents > r.Events {
		t.Fatalf("unexpected result %s", resultString(r))
	}
	if EstimateOutputTokens(&r) < u.OutputTokens {
		t.Fatalf("unexpected estimate below the reported output")
	}
}

func FuzzInspectRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"claude-haiku-4-5","max_tokens":60,"stream":true,"messages":[{"role":"user","content":"Dame 3 palabras separadas por coma y nada más. Sin explicación."}]}`,
		`{"model":"m","max_tokens":1,"system":[{"type":"text","text":"abcd","cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"AAAA"}},{"type":"document","source":{"type":"base64","data":"QUJD"}},{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"x"}]}]}]}`,
		`{"model":"m","max_tokens":1,"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5},{"type":"code_execution_20250825"}],"mcp_servers":[{}],"speed":"fast","inference_geo":"us","service_tier":"auto"}`,
		`{"model":"a\u002db","max_tokens":1e3,"messages":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var r Request
		err := InspectRequest(body, &r)
		deep := nesting(body) > maxJSONDepth
		if err == errInvalidJSON && json.Valid(body) && !deep {
			t.Fatalf("unexpected invalid-JSON refusal of valid JSON %q", body)
		}
		if err != nil {
			if _, ok := err.(*RequestError); !ok {
				t.Fatalf("unexpected error type %T", err)
			}
			return
		}
		if !json.Valid(body) || deep {
			t.Fatalf("unexpected acceptance of invalid JSON or JSON deeper than %d: %q", maxJSONDepth, body)
		}
		if r.Model == "" || r.MaxTokens < 1 || r.EstimatedInputTokens < RequestOverheadTokens || body[r.ModelStart] != '"' || body[r.ModelEnd-1] != '"' {
			t.Fatalf("unexpected request %+v", r)
		}
		// Rewriting the model changes the model and nothing else.
		out := AppendRewriteModel(nil, body, &r, "global.anthropic.x-v1:0")
		var r2 Request
		if err := InspectRequest(out, &r2); err != nil {
			t.Fatalf("unexpected error after rewriting %q: %s", out, err)
		}
		if r2.Model != "global.anthropic.x-v1:0" || r2.EstimatedInputTokens != r.EstimatedInputTokens || r2.MaxTokens != r.MaxTokens {
			t.Fatalf("unexpected request after rewriting;\ngot  %+v\nwant %+v", r2, r)
		}
		// Any body InspectRequest accepts has a Bedrock form.
		checkBedrockBody(t, body, []byte("b1, b2"))
	})
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"id":"msg_014aLUQSouuj3wj2qP3ThkWw","type":"message","role":"assistant","model":"claude-3-7-sonnet-20250219","content":[{"type":"text","text":"Hello"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":22,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		u, model, err := parseMessage(body)
		want, wantOK := referenceMessageUsage(body)
		if bytes.Count(body, []byte("["))+bytes.Count(body, []byte("{")) > maxJSONDepth-10 {
			return // deeper than the scanner goes; encoding/json goes deeper
		}
		if (err == nil) != wantOK {
			t.Fatalf("unexpected error for %q; got %v; the encoding/json reference says ok=%v", body, err, wantOK)
		}
		if err != nil {
			return
		}
		if u != want {
			t.Fatalf("unexpected usage for %q;\ngot  %+v\nwant %+v", body, u, want)
		}
		checkResult(t, StreamResult{Usage: u, Model: []byte(model)})
	})
}

// referenceMessageUsage is ObserveMessage's usage written the slow, obvious way
// with encoding/json, for the differential fuzz test.
func referenceMessageUsage(body []byte) (Usage, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil || len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) != 0 {
		return Usage{}, false
	}
	obj, ok := top.(map[string]any)
	if !ok {
		return Usage{}, false
	}
	raw, ok := obj["usage"]
	if !ok || raw == nil {
		return Usage{}, false
	}
	usage, ok := raw.(map[string]any)
	if !ok {
		return Usage{}, false
	}
	valid := true
	num := func(m map[string]any, k string) (int64, bool) {
		v, ok := m[k]
		if !ok || v == nil {
			return 0, false
		}
		n, isNum := v.(json.Number)
		if !isNum {
			valid = false
			return 0, false
		}
		i, err := n.Int64()
		if err != nil || i < 0 {
			valid = false
		}
		return i, true
	}
	sub := func(k string) map[string]any {
		v, ok := usage[k]
		if !ok || v == nil {
			return map[string]any{}
		}
		m, isMap := v.(map[string]any)
		if !isMap {
			valid = false
		}
		return m
	}
	str := func(k string) string {
		v, ok := usage[k]
		if !ok || v == nil {
			return ""
		}
		s, isStr := v.(string)
		if !isStr {
			valid = false
		}
		return s
	}
	var u Usage
	u.InputTokens, _ = num(usage, "input_tokens")
	u.OutputTokens, _ = num(usage, "output_tokens")
	total, haveTotal := num(usage, "cache_creation_input_tokens")
	u.CacheReadInputTokens, _ = num(usage, "cache_read_input_tokens")
	cc := sub("cache_creation")
	m5, _ := num(cc, "ephemeral_5m_input_tokens")
	h1, _ := num(cc, "ephemeral_1h_input_tokens")
	stu := sub("server_tool_use")
	u.WebSearchRequests, _ = num(stu, "web_search_requests")
	u.WebFetchRequests, _ = num(stu, "web_fetch_requests")
	switch str("speed") {
	case "fast":
		u.Speed = SpeedFast
	}
	switch str("inference_geo") {
	case "us":
		u.InferenceGeo = GeoUS
	}
	switch str("service_tier") {
	case "priority":
		u.ServiceTier = TierPriority
	case "batch":
		u.ServiceTier = TierBatch
	}
	if !valid {
		return Usage{}, false
	}
	if !haveTotal {
		total = m5 + h1
		if total < m5 {
			total = 1<<63 - 1
		}
	}
	h1 = min(h1, total)
	u.CacheCreationInputTokens, u.CacheCreation1hInputTokens, u.CacheCreation5mInputTokens = total, h1, total-h1
	return u, true
}

func FuzzCatalogue(f *testing.F) {
	data, err := os.ReadFile("../configs/models.yaml")
	if err != nil {
		f.Fatalf("cannot read the shipped catalogue: %s", err)
	}
	f.Add(data)
	f.Add([]byte(testCatalogue))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCatalogue(data)
		if err != nil {
			return
		}
		u := Usage{Counts: tokens.Counts{InputTokens: 1 << 40, OutputTokens: 1 << 40, CacheCreationInputTokens: 1 << 40, CacheCreation1hInputTokens: 1 << 39,
			CacheReadInputTokens: 1 << 40, WebSearchRequests: 1 << 40}, Modifiers: Modifiers{SpeedFast, GeoUS, TierBatch}}
		for _, m := range c.Models() {
			if got, ok := c.Lookup(m.ID); !ok || got != m {
				t.Fatalf("unexpected lookup of %q", m.ID)
			}
			if len(m.Prices) == 0 || !m.Prices[0].Effective.IsZero() {
				t.Fatalf("unexpected prices for %s", m.ID)
			}
			for _, at := range []time.Time{{}, t0, t0.AddDate(100, 0, 0)} {
				p, err := m.Price(u, at, MaxMultiplier)
				if err != nil && err != ErrOverflow || p < 0 {
					t.Fatalf("unexpected price %d, %v", p, err)
				}
				r := Request{MaxTokens: 1 << 30, EstimatedInputTokens: 1 << 62, CacheTTL: Cache1h, HasWebSearch: true,
					WebSearchMaxUses: 1 << 62, WebSearchToolsWithoutMaxUses: 1 << 62}
				if h, err := m.Hold(&r, at, MaxMultiplier, 0, 1<<62); h < 0 || (err == nil && h == 0 && m.Prices[0].Rates.Output > 0 && m.Multiplier > 0) {
					t.Fatalf("unexpected hold %d, %v", h, err)
				}
			}
		}
	})
}

func FuzzAppendBedrockBody(f *testing.F) {
	f.Add([]byte(`{"model":"claude-x","max_tokens":5,"stream":true,"messages":[]}`), "")
	f.Add([]byte(` {"mod\u0065l":"m", "max_tokens" : 1 ,"anthropic_beta":["x"],"messages":[{"role":"user","content":"a \"model\": {x}"}],"metadata":{"stream":[1]},"anthropic_version":"v"} `), "a, b ,, c")
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[],"anthropic_beta":1,"anthropic_beta":2,"x":1,"x":[2]}`), `q"\`+"\x01\xff")
	f.Fuzz(func(t *testing.T, body []byte, betas string) {
		var r Request
		if InspectRequest(body, &r) != nil {
			return
		}
		checkBedrockBody(t, body, []byte(betas))
	})
}
