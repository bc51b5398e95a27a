package proxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/tollgate/tollgate/meter"
)

type modelInfo struct {
	Object         string `json:"object"`
	Created        int64  `json:"created"`
	OwnedBy        string `json:"owned_by"`
	Type           string `json:"type"`
	ID             string `json:"id"`
	DisplayName    string `json:"display_name"`
	CreatedAt      string `json:"created_at"`
	MaxInputTokens *int64 `json:"max_input_tokens"`
	MaxTokens      *int64 `json:"max_tokens"`
	RetiresAt      string `json:"retires_at"`
	Successor      string `json:"successor"`
}

type modelPage struct {
	Object  string      `json:"object"`
	Data    []modelInfo `json:"data"`
	HasMore bool        `json:"has_more"`
	FirstID *string     `json:"first_id"`
	LastID  *string     `json:"last_id"`
}

// models calls GET /v1/models with query as an Anthropic SDK does (with
// anthropic-version) and decodes the page.
func (h *harness) models(key string, query url.Values) modelPage {
	h.t.Helper()
	return h.modelsAs(key, query, map[string]string{"X-Api-Key": key, "anthropic-version": "2023-06-01"})
}

// modelsAs calls GET /v1/models with query and the headers hd.
func (h *harness) modelsAs(key string, query url.Values, hd map[string]string) modelPage {
	h.t.Helper()
	resp, b := h.do(http.MethodGet, h.clientURL+"/v1/models?"+query.Encode(), nil, hd)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("unexpected status of GET /v1/models?%s; got %d; want 200; body %s", query.Encode(), resp.StatusCode, b)
	}
	if !requestIDPattern.MatchString(resp.Header.Get("request-id")) {
		h.t.Fatalf("unexpected request-id %q", resp.Header.Get("request-id"))
	}
	var p modelPage
	if err := json.Unmarshal(b, &p); err != nil {
		h.t.Fatalf("cannot decode %s: %s", b, err)
	}
	if len(p.Data) > 0 {
		if p.FirstID == nil || p.LastID == nil || *p.FirstID != p.Data[0].ID || *p.LastID != p.Data[len(p.Data)-1].ID {
			h.t.Fatalf("unexpected first_id/last_id %v/%v for %v", p.FirstID, p.LastID, ids(p.Data))
		}
	}
	return p
}

func ids(ms []modelInfo) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func q(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// TestModels: GET /v1/models lists the models the configured upstreams
// serve now (not the retired, not the disabled, not those only another kind
// of upstream serves: Sonnet 4.5 was listed once and then answered 404), in
// Anthropic's list format and pagination with anthropic-version, every one
// without; GET /v1/models/{id} shows one.
func TestModels(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("1")
	cat, err := meter.LoadCatalogue("../configs/models.yaml")
	if err != nil {
		t.Fatalf("cannot load the catalogue: %s", err)
	}
	var live, retired []string
	for _, m := range cat.Models() {
		if _, served := m.Upstream(meter.UpstreamAnthropic, time.Now()); served && m.Available(time.Now()) {
			live = append(live, m.ID)
		} else {
			retired = append(retired, m.ID)
		}
	}
	if !slices.Contains(retired, "claude-sonnet-4-5-20250929") || !slices.Contains(retired, "claude-mythos-5-2") || !slices.Contains(live, "claude-opus-5-5") {
		t.Fatalf("unexpected catalogue: live %v, not served %v", live, retired)
	}
	if len(live) < 8 || len(retired) == 0 {
		t.Fatalf("unexpected catalogue: %d live, %d retired models; the test needs at least 8 live and 1 retired", len(live), len(retired))
	}

	full := h.models(a.Key, q("limit", "1000"))
	if full.HasMore {
		t.Fatalf("unexpected has_more with limit 1000")
	}
	got := ids(full.Data)
	if a, b := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(live)); !slices.Equal(a, b) {
		t.Fatalf("unexpected models; got %v; want the live ones %v", a, b)
	}
	// A model served only by an upstream that retires it shows when, and
	// its successor (the harness configures the anthropic upstream).
	for _, m := range full.Data {
		cm, _ := cat.Lookup(m.ID)
		u, _ := cm.Upstream(meter.UpstreamAnthropic, time.Now())
		want := ""
		if !u.Retires.IsZero() {
			want = u.Retires.UTC().Format(time.RFC3339)
		}
		if m.RetiresAt != want || want != "" && m.Successor != cm.Successor {
			t.Fatalf("model %s: retires_at %q successor %q; want %q %q", m.ID, m.RetiresAt, m.Successor, want, cm.Successor)
		}
		if m.ID == "claude-opus-4-5-20251101" && (m.RetiresAt == "" || m.Successor == "") {
			t.Fatalf("Opus 4.5 retires on Anthropic's API in January 2027: %+v", m)
		}
	}
	var prev time.Time
	for i, m := range full.Data {
		created, err := time.Parse(time.RFC3339, m.CreatedAt)
		if err != nil || m.Type != "model" || m.DisplayName == "" {
			t.Fatalf("unexpected model %+v", m)
		}
		if i > 0 && created.After(prev) {
			t.Fatalf("unexpected order: %s (created %s) after a model created %s; want newest first", m.ID, created, prev)
		}
		prev = created
	}

	// Default limit 20.
	def := h.models(a.Key, nil)
	if want := min(20, len(live)); len(def.Data) != want || def.HasMore != (len(live) > 20) {
		t.Fatalf("unexpected default page; got %d models, has_more %v; want %d", len(def.Data), def.HasMore, want)
	}
	// Without anthropic-version (the OpenAI SDKs): every served model, in
	// both SDKs' shapes.
	openai := h.modelsAs(a.Key, q("limit", "2"), map[string]string{"Authorization": "Bearer " + a.Key})
	if openai.Object != "list" || openai.HasMore || !slices.Equal(ids(openai.Data), got) {
		t.Fatalf("unexpected list without anthropic-version; got %q %v (has_more %v); want every model %v", openai.Object, ids(openai.Data), openai.HasMore, got)
	}
	for _, m := range openai.Data {
		if m.Object != "model" || m.Created <= 0 || m.OwnedBy == "" || m.Type != "model" {
			t.Fatalf("unexpected model in the OpenAI shape: %+v", m)
		}
	}
	if got[0] != "claude-fable-5-2" {
		t.Fatalf("unexpected first model %s; want the newest, claude-fable-5-2", got[0])
	}

	// after_id walks forward.
	var walked []string
	after := ""
	for range len(live) + 1 {
		v := q("limit", "3")
		if after != "" {
			v.Set("after_id", after)
		}
		p := h.models(a.Key, v)
		walked = append(walked, ids(p.Data)...)
		if !p.HasMore {
			break
		}
		if len(p.Data) != 3 {
			t.Fatalf("unexpected short page with has_more: %v", ids(p.Data))
		}
		after = *p.LastID
	}
	if !slices.Equal(walked, got) {
		t.Fatalf("unexpected models walking with after_id; got %v; want %v", walked, got)
	}

	// before_id pages backward.
	p := h.models(a.Key, q("limit", "2", "before_id", got[4]))
	if !slices.Equal(ids(p.Data), got[2:4]) || !p.HasMore {
		t.Fatalf("unexpected page before %s; got %v (has_more %v); want %v and more", got[4], ids(p.Data), p.HasMore, got[2:4])
	}
	p = h.models(a.Key, q("limit", "5", "before_id", got[2]))
	if !slices.Equal(ids(p.Data), got[:2]) || p.HasMore {
		t.Fatalf("unexpected page before %s; got %v (has_more %v); want %v and no more", got[2], ids(p.Data), p.HasMore, got[:2])
	}
	p = h.models(a.Key, q("limit", "2", "after_id", got[len(got)-1]))
	if len(p.Data) != 0 || p.HasMore {
		t.Fatalf("unexpected page after the last model: %v", ids(p.Data))
	}

	for _, bad := range []string{"0", "1001", "x"} {
		resp, b := h.do(http.MethodGet, h.clientURL+"/v1/models?limit="+bad, nil, map[string]string{"X-Api-Key": a.Key, "anthropic-version": "2023-06-01"})
		checkError(t, resp, b, 400, "invalid_request_error")
	}
	resp, b := h.get("/v1/models", "")
	checkError(t, resp, b, 401, "authentication_error")

	// One model, by ID or alias; retired and unknown ones are 404.
	for _, name := range []string{testModelDated, testModel} {
		resp, b := h.get("/v1/models/"+name, a.Key)
		var m modelInfo
		if resp.StatusCode != 200 || json.Unmarshal(b, &m) != nil {
			t.Fatalf("unexpected answer for model %s; got %d %s; want 200", name, resp.StatusCode, b)
		}
		if m.ID != testModelDated || m.Type != "model" || m.DisplayName != "Claude Haiku 4.5" ||
			m.MaxTokens == nil || *m.MaxTokens != 64000 || m.MaxInputTokens == nil || *m.MaxInputTokens != 200000 {
			t.Fatalf("unexpected model for %s: %s", name, b)
		}
	}
	for _, name := range []string{"claude-nonexistent-9", retired[0]} {
		resp, b := h.get("/v1/models/"+name, a.Key)
		checkError(t, resp, b, 404, "not_found_error")
	}
	resp, b = h.get("/v1/models/"+testModel, "")
	checkError(t, resp, b, 401, "authentication_error")

	// The SDK lists the same models, page by page.
	client := h.sdkClient(a.Key)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	pager := client.Models.ListAutoPaging(ctx, anthropic.ModelListParams{Limit: anthropic.Int(4)})
	var sdkIDs []string
	for pager.Next() {
		sdkIDs = append(sdkIDs, pager.Current().ID)
	}
	if err := pager.Err(); err != nil {
		t.Fatalf("unexpected SDK list error: %s", err)
	}
	if !slices.Equal(sdkIDs, got) {
		t.Fatalf("unexpected SDK model list; got %v; want %v", sdkIDs, got)
	}
	m, err := client.Models.Get(ctx, testModel, anthropic.ModelGetParams{})
	if err != nil || m.ID != testModelDated || m.MaxTokens != 64000 {
		t.Fatalf("unexpected SDK model; got %+v, %v; want %s", m, err, testModelDated)
	}
}

// TestCountTokens: count_tokens is forwarded, answered with the upstream's
// count, never charged, never recorded, and needs a valid key.
func TestCountTokens(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("1")
	client := h.sdkClient(a.Key)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	before := h.balance(a)
	calls := h.allCallsCount()
	counted := h.sim.Stats().CountTokens
	res, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
		Model:    testModel,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("How many tokens is this?"))},
	})
	if err != nil {
		t.Fatalf("unexpected count_tokens error: %s", err)
	}
	// "user", "text" and the five words (the simulator's rule).
	if res.InputTokens != 7 {
		t.Fatalf("unexpected input_tokens; got %d; want 7", res.InputTokens)
	}
	if got := h.sim.Stats().CountTokens - counted; got != 1 {
		t.Fatalf("unexpected count_tokens requests upstream; got %d; want 1", got)
	}
	if after := h.balance(a); after != before {
		t.Fatalf("unexpected balance after count_tokens; got %+v; want %+v", after, before)
	}
	if got := h.allCallsCount(); got != calls {
		t.Fatalf("unexpected call records after count_tokens; got %d new; want 0", got-calls)
	}

	body := []byte(`{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"one two three"}]}`)
	resp, b := h.post("/v1/messages/count_tokens", a.Key, body, nil)
	if resp.StatusCode != 200 || string(b) != `{"input_tokens":4}` || !requestIDPattern.MatchString(resp.Header.Get("request-id")) {
		t.Fatalf("unexpected count_tokens answer; got %d %s (request-id %q); want 200 {\"input_tokens\":4}", resp.StatusCode, b, resp.Header.Get("request-id"))
	}
	for _, key := range []string{"", "tg-" + strconv.Itoa(12345)} {
		resp, b := h.post("/v1/messages/count_tokens", key, body, nil)
		checkError(t, resp, b, 401, "authentication_error")
	}
	resp, b = h.post("/v1/messages/count_tokens", a.Key, []byte(`{"model":"claude-nonexistent-9","messages":[]}`), nil)
	checkError(t, resp, b, 404, "not_found_error")
	resp, b = h.post("/v1/messages/count_tokens", a.Key, []byte(`{"model":`), nil)
	checkError(t, resp, b, 400, "invalid_request_error")
	if got := h.sim.Stats().CountTokens - counted; got != 2 {
		t.Fatalf("unexpected count_tokens requests upstream; got %d; want 2 (refusals are not forwarded)", got)
	}
	if after := h.balance(a); after != before {
		t.Fatalf("unexpected balance after count_tokens; got %+v; want %+v", after, before)
	}
}

// TestCountTokensUpstreamErrors: count_tokens passes the upstream's errors
// on like POST /v1/messages does: in the contract's shape with Tollgate's
// request ID, and errors about the platform's upstream account as 503.
func TestCountTokensUpstreamErrors(t *testing.T) {
	h := newHarness(t)
	a := h.newAccount("1")
	body := func(directive string) []byte {
		return []byte(`{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi [[sim:` + directive + `]]"}]}`)
	}
	resp, b := h.post("/v1/messages/count_tokens", a.Key, body("status=401"), nil)
	if msg := checkError(t, resp, b, 503, "overloaded_error"); msg != "upstream unavailable" {
		t.Fatalf("unexpected message; got %q; want %q", msg, "upstream unavailable")
	}
	resp, b = h.post("/v1/messages/count_tokens", a.Key, body("status=429,retry_after=5"), nil)
	checkError(t, resp, b, 429, "rate_limit_error")
	if got := resp.Header.Get("retry-after"); got != "5" {
		t.Fatalf("unexpected retry-after; got %q; want 5", got)
	}
	if b := h.balance(a); b.Available != a.TopUps {
		t.Fatalf("unexpected balance; got %d; want %d", b.Available, a.TopUps)
	}
}
