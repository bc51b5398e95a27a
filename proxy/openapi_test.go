package proxy

import (
	"os"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIMatchesRoutes checks docs/openapi.yaml against the admin routes
// the server serves: the same (method, path) pairs, no more, no less.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile("../docs/openapi.yaml")
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
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, r := range adminRoutes {
		served = append(served, r.method+" "+r.pattern)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("docs/openapi.yaml and the admin routes differ:\ndocumented:\n%s\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
}

func TestMatchRoute(t *testing.T) {
	f := func(pattern, path string, want []string, wantOK bool) {
		t.Helper()
		got, ok := matchRoute(pattern, path, nil)
		if ok != wantOK || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("unexpected match of %q against %q; got %v %v; want %v %v", path, pattern, got, ok, want, wantOK)
		}
	}
	f("/admin/v1/accounts", "/admin/v1/accounts", nil, true)
	f("/admin/v1/accounts/{id}", "/admin/v1/accounts/acme", []string{"acme"}, true)
	f("/admin/v1/accounts/{id}/topups", "/admin/v1/accounts/acme/topups", []string{"acme"}, true)
	f("/admin/v1/accounts/{id}", "/admin/v1/accounts/acme/topups", nil, false)
	f("/admin/v1/accounts/{id}/topups", "/admin/v1/accounts/acme", nil, false)
	f("/admin/v1/accounts/{id}", "/admin/v1/accounts/", nil, false)
	f("/healthz", "/healthzz", nil, false)
}
