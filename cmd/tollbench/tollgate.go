package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// findTollgate returns the tollgate binary to benchmark: the one given, or
// a fresh build of ./cmd/tollgate from the module tollbench runs in (so the
// figures are those of the code in the tree), or ./bin/tollgate when no
// build is possible. cleanup removes a temporary build.
func findTollgate(ctx context.Context, given string, stderr io.Writer) (path string, cleanup func(), err error) {
	nothing := func() {}
	if given != "" {
		if _, err := os.Stat(given); err != nil {
			return "", nothing, fmt.Errorf("cannot use -tollgate %s: %w", given, err)
		}
		return given, nothing, nil
	}
	if built, cleanup, err := buildTollgate(ctx, stderr); err == nil {
		return built, cleanup, nil
	} else if _, serr := os.Stat("bin/tollgate"); serr == nil {
		fmt.Fprintf(stderr, "tollbench: cannot build tollgate (%s); using bin/tollgate\n", err)
		return "bin/tollgate", nothing, nil
	} else {
		return "", nothing, fmt.Errorf("no tollgate binary: give -tollgate, or run in the repository (build failed: %w)", err)
	}
}

// buildTollgate runs `go build` for the gateway of the enclosing module.
func buildTollgate(ctx context.Context, stderr io.Writer) (string, func(), error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", nil, fmt.Errorf("cannot find the go tool: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", nil, fmt.Errorf("not inside a Go module")
	}
	dir, err := os.MkdirTemp("", "tollbench-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	bin := filepath.Join(dir, "tollgate")
	fmt.Fprintf(stderr, "tollbench: building github.com/tollgate/tollgate/cmd/tollgate\n")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tollgate/tollgate/cmd/tollgate")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, cleanup, nil
}
