package lint

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tollgate/tollgate"

// importRules says which of Tollgate's packages each package may import, by
// package path prefix (the longest matching prefix applies). Data flows one
// way: proxy over meter, ledger and its upstream clients (proxy/upstream,
// which knows nothing of calls or money); proxy/admin beside proxy, never
// importing it, both sharing proxy/views and proxy/ids; ledger over wal; meter and wal import
// nothing of ours but the internal leaves, which import nothing of ours;
// product code never imports bench; only cmd wires everything. A package to
// come (cluster) adds one line here; the consoles (proxy/console) sit
// beside proxy/admin and reuse its operations; notifications
// (proxy/notify) read the ledger's changes from the WAL; the consoles'
// users in PostgreSQL (proxy/access/pgusers) sit under proxy/access.
var importRules = map[string][]string{
	"internal/":            {},
	"wal":                  {"internal/"},
	"meter":                {"internal/"},
	"ledger":               {"wal", "internal/"},
	"ledger/cluster":       {"ledger", "internal/"},
	"proxy":                {"proxy/", "meter", "ledger", "internal/"},
	"proxy/admin":          {"proxy/views", "proxy/ids", "proxy/access", "proxy/notify", "meter", "ledger", "internal/"},
	"proxy/notify":         {"meter", "ledger", "wal", "internal/"},
	"proxy/access":         {"proxy/ids", "wal"},
	"proxy/access/pgusers": {"proxy/access", "proxy/ids"},
	"proxy/console":        {"proxy/access", "proxy/admin", "proxy/notify", "proxy/views", "proxy/ids", "meter", "ledger", "internal/"},
	"proxy/views":          {"meter", "ledger", "internal/"},
	"proxy/upstream":       {"proxy/views", "meter", "internal/"},
	"proxy/openai":         {"meter", "internal/"},
	"proxy/ids":            {},
	"proxy/simulator":      {"meter", "internal/"},
	"bench":                {"proxy", "meter", "internal/"},
	"configs":              {},
	"cmd/":                 {""},
}

// unsafeFiles are the only files that may import unsafe.
var unsafeFiles = []string{"proxy/b2s.go"}

type pkg struct {
	ImportPath   string
	Dir          string
	GoFiles      []string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %s", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("cannot decode go list output: %s", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// rel is a path of ours without the module prefix ("" for others).
func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

// ruleFor returns the allowed imports of package p (a path of ours).
func ruleFor(p string) ([]string, bool) {
	best, found := "", false
	for prefix := range importRules {
		if (p == strings.TrimSuffix(prefix, "/") || strings.HasPrefix(p, prefix) || p == prefix) && len(prefix) >= len(best) {
			best, found = prefix, true
		}
	}
	return importRules[best], found
}

func allowed(rule []string, imp string) bool {
	for _, a := range rule {
		if a == "" || imp == strings.TrimSuffix(a, "/") || strings.HasPrefix(imp, a) && strings.HasSuffix(a, "/") {
			return true
		}
	}
	return false
}

// TestImportGraph: no package imports one of ours against importRules.
func TestImportGraph(t *testing.T) {
	for _, p := range listPackages(t) {
		from, _ := rel(p.ImportPath)
		rule, ok := ruleFor(from)
		if !ok {
			t.Errorf("package %s has no import rule: add one to importRules", from)
			continue
		}
		for _, imp := range p.Imports {
			to, ours := rel(imp)
			if ours && !allowed(rule, to) {
				t.Errorf("unexpected import: %s imports %s (allowed: %v)", from, to, rule)
			}
		}
	}
}

// dependency is a direct requirement of go.mod with its reason.
type dependency struct {
	module, reason string
}

// directDependencies reads go.mod's direct requirements and their comments.
func directDependencies(t *testing.T) []dependency {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var deps []dependency
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "require (":
			in = true
			continue
		case line == ")":
			in = false
			continue
		}
		if !in || strings.HasSuffix(line, "// indirect") {
			continue
		}
		fields, reason, _ := strings.Cut(line, "//")
		deps = append(deps, dependency{module: strings.Fields(fields)[0], reason: strings.TrimSpace(reason)})
	}
	return deps
}

// moduleOf is the direct dependency that provides import path imp.
func moduleOf(deps []dependency, imp string) (dependency, bool) {
	var best dependency
	found := false
	for _, d := range deps {
		if (imp == d.module || strings.HasPrefix(imp, d.module+"/")) && len(d.module) > len(best.module) {
			best, found = d, true
		}
	}
	return best, found
}

// TestDependencies: every direct dependency says why it is here; code
// imports no third-party package outside them; product code imports none
// marked "tests:".
func TestDependencies(t *testing.T) {
	deps := directDependencies(t)
	for _, d := range deps {
		if d.reason == "" {
			t.Errorf("go.mod: %s has no comment saying why it is a dependency", d.module)
		}
	}
	for _, p := range listPackages(t) {
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				if _, ours := rel(imp); ours || !strings.Contains(strings.Split(imp, "/")[0], ".") {
					continue // ours, or the standard library
				}
				d, ok := moduleOf(deps, imp)
				switch {
				case !ok:
					t.Errorf("%s imports %s, which is not a direct dependency in go.mod", p.ImportPath, imp)
				case !test && strings.HasPrefix(d.reason, "tests:"):
					t.Errorf("product code %s imports %s, a dependency for tests only", p.ImportPath, imp)
				}
			}
		}
		check(p.Imports, false)
		check(p.TestImports, true)
		check(p.XTestImports, true)
	}
}

// TestUnsafe: unsafe appears only in its one file.
func TestUnsafe(t *testing.T) {
	root := repoRoot(t)
	for _, p := range listPackages(t) {
		for _, f := range p.GoFiles {
			path := filepath.Join(p.Dir, f)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(src), `"unsafe"`) {
				continue
			}
			r, _ := filepath.Rel(root, path)
			if !slices.Contains(unsafeFiles, r) {
				t.Errorf("%s imports unsafe: only %v may", r, unsafeFiles)
			}
		}
	}
}
