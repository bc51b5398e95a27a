package proxy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDashboardMetricsExist loads configs/grafana-dashboard.json and checks
// that every tollgate_* metric a panel queries is declared in the code.
func TestDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile("../configs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil || len(dash.Panels) == 0 {
		t.Fatalf("cannot load the dashboard: %v", err)
	}
	var code strings.Builder
	for _, dir := range []string{".", "upstream", "admin", "notify", "../ledger", "../wal"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, _ := os.ReadFile(f)
			code.Write(b)
		}
	}
	name := regexp.MustCompile(`tollgate_[a-z0-9_]+`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(m, "_bucket")
				if !strings.Contains(code.String(), "`"+base) {
					t.Fatalf("panel %q queries %s, which no code declares", p.Title, m)
				}
			}
		}
	}
}
