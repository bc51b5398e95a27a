package admin

import (
	"bytes"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/proxy/access"
	"github.com/tollgate/tollgate/proxy/views"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIMatchesRoutes checks docs/openapi.yaml against the admin routes
// the server serves: the same (method, path) pairs, no more, no less.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("cannot load the OpenAPI document: %v", err)
	}
	var documented, served []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	for _, r := range routes {
		served = append(served, r.method+" "+r.pattern)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("docs/openapi.yaml and the admin routes differ:\ndocumented:\n%s\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
}

// TestUnknownRoutesAndMethods: an unknown path is 404, a known path under
// another method 405 to the operator and 401 to anyone else, each in the
// contract's error shape.
func TestUnknownRoutesAndMethods(t *testing.T) {
	a := newFixture(t)
	if out := a.want("GET", "/admin/v1/nothing", "", 404); errType(out) != "not_found_error" {
		t.Fatalf("unexpected error: %v", out)
	}
	if out := a.want("DELETE", "/admin/v1/accounts/bench", "", 405); errType(out) != "invalid_request_error" {
		t.Fatalf("unexpected error: %v", out)
	}
	if st, out, _ := a.doWith("", "DELETE", "/admin/v1/accounts/bench", ""); st != 401 || errType(out) != "authentication_error" {
		t.Fatalf("unexpected answer without a token: %d %v", st, out)
	}
	if st, out, _ := a.doWith("", "GET", "/admin/v1/accounts/bench/keys", ""); st != 401 || errType(out) != "authentication_error" {
		t.Fatalf("unexpected answer without a token: %d %v", st, out)
	}
}

// TestHandlerPanicIsAnswered: a panic in a handler is logged with the
// request ID and answered 500 api_error with that ID, and the server goes
// on serving.
func TestHandlerPanicIsAnswered(t *testing.T) {
	var logs bytes.Buffer
	s, err := New(Config{Token: testToken, Logger: log.New(&logs, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	h := s.handler(route{"GET", "/boom", public, access.Read, func(*Server, http.ResponseWriter, *http.Request) { panic("boom") }})
	for range 2 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/boom", nil))
		id := w.Header().Get("request-id")
		if w.Code != 500 || !strings.Contains(w.Body.String(), `"api_error"`) || !strings.Contains(w.Body.String(), id) {
			t.Fatalf("unexpected answer to a panic: %d %s", w.Code, w.Body)
		}
		if !strings.Contains(logs.String(), "panic in GET /boom (request "+id+"): boom") {
			t.Fatalf("the panic is not logged with its request ID:\n%s", logs.String())
		}
	}
}

// FuzzDecodeBody: no request body panics the decoder, and a refused field
// is named in the message.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"amount":"25","order_id":"o","kind":"paid"}`, `{"amount":25}`, `{"amount":"1e3"}`,
		`{"rpm":-1,"models":["a"],"expires_at":"2030-01-01T00:00:00Z"}`, `[]`, `null`, `{"a":`, `{"amount":"99999999999999999999"}`,
		`{"name":7}`, `{"models":[1]}`, `{"spend_limit":null,"tpm":1.5}`} {
		f.Add([]byte(s))
	}
	names := []string{"amount", "order_id", "kind", "expires_at", "rpm", "tpm", "concurrency", "models", "name", "spend_limit"}
	f.Fuzz(func(t *testing.T, body []byte) {
		var b struct {
			Amount  *views.Amount `json:"amount"`
			OrderID string        `json:"order_id"`
			Kind    string        `json:"kind"`
			keyBody
		}
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		err := decodeBody(r, &b)
		if err == nil || strings.HasPrefix(err.Error(), "the body") || strings.Contains(err.Error(), ": unknown field") {
			return
		}
		if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(err.Error(), n+": ") }) {
			t.Fatalf("the error does not name its field: %v", err)
		}
	})
}
