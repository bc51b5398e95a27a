package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/tollgate/tollgate/bench"
)

// upstreamCommand is `tollbench upstream`: the built-in upstream alone,
// for pointing a gateway started by hand at it.
func upstreamCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg bench.UpstreamConfig
	fs := flag.NewFlagSet("tollbench upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Addr, "listen", "127.0.0.1:9090", "listen address (loopback only)")
	fs.IntVar(&cfg.Deltas, "deltas", bench.DefaultDeltas, "text deltas per streamed reply")
	fs.IntVar(&cfg.DeltaBytes, "delta-bytes", bench.DefaultDeltaBytes, "bytes of text per delta")
	fs.DurationVar(&cfg.EventDelay, "event-delay", 0, "pause before each event (0: back to back)")
	fs.DurationVar(&cfg.EventJitter, "event-jitter", 0, "added to each pause, uniform in [0, this]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	up, err := bench.StartUpstream(cfg)
	if err != nil {
		return err
	}
	c := up.Config()
	fmt.Fprintf(stdout, "tollbench upstream on %s: %d deltas of %d bytes, %s (+ up to %s) between events, %d bytes per reply; SIGINT or SIGTERM stops it\n",
		up.URL(), c.Deltas, c.DeltaBytes, c.EventDelay, c.EventJitter, up.ReplyBytes())
	<-ctx.Done()
	if err := up.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "served %d replies\n", up.Calls())
	return nil
}

// hopCommand is `tollbench hop`: the floor hop (bench.ServeHop) alone, the
// process run starts for its third side.
func hopCommand(ctx context.Context, args []string, stderr io.Writer) error {
	var listen, upstream string
	fs := flag.NewFlagSet("tollbench hop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&listen, "listen", "127.0.0.1:9091", "listen address (loopback only)")
	fs.StringVar(&upstream, "upstream", "http://127.0.0.1:9090", "upstream to forward to (loopback only)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := bench.CheckLoopbackURL("http://" + listen); err != nil {
		return fmt.Errorf("%w: -listen: %s", errUsage, err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	return bench.ServeHop(ctx, ln, upstream)
}
