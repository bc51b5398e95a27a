package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/tollgate/tollgate/proxy/simulator"
)

// runSimulator is `tollgate simulator`: the upstream simulator alone.
func runSimulator(args []string) error {
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9090", "address to serve on")
	mode := fs.String("mode", "anthropic", "anthropic (Messages API with SSE) or bedrock (InvokeModel with AWS event streams, SigV4 with the fixed test credentials)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := simulator.Config{Mode: *mode}
	switch *mode {
	case simulator.ModeAnthropic:
	case simulator.ModeBedrock:
		cfg.AWSCredentials = simulator.TestAWSCredentials
	default:
		return fmt.Errorf("mode %q: want anthropic or bedrock", *mode)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	sim := simulator.New(cfg)
	log.Printf("simulator (%s) serving on %s", *mode, ln.Addr())
	if *mode == simulator.ModeBedrock {
		// Fixed, public test values: not secrets.
		log.Printf("bedrock mode accepts SigV4 signatures by AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s (any region)",
			cfg.AWSCredentials.AccessKeyID, cfg.AWSCredentials.SecretAccessKey)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		sim.Shutdown()
	}()
	return sim.Serve(ln)
}

func netipAddrPort(a net.Addr) (netip.AddrPort, error) { return netip.ParseAddrPort(a.String()) }
