// Command tollbench is Tollgate's benchmark and tuning tool: it runs a
// built-in upstream and `tollgate serve` on loopback, drives the same load
// through the gateway, through a bare proxy hop (Go's
// httputil.ReverseProxy: the floor a proxy pays) and straight to the
// upstream, and reports each and their ratios, with the gateway's CPU time
// and allocations per call read against the hop's CPU.
//
//	tollbench run   [flags]   one comparison
//	tollbench sweep [flags]   the baseline, then one comparison per value of each -axis (one setting at a time), with charts
//	tollbench upstream [flags] the built-in upstream alone, until SIGINT or SIGTERM
//	tollbench hop -listen ADDR -upstream URL   the floor hop alone (run starts it itself)
//
// Without -tollgate, run and sweep build ./cmd/tollgate of the module they
// run in (so the figures are those of the code in the tree), falling back
// to ./bin/tollgate. Each start gets a fresh data directory and
// configuration in a temporary directory, removed afterwards.
//
// Recommended runs, from the repository root (make bench and
// BENCHMARKS.md; about 25 s each, the default sweep about 3 minutes; the
// last run paces streams as a model does, events 20–50 ms apart over
// several seconds, with a fifth of the clients leaving mid-stream; at
// concurrency 1000, near the default max_conns_per_ip of 1024, thousands
// of calls were answered 429, not yet explained: perhaps the connections
// of clients that left still count until the gateway next writes to them):
//
//	make build && go build -o bin/tollbench ./cmd/tollbench
//	bin/tollbench run -tollgate bin/tollgate -concurrency 64 -duration 10s
//	bin/tollbench run -tollgate bin/tollgate -concurrency 256 -duration 10s
//	bin/tollbench run -tollgate bin/tollgate -rate 2000 -concurrency 1024 -duration 10s
//	bin/tollbench sweep -tollgate bin/tollgate -chart tollbench-sweep
//	bin/tollbench run -tollgate bin/tollgate -concurrency 500 -deltas 100 -event-delay 20ms -event-jitter 30ms -disconnect 0.2 -duration 20s
//
// With -cluster-dsn URL (PostgreSQL on loopback, the password in
// PGPASSWORD) the gateway runs in cluster mode, and -nodes N starts N nodes
// on it: the gateway side's calls go to each in turn and its costs are the
// nodes' added up (docs/cluster.md, BENCHMARKS.md).
//
// Add -json for machine-readable output. The Markdown goes to stdout, the
// progress line to stderr when it is a terminal.
//
// Flags are parsed here; the work is package bench's (see its doc.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: tollbench <command> [flags]

commands:
  run       one comparison: the load through the gateway and straight to the upstream
  sweep     the baseline, then run for each value of each -axis; a table and SVG charts
  upstream  the built-in upstream alone, until SIGINT or SIGTERM
  hop       the floor hop alone (httputil.ReverseProxy; run starts it itself)

Run 'tollbench <command> -h' for the command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, isTerminal(os.Stderr))
	stop()
	os.Exit(code)
}

// run dispatches to a command and returns the process exit code: 0, 1 on
// failure, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, stderrIsTerminal bool) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = runCommand(ctx, args[1:], stdout, stderr, stderrIsTerminal)
	case "sweep":
		err = sweepCommand(ctx, args[1:], stdout, stderr, stderrIsTerminal)
	case "upstream":
		err = upstreamCommand(ctx, args[1:], stdout, stderr)
	case "hop":
		err = hopCommand(ctx, args[1:], stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tollbench: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "tollbench: %s\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "tollbench: %s\n", err)
		return 1
	}
}

// errUsage marks errors in the command line.
var errUsage = errors.New("bad usage")

// isTerminal reports whether f is a character device (a terminal), so the
// progress line is drawn only for a person watching, never into a log.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
